"""The RFC 8628 polling state machine against a real loopback HTTP server with scripted
answers, on virtual time (FakeClock) so slow_down's +5 s and the 5 s default cost nothing."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from speckit_device_login.config import ProviderConfig
from speckit_device_login.discovery import Endpoints
from speckit_device_login.flow import (
    DEVICE_CODE_GRANT,
    DeviceAuthorization,
    LoginFailed,
    Poller,
    request_device_code,
)
from tests.plugins.device_login.oauth_support import (  # noqa: F401 - fixtures
    FakeClock,
    Reply,
    ScriptedOAuthServer,
    oauth_server_fixture,
    wait_until,
)

PENDING = Reply(400, {"error": "authorization_pending"})
TOKENS = Reply(
    200,
    {
        "access_token": "at-flow-123456",
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": "rt-flow-123456",
        "scope": "openid offline_access",
    },
)


def _setup(
    server: ScriptedOAuthServer,
    *,
    interval: float | None = None,
    expires_in: float = 600,
    http_timeout_s: float = 5.0,
) -> tuple[ProviderConfig, Endpoints, DeviceAuthorization]:
    cfg = ProviderConfig(
        device_authorization_endpoint=f"{server.url}/device/code",
        token_endpoint=f"{server.url}/token",
        client_id="test-client",
        http_timeout_s=http_timeout_s,
    )
    endpoints = Endpoints(
        device_authorization_endpoint=f"{server.url}/device/code",
        token_endpoint=f"{server.url}/token",
    )
    auth = DeviceAuthorization(
        device_code="dc-secret-0001",
        user_code="ABCD-EFGH",
        verification_uri=f"{server.url}/device",
        expires_in=expires_in,
        interval=interval,
    )
    return cfg, endpoints, auth


async def _poll(
    server: ScriptedOAuthServer,
    clock: FakeClock,
    notices: list[str] | None = None,
    **kw: float | None,
) -> Poller:
    cfg, endpoints, auth = _setup(server, **kw)  # type: ignore[arg-type]
    async with httpx.AsyncClient(timeout=cfg.http_timeout_s) as client:
        poller = Poller(
            client,
            "scripted",
            endpoints,
            cfg,
            auth,
            clock,
            started=clock.monotonic(),
            notice=(notices.append if notices is not None else lambda m: None),
        )
        await poller.run()
    return poller


def _gaps(times: list[float]) -> list[float]:
    return [round(b - a, 6) for a, b in zip([0.0, *times], times, strict=False)]


async def test_pending_then_tokens_with_the_5s_default_interval(
    oauth_server: ScriptedOAuthServer,
) -> None:
    oauth_server.script("/token", PENDING, PENDING, TOKENS)
    clock = FakeClock()
    poller = await _poll(oauth_server, clock)
    assert _gaps(poller.poll_times) == [5.0, 5.0, 5.0]
    forms = [r.form for r in oauth_server.received("/token")]
    assert all(f["grant_type"] == DEVICE_CODE_GRANT for f in forms)
    assert all(
        f["device_code"] == "dc-secret-0001" and f["client_id"] == "test-client" for f in forms
    )


async def test_server_interval_is_used(oauth_server: ScriptedOAuthServer) -> None:
    oauth_server.script("/token", PENDING, TOKENS)
    poller = await _poll(oauth_server, FakeClock(), interval=7)
    assert _gaps(poller.poll_times) == [7.0, 7.0]


async def test_slow_down_adds_five_seconds_for_every_later_poll(
    oauth_server: ScriptedOAuthServer,
) -> None:
    slow = Reply(400, {"error": "slow_down"})
    oauth_server.script("/token", PENDING, slow, PENDING, slow, PENDING, TOKENS)
    notices: list[str] = []
    poller = await _poll(oauth_server, FakeClock(), notices, interval=2)
    # the interval after a slow_down applies to that retry and all later polls
    assert _gaps(poller.poll_times) == [2.0, 2.0, 7.0, 7.0, 12.0, 12.0]
    assert notices == [
        "scripted: the server asked to poll more slowly: every 7 s now",
        "scripted: the server asked to poll more slowly: every 12 s now",
    ]


async def test_github_style_errors_with_http_200(oauth_server: ScriptedOAuthServer) -> None:
    oauth_server.script("/token", Reply(200, {"error": "authorization_pending"}), TOKENS)
    poller = await _poll(oauth_server, FakeClock(), interval=5)
    assert len(poller.poll_times) == 2


@pytest.mark.parametrize(
    ("error", "message", "outcome"),
    [
        ("access_denied", "scripted: login was denied", "denied"),
        ("expired_token", "scripted: the code expired; run /login scripted again", "expired"),
    ],
)
async def test_terminal_errors(
    oauth_server: ScriptedOAuthServer, error: str, message: str, outcome: str
) -> None:
    oauth_server.script("/token", PENDING, Reply(400, {"error": error}))
    with pytest.raises(LoginFailed) as info:
        await _poll(oauth_server, FakeClock(), interval=1)
    assert str(info.value) == message
    assert info.value.outcome == outcome
    assert len(oauth_server.received("/token")) == 2  # stopped at once


async def test_other_error_shows_error_and_redacted_description(
    oauth_server: ScriptedOAuthServer,
) -> None:
    oauth_server.script(
        "/token",
        Reply(
            400,
            {
                "error": "invalid_client",
                "error_description": "unknown client; device_code=dc-secret-0001",
            },
        ),
    )
    with pytest.raises(LoginFailed) as info:
        await _poll(oauth_server, FakeClock(), interval=1)
    text = str(info.value)
    assert text.startswith("scripted: login failed: invalid_client: unknown client")
    assert "dc-secret-0001" not in text
    assert info.value.outcome == "error"


async def test_network_timeout_doubles_the_interval(oauth_server: ScriptedOAuthServer) -> None:
    # a hung server (it answers only when stopped) against a 1 s client timeout; the
    # last, prompt answer must come within that timeout, which 0.2 s was too tight for on
    # a loaded machine (a real round trip then timed out too and the gaps came out wrong)
    hang = Reply(200, TOKENS.body, delay_s=120.0)
    oauth_server.script("/token", hang, hang, TOKENS)
    notices: list[str] = []
    poller = await _poll(oauth_server, FakeClock(), notices, interval=3, http_timeout_s=1.0)
    assert _gaps(poller.poll_times) == [3.0, 6.0, 12.0]
    assert notices[0].startswith("scripted: the token endpoint did not answer (read timed out)")


async def test_hard_deadline_at_expires_in(oauth_server: ScriptedOAuthServer) -> None:
    oauth_server.script("/token", *[PENDING] * 20)
    clock = FakeClock()
    with pytest.raises(LoginFailed) as info:
        await _poll(oauth_server, clock, interval=4, expires_in=10)
    assert info.value.outcome == "expired"
    assert str(info.value) == "scripted: the code expired; run /login scripted again"
    assert len(oauth_server.received("/token")) == 2  # at 4 s and 8 s; 12 s is past the deadline
    assert clock.now == pytest.approx(10.0)


async def test_cancellation_stops_polling(oauth_server: ScriptedOAuthServer) -> None:
    oauth_server.script("/token", *[PENDING] * 1000)

    class SlowClock(FakeClock):
        async def sleep(self, seconds: float) -> None:
            self.now += seconds
            await asyncio.sleep(0.01)

    task = asyncio.create_task(_poll(oauth_server, SlowClock(), interval=1))
    await wait_until(lambda: len(oauth_server.received("/token")) >= 2, "two polls")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    count = len(oauth_server.received("/token"))
    await asyncio.sleep(0.3)  # a live poller would poll many times (every ~0.01 s) meanwhile
    # the server records a request when its handler thread gets to it: one that was in
    # flight at the cancel may be recorded just after ``count`` was taken, no more
    assert len(oauth_server.received("/token")) <= count + 1


async def test_device_authorization_request_and_response(oauth_server: ScriptedOAuthServer) -> None:
    oauth_server.script("/device/code", oauth_server.device_reply(interval=3))
    cfg, endpoints, _ = _setup(oauth_server)
    async with httpx.AsyncClient() as client:
        auth = await request_device_code(client, "scripted", endpoints, cfg)
    assert auth.interval == 3
    assert "device_code" not in repr(auth) and auth.device_code not in repr(auth)
    (received,) = oauth_server.received("/device/code")
    assert received.form == {"client_id": "test-client", "scope": "openid offline_access"}
    assert received.authorization is None  # a public client does not authenticate


@pytest.mark.parametrize(
    "override",
    [
        {"verification_uri": "http://evil.example/device"},
        {"verification_uri_complete": "http://evil.example/device?user_code=X"},
    ],
)
async def test_non_https_verification_uri_is_refused(
    oauth_server: ScriptedOAuthServer, override: dict[str, str]
) -> None:
    oauth_server.script("/device/code", oauth_server.device_reply(**override))
    cfg, endpoints, _ = _setup(oauth_server)
    async with httpx.AsyncClient() as client:
        with pytest.raises(LoginFailed, match="only https is allowed"):
            await request_device_code(client, "scripted", endpoints, cfg)


async def test_malformed_device_response_names_fields_not_values(
    oauth_server: ScriptedOAuthServer,
) -> None:
    oauth_server.script(
        "/device/code", Reply(200, {"device_code": "dc-leak-check-77", "expires_in": 5})
    )
    cfg, endpoints, _ = _setup(oauth_server)
    async with httpx.AsyncClient() as client:
        with pytest.raises(LoginFailed) as info:
            await request_device_code(client, "scripted", endpoints, cfg)
    assert "user_code" in str(info.value) and "verification_uri" in str(info.value)
    assert "dc-leak-check-77" not in str(info.value)


def test_countdown_on_a_terminal_is_one_rewritten_line() -> None:
    import os

    from agentshell import Output
    from speckit_device_login.ui import LoginView

    master, slave = os.openpty()  # a real terminal, so isatty() is true
    with os.fdopen(slave, "w", encoding="utf-8") as stream:
        view = LoginView(Output(stream=stream))
        assert view.tty
        view.tick(125)
        view.tick(124)
        view.end()
    # read to the end: one read() may return only part of it on a busy machine (the
    # slave is closed, so Linux reports EIO once the buffer is drained)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    data = b"".join(chunks).decode()
    assert "waiting for approval, 2:05 left" in data
    assert "waiting for approval, 2:04 left" in data
    assert "\n" not in data  # the same line is rewritten, never scrolled


def test_countdown_without_a_terminal_prints_plain_lines_every_30_s() -> None:
    import io

    from agentshell import Output
    from speckit_device_login.ui import LoginView

    buffer = io.StringIO()
    view = LoginView(Output(stream=buffer))
    assert not view.tty
    for remaining in range(600, 530, -1):
        view.tick(remaining)
    assert buffer.getvalue().splitlines() == [
        "waiting for approval, 9:30 left",
        "waiting for approval, 9:00 left",
    ]
