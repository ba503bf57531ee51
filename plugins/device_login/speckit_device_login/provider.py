"""One configured device-login provider: implements :class:`agentshell.auth.AuthProvider`
and carries out /login, /logout and the refreshes backends trigger."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal

import httpx

from agentshell import describe_http_error
from agentshell.auth import Credentials, TokenStore, keyring_problem
from agentshell.errors import AgentDisconnected, AgentshellError, AuthRequired

from .config import ProviderConfig
from .discovery import DiscoveryError, Endpoints, resolve_endpoints
from .events import AuthEvent
from .flow import DeviceAuthorization, LoginFailed, Poller, login_command, request_device_code
from .oauth import BadAnswer, Clock, OAuthError, SystemClock
from .tokens import TokenRecord, refresh, revoke
from .ui import LoginView

EventType = Literal["auth.login", "auth.refresh", "auth.logout"]
REFRESH_MARGIN_S = 300.0  # refresh tokens that expire within 5 minutes
#: after a refresh failed for a passing reason, use the valid token this long before
#: asking the issuer again
REFRESH_RETRY_S = 30.0
LOCK_POLL_S = 0.05  # how often a process waiting for another's refresh looks again
LOCK_SLACK_S = 5.0  # beyond two HTTP timeouts (discovery, refresh) the holder may need


class _LockBusy(Exception):
    """Another process held the refresh lock for longer than a refresh can take."""


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
        # one refresh at a time: concurrent agent calls wait for it and reuse the result;
        # other processes are kept out by a file lock beside the data dir's state
        self._refresh_lock = asyncio.Lock()
        self.lock_path = Path(shell.data_dir) / "locks" / f"device_login-{name}.lock"
        self._retry_at: float | None = None  # monotonic time before which not to retry
        self._warned_stale = False

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
        """Refresh ``seen`` unless someone already did: one refresh at a time in this
        process (the asyncio lock) and across processes (the file lock). A refresh token
        sent twice is a reuse to the issuer, which then revokes the whole grant."""
        async with self._refresh_lock:
            current = self.load(fresh=True)
            if current is None or current.access_token != seen.access_token:
                return current  # logged out, or refreshed by whoever held the lock before
            if not self._refresh_due(current, force):
                return current
            try:
                async with self._process_lock():
                    # another process may have refreshed while we waited for the lock
                    latest = self.load(fresh=True)
                    if latest is None or latest.access_token != seen.access_token:
                        return latest
                    return await self._refresh_locked(latest, force=force)
            except _LockBusy:
                return self._cannot_refresh(
                    current, "another agentshell process has been refreshing it too long", force
                )

    def _refresh_due(self, current: TokenRecord, force: bool) -> bool:
        if force:
            return True
        now = self.clock.time()
        if not current.expires_within(REFRESH_MARGIN_S, now):
            return False
        # after a failed attempt, a still-valid token is used for a while before trying
        # again, so a hung issuer does not stall every agent call for its timeout
        backing_off = self._retry_at is not None and self.clock.monotonic() < self._retry_at
        return not (backing_off and not current.expires_within(0, now))

    async def _refresh_locked(self, current: TokenRecord, *, force: bool) -> TokenRecord | None:
        now = self.clock.time()
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
        except DiscoveryError as exc:
            if exc.transient:
                return self._cannot_refresh(current, exc.reason, force)
            self._event("auth.refresh", "error")
            if still_valid and not force:
                self.shell.output.warn(f"{self.name}: token refresh failed ({exc.reason})")
                return current
            raise
        except httpx.HTTPError as exc:
            return self._cannot_refresh(
                current, f"cannot reach the token endpoint: {describe_http_error(exc)}", force
            )
        except OAuthError as exc:
            if exc.error == "invalid_grant":
                return self._rejected(current)
            if isinstance(exc, BadAnswer) and exc.transient:
                return self._cannot_refresh(current, str(exc), force)
            self._event("auth.refresh", "error")
            if still_valid and not force:
                self.shell.output.warn(f"{self.name}: token refresh failed ({exc})")
                return current
            raise AuthRequired(
                f"{self.name}: token refresh failed ({exc})", fix=self.login_command()
            ) from None
        self._save(new)
        self._retry_at = None
        self._warned_stale = False
        self._event("auth.refresh", "ok")
        return new

    def _cannot_refresh(self, current: TokenRecord, reason: str, force: bool) -> TokenRecord:
        """The issuer could not be asked (unreachable, 5xx, busy lock): keep using the
        token while it is valid — saying so once — else fail with a retryable error."""
        self._event("auth.refresh", "error")
        self._retry_at = self.clock.monotonic() + REFRESH_RETRY_S
        left = current.expires_in(self.clock.time())
        if force or (left is not None and left <= 0):
            raise AgentDisconnected(f"{self.name}: cannot refresh the access token: {reason}")
        if not self._warned_stale:
            self._warned_stale = True
            from .ui import clock_text

            until = "" if left is None else f" (in {clock_text(left)})"
            self.shell.output.warn(
                f"{self.name}: cannot refresh the access token: {reason}; "
                f"using the current one until it expires{until}"
            )
        return current

    def _rejected(self, sent: TokenRecord) -> TokenRecord:
        """The issuer refused ``sent``'s refresh token. Forget the login, unless the
        stored record is no longer ``sent`` (another process logged in or refreshed
        meanwhile): that one is newer and must survive."""
        stored = self.load(fresh=True)
        if stored is not None and (
            stored.refresh_token != sent.refresh_token or stored.access_token != sent.access_token
        ):
            return stored
        self._forget()
        self._event("auth.refresh", "rejected")
        raise AuthRequired(
            f"{self.name}: the refresh token was rejected; log in again",
            fix=self.login_command(),
        )

    @contextlib.asynccontextmanager
    async def _process_lock(self) -> AsyncIterator[None]:
        """The file lock that makes refresh (and logout) single-flight across processes.
        Polled without blocking so that cancelling a waiting call leaves nothing held."""
        from filelock import FileLock, Timeout

        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.lock_path, thread_local=False)
        # real time, not self.clock: this waits for another process, which tests' fake
        # clocks do not move
        deadline = time.monotonic() + 2 * self.cfg.http_timeout_s + LOCK_SLACK_S
        waiting = False
        while True:
            try:
                lock.acquire(timeout=0)
                break
            except Timeout:
                pass
            if not waiting:
                waiting = True
                self.shell.output.info(
                    f"{self.name}: another agentshell process is refreshing this login; "
                    "waiting for it"
                )
            if time.monotonic() >= deadline:
                raise _LockBusy
            await asyncio.sleep(LOCK_POLL_S)
        try:
            yield
        finally:
            lock.release()

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
            where = await self._store_login(record)
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
        approving a login only to lose its tokens wastes the user's time. The probe
        writes to the keyring, so a locked one is found now, not after approval."""
        self.store.probe()
        if not self.store.writable:
            raise LoginFailed(f"{self.name}: cannot log in: {self._no_storage()}", "error")

    def _no_storage(self) -> str:
        why = f" ({self.store.unusable_reason})" if self.store.unusable_reason else ""
        return (
            f"no secure keyring is available{why} and plain-text storage is disabled "
            "(allow_plaintext = false)"
        )

    async def _store_login(self, record: TokenRecord) -> str:
        """Save the new tokens; if that fails, revoke them (tokens nobody holds must not
        stay valid at the issuer) and say both."""
        try:
            async with self._process_lock():
                return self._save(record)
        except AgentshellError:  # the store refused (allow_plaintext = false)
            why = self._no_storage()
        except _LockBusy:
            why = "another agentshell process kept the login locked"
        except OSError as exc:  # the plain-text file
            why = f"cannot write {self.store.plaintext_path}: {exc.strerror or 'failed'}"
        except Exception as exc:  # a keyring error: in words, never its text (secrets)
            why = keyring_problem(exc)
        problems: list[str] = []
        try:
            await self._revoke(record, problems)
        except Exception as exc:
            problems.append(self._reason(exc))
        if problems:
            after = f"revoking them failed too ({'; '.join(problems)})"
        else:
            after = "they were revoked at the provider"
        raise LoginFailed(f"{self.name}: the tokens were not stored ({why}); {after}", "error")

    def _reason(self, exc: BaseException) -> str:
        """``exc`` in words without our own ``<name>: `` prefix (callers add context)."""
        if isinstance(exc, DiscoveryError):
            return exc.reason
        if isinstance(exc, httpx.HTTPError):
            return describe_http_error(exc)
        if isinstance(exc, AgentshellError | OAuthError):
            text = str(exc)
            return text.removeprefix(f"{self.name}: ")
        return "an unexpected error"

    async def logout(self) -> tuple[bool, list[str]]:
        """Revoke (refresh token first: that ends the whole grant) and delete locally.
        Returns whether there was a login, and problems worth a warning."""
        async with self._refresh_lock:
            try:
                async with self._process_lock():
                    return await self._logout_locked()
            except _LockBusy:  # never keep tokens the user asked to forget
                return await self._logout_locked()

    async def _logout_locked(self) -> tuple[bool, list[str]]:
        record = self.load(fresh=True)
        problems: list[str] = []
        if record is not None:
            try:
                await self._revoke(record, problems)
            except Exception as exc:  # never keep tokens the user asked to forget
                problems.append(f"revocation skipped: {self._reason(exc)}")
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

    def storage(self) -> str:
        """Where tokens are kept, as a sentence, found out the way /login would."""
        self.store.probe()
        if not self.store.writable:
            return f"tokens cannot be stored: {self._no_storage()}"
        return f"tokens are stored in: {self.store.describe()}"

    def status(self) -> dict[str, Any]:
        record = self.load(fresh=True)
        row: dict[str, Any] = {
            "provider": self.name,
            "logged_in": record is not None,
            "scope": record.scope if record is not None else None,
            "expires_in_s": None,
            "refreshable": bool(record and record.refresh_token),
            "storage": self.storage(),
        }
        if record is not None:
            row["expires_in_s"] = record.expires_in(self.clock.time())
        return row
