"""RFC 8628: the device authorization request and the token polling state machine.

The machine is pure asyncio + httpx with an injected :class:`Clock`, so tests can run
it against a real loopback server without waiting real seconds; the UI is reached
only through the ``tick`` and ``notice`` callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from agentshell import describe_http_error
from agentshell.errors import CommandError
from agentshell.redact import register_secret

from .config import ProviderConfig
from .discovery import Endpoints
from .oauth import BadAnswer, Clock, OAuthError, post_form
from .urls import check_endpoint

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP_S = 5.0  # RFC 8628 §3.5
#: backing off (timeouts, server errors) doubles the interval up to this; slow_down
#: may still raise it further, as the server asked
MAX_BACKOFF_INTERVAL_S = 60.0
TICK_S = 1.0  # how often the countdown is refreshed


def login_command(name: str) -> str:
    """The command that starts a login for ``name``, exactly as it must be typed: a
    name that looks like an option (``--x``) goes after ``--``."""
    return f"/login -- {name}" if name.startswith("--") else f"/login {name}"


def expired_message(name: str) -> str:
    return f"{name}: the code expired; run {login_command(name)} again"


#: RFC 8628 §3.5 answers that steer polling, whatever HTTP status carries them
_POLL_ERRORS = {"authorization_pending", "slow_down", "access_denied", "expired_token"}


def _answer_text(exc: OAuthError) -> str:
    """A server failure in words: ``HTTP 502 from the token endpoint`` (no pseudo
    codes), or the OAuth error the server sent with it."""
    if isinstance(exc, BadAnswer):
        return str(exc)
    return f"the token endpoint failed (HTTP {exc.status}: {exc})"


class LoginFailed(CommandError):
    """The login stopped; ``outcome`` is what telemetry records (no secrets)."""

    def __init__(self, message: str, outcome: str) -> None:
        super().__init__(message)
        self.outcome = outcome


class DeviceAuthorization(BaseModel):
    """RFC 8628 §3.2. ``device_code`` is a secret: never shown, never logged."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    device_code: str = Field(min_length=1, repr=False)
    user_code: str = Field(min_length=1)
    # Google calls it verification_url
    verification_uri: str = Field(
        validation_alias=AliasChoices("verification_uri", "verification_url")
    )
    verification_uri_complete: str | None = None
    expires_in: float = Field(gt=0)
    interval: float | None = Field(default=None, gt=0)

    def model_post_init(self, __context: Any) -> None:
        register_secret(self.device_code)


