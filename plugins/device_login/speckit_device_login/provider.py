"""One configured device-login provider: implements :class:`agentshell.auth.AuthProvider`
and carries out /login, /logout and the refreshes backends trigger."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal

import httpx

from agentshell import describe_http_error
from agentshell.auth import Credentials, TokenStore
from agentshell.errors import AgentDisconnected, AgentshellError, AuthRequired

from .config import ProviderConfig
from .discovery import Endpoints, resolve_endpoints
from .events import AuthEvent
from .flow import DeviceAuthorization, LoginFailed, Poller, login_command, request_device_code
from .oauth import Clock, OAuthError, SystemClock
from .tokens import TokenRecord, refresh, revoke
from .ui import LoginView

EventType = Literal["auth.login", "auth.refresh", "auth.logout"]
REFRESH_MARGIN_S = 300.0  # refresh tokens that expire within 5 minutes
_NO_STORAGE = (
    "no secure keyring is available and plain-text storage is disabled (allow_plaintext = false)"
)


class DeviceLoginProvider:
    def __init__(
        self, shell: Any, name: str, cfg: ProviderConfig, *, allow_plaintext: bool = True
    ) -> None:
        self.shell = shell
        self.name = name
        self.cfg = cfg
        self.key = f"device_login:{name}"
        self.store = TokenStore(
            shell.data_dir, allow_plaintext=allow_plaintext, warn=shell.output.warn
        )
        self.clock: Clock = SystemClock()
        #: called with the device authorization before polling starts — for embedders
        #: (open a browser, show a QR code) and tests; it receives the secret device code
        self.on_device_code: Callable[[DeviceAuthorization], None] | None = None
        self.last_poller: Poller | None = None
        self._endpoints: Endpoints | None = None
        self._cached: TokenRecord | None = None
        # one refresh at a time: concurrent agent calls wait for it and reuse the result
        self._refresh_lock = asyncio.Lock()

    # -- plumbing -------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.cfg.http_timeout_s)

    async def endpoints(self, client: httpx.AsyncClient) -> Endpoints:
        if self._endpoints is None:
            self._endpoints = await resolve_endpoints(client, self.name, self.cfg)
        return self._endpoints

    def _event(self, kind: EventType, outcome: str) -> None:
        if self.shell.telemetry is not None:
            self.shell.telemetry.emit(AuthEvent(type=kind, provider=self.name, outcome=outcome))

    def load(self, *, fresh: bool = False) -> TokenRecord | None:
        """The stored record. Cached in memory once found: a Secret Service read costs
        tens of milliseconds, too much for every agent call (see bench/device_login.py).
        ``fresh`` re-reads the store, as refreshes do, to pick up another process's
        rotation or logout."""
        if self._cached is not None and not fresh:
            return self._cached
        raw = self.store.get(self.key)
        record: TokenRecord | None = None
        if raw is not None:
            try:
                record = TokenRecord.model_validate(raw)
            except ValueError:
                record = None  # unreadable: same as logged out; /login overwrites it
        self._cached = record
        return record

    def _save(self, record: TokenRecord) -> str:
        where = self.store.set(self.key, record.model_dump())
        self._cached = record
        return where

    def _forget(self) -> None:
        self._cached = None
        self.store.delete(self.key)

    def _credentials(self, record: TokenRecord) -> Credentials:
        return Credentials(
            token=record.access_token,
            expires_at=record.expires_at,
            scope=record.scope,
            source=f"device_login:{self.name}",
        )

    # -- AuthProvider ---------------------------------------------------------------

    async def get_credentials(self, account: str | None = None) -> Credentials | None:
        record = self.load()
        if record is None:
            return None
        if record.expires_within(REFRESH_MARGIN_S, self.clock.time()):
            record = await self._refresh(record, force=False)
        return None if record is None else self._credentials(record)

    async def on_unauthorized(self, account: str | None = None) -> Credentials | None:
        record = self.load()
        if record is None:
            return None
        new = await self._refresh(record, force=True)
        return None if new is None else self._credentials(new)

    def login_command(self, account: str | None = None) -> str:
        return login_command(self.name)

    async def _refresh(self, seen: TokenRecord, *, force: bool) -> TokenRecord | None:
        async with self._refresh_lock:
            current = self.load(fresh=True)
            if current is None:
                return None
            if current.access_token != seen.access_token:
                return current  # refreshed by whoever held the lock before us
            now = self.clock.time()
            if not force and not current.expires_within(REFRESH_MARGIN_S, now):
                return current
            still_valid = not current.expires_within(0, now)
            if not current.refresh_token:
                if still_valid and not force:
                    return current
                raise AuthRequired(
                    f"{self.name}: the access token expired and there is no refresh token",
                    fix=self.login_command(),
                )
            try:
                async with self._client() as client:
                    endpoints = await self.endpoints(client)
                    new = await refresh(client, endpoints, self.cfg, current, sent_at=now)
            except OAuthError as exc:
                if exc.error == "invalid_grant":
                    self._forget()
                    self._event("auth.refresh", "rejected")
                    raise AuthRequired(
                        f"{self.name}: the refresh token was rejected; log in again",
                        fix=self.login_command(),
                    ) from None
                self._event("auth.refresh", "error")
                if still_valid and not force:
                    self.shell.output.warn(f"{self.name}: token refresh failed ({exc})")
                    return current
                raise AuthRequired(
                    f"{self.name}: token refresh failed ({exc})", fix=self.login_command()
                ) from None
            except httpx.HTTPError as exc:
                self._event("auth.refresh", "error")
                if still_valid and not force:
                    return current
                reason = describe_http_error(exc)
                raise AgentDisconnected(
                    f"{self.name}: cannot reach the token endpoint to refresh ({reason})"
                ) from None
            self._save(new)
            self._event("auth.refresh", "ok")
            return new

    # -- commands -------------------------------------------------------------------

    async def login(self) -> str:
        """Run the device flow; store the tokens; return where they went."""
        view = LoginView(self.shell.output)
        outcome = "error"
        try:
            self._check_storage()
            async with self._client() as client:
                endpoints = await self.endpoints(client)
                started = self.clock.monotonic()
                auth = await request_device_code(client, self.name, endpoints, self.cfg)
                view.show_code(self.name, auth)
                if self.on_device_code is not None:
                    self.on_device_code(auth)
                poller = Poller(
                    client,
                    self.name,
                    endpoints,
                    self.cfg,
                    auth,
                    self.clock,
                    started=started,
                    tick=view.tick,
                    notice=view.notice,
                )
                self.last_poller = poller
                response, sent_at = await poller.run()
            record = TokenRecord.from_response(
                response, sent_at=sent_at, requested_scope=self.cfg.scope
            )
            view.end()
            where = self._store_login(record)
            outcome = "ok"
            return where
        except asyncio.CancelledError:
            outcome = "cancelled"
            view.end()
            self.shell.output.info(f"{self.name}: login cancelled; nothing was stored")
            raise
        except LoginFailed as exc:
            outcome = exc.outcome
            view.end()
            raise
        finally:
            self._event("auth.login", outcome)

    def _check_storage(self) -> None:
        """Refuse before a code is shown when the tokens could not be kept anyway:
        approving a login only to lose its tokens wastes the user's time."""
        secure, _ = self.store.backend()
        if not secure and not self.store.allow_plaintext:
            raise LoginFailed(f"{self.name}: cannot log in: {_NO_STORAGE}", "error")

    def _store_login(self, record: TokenRecord) -> str:
        try:
            return self._save(record)
        except AgentshellError as exc:  # the store refused (allow_plaintext = false)
            raise LoginFailed(f"{self.name}: the tokens were not stored: {exc}", "error") from None
        except Exception as exc:  # a keyring error: say which, never its text (secrets)
            raise LoginFailed(
                f"{self.name}: the tokens were not stored: the keyring failed "
                f"({type(exc).__name__})",
                "error",
            ) from None

    async def logout(self) -> tuple[bool, list[str]]:
        """Revoke (refresh token first: that ends the whole grant) and delete locally.
        Returns whether there was a login, and problems worth a warning."""
        record = self.load(fresh=True)
        problems: list[str] = []
        if record is not None:
            try:
                await self._revoke(record, problems)
            except Exception as exc:  # never keep tokens the user asked to forget
                problems.append(f"revocation skipped: {exc}")
        self._forget()
        self._event("auth.logout", "ok" if record is not None else "not_logged_in")
        return record is not None, problems

    async def _revoke(self, record: TokenRecord, problems: list[str]) -> None:
        """Revoke ``record``'s tokens at the provider, adding what went wrong to
        ``problems`` as it happens (a later failure must not lose an earlier one)."""
        async with self._client() as client:
            url = (await self.endpoints(client)).revocation_endpoint
            if not url:
                problems.append(
                    "the provider has no revocation endpoint; "
                    "the tokens stay valid until they expire"
                )
                return
            for token, hint in (
                (record.refresh_token, "refresh_token"),
                (record.access_token, "access_token"),
            ):
                reason = await revoke(client, url, self.cfg, token, hint) if token else None
                if reason:
                    problems.append(f"revoking the {hint.replace('_', ' ')}: {reason}")

    def status(self) -> dict[str, Any]:
        record = self.load(fresh=True)
        row: dict[str, Any] = {
            "provider": self.name,
            "logged_in": record is not None,
            "scope": record.scope if record is not None else None,
            "expires_in_s": None,
            "refreshable": bool(record and record.refresh_token),
            "storage": self.store.describe(),
        }
        if record is not None:
            row["expires_in_s"] = record.expires_in(self.clock.time())
        return row
