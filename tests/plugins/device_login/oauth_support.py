"""Shared helpers for the device-login tests (no tests here).

- `ScriptedOAuthServer`: a real HTTP server on 127.0.0.1 answering device-authorization
  and token requests from a script, recording every form it received; used where the
  real oidc-provider cannot produce a case (GitHub-style errors, hangs, odd answers).
- `FakeClock`: virtual time for the polling state machine — `sleep` advances the clock
  instead of waiting (the HTTP traffic stays real).
- keyring fixtures: `real_keyring` (skips without a usable Secret Service backend, fails
  instead when AGENTSHELL_TESTS_REQUIRE_KEYRING=1) and `no_keyring` (the keyring library's
  own fail backend — what a machine without D-Bus has — to exercise the file fallback).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest

from agentshell import keyring_usable
from tests.servers._http import LoopbackHTTPServer, LoopbackServerBase, QuietHandler

_REQUIRE_KEYRING = os.environ.get("AGENTSHELL_TESTS_REQUIRE_KEYRING") == "1"


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | str | None = None
    delay_s: float = 0.0  # sleep before answering (a hung server when > client timeout)
    #: answer only once this is set (the test decides when an in-flight request ends)
    hold: threading.Event | None = None


@dataclass
class Received:
    path: str
    form: dict[str, str]
    authorization: str | None


@dataclass
class _State:
    scripts: dict[str, deque[Reply]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(QuietHandler):
    server: LoopbackHTTPServer

    def do_GET(self) -> None:
        owner = cast(ScriptedOAuthServer, self.server.owner)
        path = urlsplit(self.path).path
        with owner.state.lock:
            owner.state.received.append(Received(path, {}, self.headers.get("Authorization")))
            queue = owner.state.scripts.get(path)
            reply = queue.popleft() if queue else Reply(404, {"error": "not_found"})
        body = reply.body
        self.send_bytes(
            reply.status, body.encode() if isinstance(body, str) else json.dumps(body).encode()
        )

    def do_POST(self) -> None:
        owner = cast(ScriptedOAuthServer, self.server.owner)
        raw = self.read_body().decode()
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        path = urlsplit(self.path).path
        with owner.state.lock:
            owner.state.received.append(Received(path, form, self.headers.get("Authorization")))
            queue = owner.state.scripts.get(path)
            reply = queue.popleft() if queue else owner.fallback(path, form)
        if reply.delay_s and owner.stopping.wait(reply.delay_s):
            return
        if reply.hold is not None:
            while not reply.hold.wait(0.05):
                if owner.stopping.is_set():
                    return
        body = reply.body
        data = body.encode() if isinstance(body, str) else json.dumps(body or {}).encode()
        with contextlib.suppress(OSError):  # the client gave up (timeout test)
            self.send_bytes(reply.status, data)


class ScriptedOAuthServer(LoopbackServerBase):
    handler_class = _Handler

    def __init__(self) -> None:
        super().__init__()
        self.state = _State()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, path: str, *replies: Reply) -> None:
        with self.state.lock:
            self.state.scripts.setdefault(path, deque()).extend(replies)

    def received(self, path: str | None = None) -> list[Received]:
        with self.state.lock:
            return [r for r in self.state.received if path is None or r.path == path]

    def fallback(self, path: str, form: dict[str, str]) -> Reply:
        return Reply(
            500, {"error": "server_error", "error_description": f"nothing scripted for {path}"}
        )

    def device_reply(self, **overrides: Any) -> Reply:
        body = {
            "device_code": "dc-" + uuid.uuid4().hex,
            "user_code": "WDJB-MJHT",
            "verification_uri": f"{self.url}/device",
            "expires_in": 600,
        }
        body.update(overrides)
        return Reply(200, {k: v for k, v in body.items() if v is not None})

    def provider_toml(self, name: str = "scripted", **extra: Any) -> str:
        lines = [
            f"[plugins.device_login.providers.{name}]",
            f'device_authorization_endpoint = "{self.url}/device/code"',
            f'token_endpoint = "{self.url}/token"',
            'client_id = "test-client"',
        ]
        lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
        return "\n".join(lines) + "\n"


@pytest.fixture(name="oauth_server")
def oauth_server_fixture() -> Iterator[ScriptedOAuthServer]:
    with ScriptedOAuthServer() as server:
        yield server


class FakeClock:
    """Virtual monotonic and wall time; ``sleep`` advances both and yields to the loop."""

    def __init__(self, wall: float = 1_800_000_000.0) -> None:
        self.now = 0.0
        self.wall0 = wall
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall0 + self.now

    async def sleep(self, seconds: float) -> None:
        import asyncio

        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture(name="real_keyring")
def real_keyring_fixture() -> str:
    """The name of a usable secure keyring backend, or skip (fail in CI) without one."""
    ok, name = keyring_usable()
    if not ok:
        reason = (
            f"no usable Secret Service keyring (backend: {name}); run the tests under "
            "tests/run_with_keyring.sh"
        )
        if _REQUIRE_KEYRING:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return name


@pytest.fixture(name="no_keyring")
def no_keyring_fixture() -> Iterator[None]:
    """Select the keyring library's fail backend (what a machine without D-Bus gets)."""
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        keyring.set_keyring(previous)


def unique_name(prefix: str = "idp") -> str:
    """Provider names unique per test, so keyring entries never collide or leak."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def keyring_entry(name: str) -> dict[str, Any] | None:
    import keyring

    raw = keyring.get_password("agentshell", f"device_login:{name}")
    return None if raw is None else cast(dict[str, Any], json.loads(raw))


def delete_keyring_entry(name: str) -> None:
    import keyring
    from keyring.errors import PasswordDeleteError

    with contextlib.suppress(PasswordDeleteError):
        keyring.delete_password("agentshell", f"device_login:{name}")


class ScaledClock:
    """Real time, sped up: ``sleep(s)`` waits ``s * scale`` real seconds and ``monotonic``
    runs ``1/scale`` times faster, so RFC-sized intervals (5 s slow_down steps) stay
    consistent with each other against a real server while the test stays short."""

    def __init__(self, scale: float) -> None:
        import time

        self.scale = scale
        self._t0 = time.monotonic()

    def monotonic(self) -> float:
        import time

        return (time.monotonic() - self._t0) / self.scale

    def time(self) -> float:
        import time

        return time.time()

    async def sleep(self, seconds: float) -> None:
        import asyncio

        await asyncio.sleep(seconds * self.scale)


async def wait_until(predicate: Any, what: str, limit_s: float = 30.0) -> None:
    """Poll ``predicate`` (cheap, in-process state) until true; fail after ``limit_s``
    (a bound for a hang, generous for a loaded machine: it returns as soon as true)."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
