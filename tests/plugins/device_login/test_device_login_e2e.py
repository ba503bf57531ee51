"""End to end against a REAL authorization server (npm oidc-provider on 127.0.0.1): the
test plays the user in the browser (complete_device_flow) while the shell polls.

The main flow also needs a REAL keyring (Secret Service via gnome-keyring; run under
tests/run_with_keyring.sh) and skips with the reason otherwise. The other flows use the
keyring library's fail backend (the plain-text file fallback), so they always run where
Node.js is available."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentshell import AgentRequest, AuthRequired
from speckit_device_login.events import AuthEvent
from speckit_device_login.flow import DeviceAuthorization
from speckit_device_login.provider import DeviceLoginProvider
from tests.conftest import CapturedOutput
from tests.helpers.events import ListSink
from tests.plugins.device_login.oauth_support import (  # noqa: F401 - fixtures
    ScaledClock,
    delete_keyring_entry,
    keyring_entry,
    no_keyring_fixture,
    real_keyring_fixture,
    unique_name,
    wait_until,
)
from tests.servers.fixtures import OIDCServerFactory
from tests.servers.oidc_server import OIDCServer, complete_device_flow
from tests.servers.openai_server import OpenAIServer, ScriptedReply

pytestmark = pytest.mark.e2e

URL_LINE = re.compile(r"Or open (\S+) \(the code is filled in\)")


class Events(ListSink):
    def auth(self, shell: Any) -> list[tuple[str, str]]:
        assert shell.telemetry.flush(30)  # returns once delivered
        return [(e.type, e.outcome) for e in self.events if isinstance(e, AuthEvent)]


@pytest.fixture(autouse=True)
def _plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "builtins,device_login,openai,jsonl")


def provider_toml(name: str, server: OIDCServer, **extra: Any) -> str:
    lines = [
        f"[plugins.device_login.providers.{name}]",
        f'issuer = "{server.issuer}"',
        f'client_id = "{server.client_id}"',
        "poll_interval_s = 0.1",  # oidc-provider sends no interval; 5 s would be slow
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


async def start(
    make_shell: Any, name: str, config: str
) -> tuple[Any, DeviceLoginProvider, list[DeviceAuthorization], Events]:
    shell = await make_shell(config=config)
    events = Events()
    shell.telemetry.add_sink("test-events", events)
    provider = shell.auth.provider(name)
    assert isinstance(provider, DeviceLoginProvider)
    seen: list[DeviceAuthorization] = []
    provider.on_device_code = seen.append
    return shell, provider, seen, events


async def shown_url(output: CapturedOutput, count: int = 1) -> str:
    """The verification_uri_complete the shell printed (the user copies it)."""
    await wait_until(lambda: len(URL_LINE.findall(output.text)) >= count, "the URL to be shown")
    return str(URL_LINE.findall(output.text)[count - 1])


async def login(shell: Any, name: str, output: CapturedOutput, *, deny: bool = False) -> int:
    task = asyncio.create_task(shell.execute(f"/login {name}"))
    url = await shown_url(output, output.text.count("(the code is filled in)") + 1)
    await asyncio.to_thread(complete_device_flow, url, deny=deny)
    return int(await task)


def token_request(server: OIDCServer, **form: str) -> httpx.Response:
    return httpx.post(
        server.token_endpoint, data={"client_id": server.client_id, **form}, trust_env=False
    )


def scan_for_secrets(roots: list[Path], texts: list[str], secrets: list[str]) -> list[str]:
    leaks: list[str] = []
    scanned = 0
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                scanned += 1
                data = path.read_bytes()
                leaks += [f"{path}: {s[:6]}..." for s in secrets if s.encode() in data]
    for i, text in enumerate(texts):
        leaks += [f"text#{i}: {s[:6]}..." for s in secrets if s in text]
    assert scanned > 0  # the scan looked at something (config, telemetry, ...)
    return leaks


async def test_login_bearer_refresh_logout_with_real_server_and_keyring(
    make_shell: Any,
    output: CapturedOutput,
    oidc_server: OIDCServer,
    openai_server: OpenAIServer,
    real_keyring: str,
    tmp_path: Path,
) -> None:
    name = unique_name("oidc")
    agent_toml = (
        f'[agents.coder]\nbackend = "openai"\nmodel = "gpt-test"\n'
        f'base_url = "{openai_server.base_url}"\nauth = "{name}"\n'
    )
    config = provider_toml(name, oidc_server) + agent_toml
    shell, _provider, seen, events = await start(make_shell, name, config)
    try:
        # -- login: code and URL shown, user completes in the "browser" ----------------
        assert await login(shell, name, output) == 0, output.errors
        (auth,) = seen
        assert f"! First copy your one-time code: {auth.user_code}" in output.text
        assert f"Then open {auth.verification_uri} in a browser" in output.text
        assert f"tokens stored in keyring ({real_keyring})" in output.text

        stored = keyring_entry(name)
        assert stored is not None
        first_access, first_refresh = stored["access_token"], stored["refresh_token"]
        assert stored["scope"] == "openid offline_access"
        assert stored["token_type"] == "Bearer"
        assert stored["expires_at"] == pytest.approx(time.time() + 3600, abs=60)
        assert not (Path(shell.data_dir) / "credentials.json").exists()

        # -- the token is the bearer for an agent with auth = "<provider>" -------------
        agent = shell.agents["coder"]
        response = await shell.runner.run(agent, AgentRequest(prompt="hello"))
        assert response.content == "ok"
        assert openai_server.calls[-1].authorization == f"Bearer {first_access}"

        # -- a 401 makes the backend refresh once (rotation) and retry -----------------
        openai_server.script("gpt-test", [ScriptedReply(status=401)])
        response = await shell.runner.run(agent, AgentRequest(prompt="again"))
        assert response.content == "ok"
        stored = keyring_entry(name)
        assert stored is not None
        second_access, second_refresh = stored["access_token"], stored["refresh_token"]
        assert second_access != first_access and second_refresh != first_refresh
        assert [c.authorization for c in openai_server.calls[-2:]] == [
            f"Bearer {first_access}",
            f"Bearer {second_access}",
        ]

        # -- /auth status: state, scope, expiry, backend; no tokens -------------------
        assert await shell.execute("/auth status") == 0
        assert "keyring" in output.text and "59:" in output.text

        # -- logout revokes: the refresh token no longer works --------------------------
        assert await shell.execute(f"/logout {name}") == 0, output.errors
        assert keyring_entry(name) is None
        answer = token_request(
            oidc_server, grant_type="refresh_token", refresh_token=second_refresh
        )
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
        with pytest.raises(AuthRequired, match=f"not logged in to {name}"):
            await shell.auth.credentials(agent)

        assert events.auth(shell) == [
            ("auth.login", "ok"),
            ("auth.refresh", "ok"),
            ("auth.logout", "ok"),
        ]

        # -- nothing the shell wrote or printed contains a secret ---------------------
        await shell.stop()
        secrets = [auth.device_code, first_access, first_refresh, second_access, second_refresh]
        secrets += [t for t in (stored.get("id_token"),) if t]
        # tmp_path holds the test's AGENTSHELL_HOME (config, data dir) and working dir
        assert Path(shell.data_dir).is_relative_to(tmp_path)
        telemetry = (Path(shell.data_dir) / "telemetry.jsonl").read_text(encoding="utf-8")
        assert '"auth.refresh"' in telemetry  # the scan covers the events written
        assert scan_for_secrets([tmp_path], [output.text, output.errors], secrets) == []
    finally:
        delete_keyring_entry(name)


def nothing_stored(shell: Any, provider: DeviceLoginProvider) -> bool:
    """No record through the store, and none in the plain-text file either."""
    path = Path(shell.data_dir) / "credentials.json"
    in_file = path.exists() and provider.key in json.loads(path.read_text(encoding="utf-8"))
    return provider.load() is None and not in_file


@pytest.mark.usefixtures("no_keyring")
async def test_reused_refresh_token_is_rejected_and_login_is_required(
    make_shell: Any, output: CapturedOutput, oidc_server: OIDCServer
) -> None:
    name = unique_name("oidc")
    shell, provider, _, events = await start(make_shell, name, provider_toml(name, oidc_server))
    assert await login(shell, name, output) == 0, output.errors
    before = provider.load()
    assert before is not None and before.refresh_token
    after = await provider.on_unauthorized()
    assert after is not None and after.token != before.access_token
    # rotation: the old refresh token is now rejected by the server ...
    answer = token_request(
        oidc_server, grant_type="refresh_token", refresh_token=before.refresh_token
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    # ... and oidc-provider revokes the whole grant on reuse, so our next refresh fails:
    # the stored tokens are cleared and the user is told to log in again
    with pytest.raises(AuthRequired) as info:
        await provider.on_unauthorized()
    assert str(info.value) == (
        f"{name}: the refresh token was rejected; log in again (run: /login {name})"
    )
    assert nothing_stored(shell, provider)
    assert events.auth(shell) == [
        ("auth.login", "ok"),
        ("auth.refresh", "ok"),
        ("auth.refresh", "rejected"),
    ]


@pytest.mark.usefixtures("no_keyring")
async def test_denied_login(
    make_shell: Any, output: CapturedOutput, oidc_server: OIDCServer
) -> None:
    name = unique_name("oidc")
    shell, provider, _, events = await start(make_shell, name, provider_toml(name, oidc_server))
    assert await login(shell, name, output, deny=True) == 1
    assert f"error: {name}: login was denied" in output.errors
    assert nothing_stored(shell, provider)
    assert events.auth(shell) == [("auth.login", "denied")]


@pytest.mark.usefixtures("no_keyring")
async def test_expired_code(
    make_shell: Any, output: CapturedOutput, oidc_server_factory: OIDCServerFactory
) -> None:
    server = oidc_server_factory(device_code_ttl=1)
    name = unique_name("oidc")
    shell, provider, _, events = await start(make_shell, name, provider_toml(name, server))
    assert await shell.execute(f"/login {name}") == 1  # nobody approves
    assert f"error: {name}: the code expired; run /login {name} again" in output.errors
    assert nothing_stored(shell, provider)
    assert events.auth(shell) == [("auth.login", "expired")]


@pytest.mark.usefixtures("no_keyring")
async def test_slow_down_from_the_server(
    make_shell: Any, output: CapturedOutput, oidc_server_factory: OIDCServerFactory
) -> None:
    # the middleware answers slow_down to polls closer than 1 s (real); our clock runs
    # 4x fast, so the RFC's +5 s becomes 1.275 s real and polling then gets through
    server = oidc_server_factory(slow_down=True, slow_down_interval=1.0)
    name = unique_name("oidc")
    shell, provider, _, _ = await start(make_shell, name, provider_toml(name, server))
    provider.clock = ScaledClock(0.25)
    task = asyncio.create_task(shell.execute(f"/login {name}"))
    url = await shown_url(output)
    await wait_until(lambda: "poll more slowly" in output.text, "a slow_down notice")
    assert "the server asked to poll more slowly: every 5.1 s now" in output.text
    assert nothing_stored(shell, provider)  # nothing before the user approves
    await asyncio.to_thread(complete_device_flow, url)
    assert await task == 0, output.errors
    poller = provider.last_poller
    assert poller is not None
    gaps = [b - a for a, b in zip(poller.poll_times, poller.poll_times[1:], strict=False)]
    # the second poll came too fast (at the configured 0.1 s plus one round trip, which
    # on a loaded machine can be far more than 0.1 s: only "not yet slowed down" is fixed)
    assert gaps[0] < 5.1
    assert all(gap >= 5.1 for gap in gaps[1:])  # ... every later one waited 5.1 s (virtual)
    assert provider.load() is not None


@pytest.mark.usefixtures("no_keyring")
async def test_ctrl_c_cancels_cleanly(
    make_shell: Any, output: CapturedOutput, oidc_server: OIDCServer
) -> None:
    name = unique_name("oidc")
    shell, provider, _, events = await start(make_shell, name, provider_toml(name, oidc_server))
    task = asyncio.create_task(shell.execute(f"/login {name}"))
    await shown_url(output)
    await asyncio.sleep(0.3)  # a few polls in flight
    task.cancel()  # what the REPL does on Ctrl-C
    with pytest.raises(asyncio.CancelledError):
        await task
    assert f"{name}: login cancelled; nothing was stored" in output.text
    assert nothing_stored(shell, provider)
    assert events.auth(shell) == [("auth.login", "cancelled")]