class TokenResponse(BaseModel):
    """RFC 6749 §5.1 — every token is registered as a secret as soon as it is parsed."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    access_token: str = Field(min_length=1, repr=False)
    token_type: str = "Bearer"
    expires_in: float | None = None
    refresh_token: str | None = Field(default=None, repr=False)
    id_token: str | None = Field(default=None, repr=False)
    scope: str | None = None

    def model_post_init(self, __context: Any) -> None:
        for value in (self.access_token, self.refresh_token, self.id_token):
            register_secret(value)


def register_secrets_in(body: dict[str, Any]) -> None:
    # before validation, so even a malformed answer cannot leak a token into an error
    for key in ("device_code", "access_token", "refresh_token", "id_token"):
        value = body.get(key)
        if isinstance(value, str):
            register_secret(value)


async def request_device_code(
    client: httpx.AsyncClient, name: str, endpoints: Endpoints, cfg: ProviderConfig
) -> DeviceAuthorization:
    try:
        body = await post_form(
            client,
            endpoints.device_authorization_endpoint,
            {"scope": cfg.scope},
            cfg,
            endpoint="device authorization endpoint",
        )
    except OAuthError as exc:
        raise LoginFailed(
            f"{name}: the device authorization request failed: {exc}", "error"
        ) from None
    except httpx.HTTPError as exc:
        raise LoginFailed(
            f"{name}: cannot reach the device authorization endpoint ({describe_http_error(exc)})",
            "error",
        ) from None
    register_secrets_in(body)
    try:
        auth = DeviceAuthorization.model_validate(body)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
        raise LoginFailed(
            f"{name}: invalid device authorization response ({fields})", "error"
        ) from None
    for url in (auth.verification_uri, auth.verification_uri_complete):
        if url is not None:
            try:
                check_endpoint(url, "verification URI")
            except ValueError as exc:
                raise LoginFailed(f"{name}: {exc}", "error") from None
    return auth


class Poller:
    """Polls the token endpoint until the user approves, denies, or the code expires."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        name: str,
        endpoints: Endpoints,
        cfg: ProviderConfig,
        auth: DeviceAuthorization,
        clock: Clock,
        *,
        started: float,
        tick: Callable[[float], None] = lambda remaining: None,
        notice: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.client = client
        self.name = name
        self.endpoints = endpoints
        self.cfg = cfg
        self.auth = auth
        self.clock = clock
        # the deadline counts from when the request was sent, so it is never late
        self.deadline = started + auth.expires_in
        self.interval = auth.interval if auth.interval is not None else cfg.poll_interval_s
        self.poll_times: list[float] = []  # clock.monotonic() of each poll (for tests)
        self._tick = tick
        self._notice = notice

    def remaining(self) -> float:
        return max(self.deadline - self.clock.monotonic(), 0.0)

    async def _wait(self, seconds: float) -> bool:
        """Wait ``seconds`` (cut at the deadline); False when the deadline was reached."""
        end = min(self.clock.monotonic() + seconds, self.deadline)
        while (left := end - self.clock.monotonic()) > 0:
            self._tick(self.remaining())
            await self.clock.sleep(min(left, TICK_S))
        self._tick(self.remaining())
        return self.clock.monotonic() < self.deadline

    async def run(self) -> tuple[TokenResponse, float]:
        """The token response and the wall-clock time its request was sent."""
        data = {"grant_type": DEVICE_CODE_GRANT, "device_code": self.auth.device_code}
        while True:
            if not await self._wait(self.interval):
                raise LoginFailed(expired_message(self.name), "expired")
            sent = self.clock.time()
            self.poll_times.append(self.clock.monotonic())
            try:
                body = await post_form(
                    self.client,
                    self.endpoints.token_endpoint,
                    data,
                    self.cfg,
                    endpoint="token endpoint",
                )
            except httpx.TransportError as exc:
                # RFC 8628 §3.5: back off on connection timeouts (doubling recommended)
                self._back_off(f"the token endpoint did not answer ({describe_http_error(exc)})")
                continue
            except OAuthError as exc:
                if exc.transient and exc.error not in _POLL_ERRORS:
                    # a 5xx, a proxy's page, a restarting server: the code is still
                    # good, so keep asking (less often) until it expires
                    self._back_off(_answer_text(exc))
                    continue
                self._handle_error(exc)
                continue
            register_secrets_in(body)
            try:
                return TokenResponse.model_validate(body), sent
            except ValidationError:
                raise LoginFailed(
                    f"{self.name}: the token endpoint answered without an access token", "error"
                ) from None

    def _back_off(self, why: str) -> None:
        self.interval = max(self.interval, min(self.interval * 2, MAX_BACKOFF_INTERVAL_S))
        self._notice(f"{self.name}: {why}; polling every {self.interval:g} s")

    def _handle_error(self, exc: OAuthError) -> None:
        if exc.error == "authorization_pending":
            return
        if exc.error == "slow_down":
            self.interval += SLOW_DOWN_STEP_S
            self._notice(
                f"{self.name}: the server asked to poll more slowly: every {self.interval:g} s now"
            )
            return
        if exc.error == "access_denied":
            raise LoginFailed(f"{self.name}: login was denied", "denied")
        if exc.error == "expired_token":
            raise LoginFailed(expired_message(self.name), "expired")
        raise LoginFailed(f"{self.name}: login failed: {exc}", "error")
