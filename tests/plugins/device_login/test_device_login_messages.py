"""Every message /login, /logout and a refresh can print names the provider, is one
line, never shows the device code, and a "run /login <provider> again" hint is a
command that works: each test runs the hint it was given and logs in with it.

Real shell, real loopback OAuth server (scripted answers), the keyring library's fail
backend (so the plain-text store runs everywhere); FakeClock replaces only waiting.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from agentshell import AuthRequired
from speckit_device_login.events import AuthEvent
from speckit_device_login.flow import login_command
from speckit_device_login.provider import DeviceLoginProvider
from tests.conftest import CapturedOutput
from tests.helpers.events import ListSink
from tests.plugins.device_login.oauth_support import (  # noqa: F401 - fixtures
    FakeClock,
    Reply,
    ScriptedOAuthServer,
    no_keyring_fixture,
    oauth_server_fixture,
    wait_until,
)

PENDING = Reply(400, {"error": "authorization_pending"})
DEVICE_CODE = "dc-devmsg-secret-5150"
TOKENS = Reply(
    200,
    {
        "access_token": "at-devmsg-0001-secret",
        "refresh_token": "rt-devmsg-0001-secret",
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "openid offline_access",
    },
)
SECRETS = (DEVICE_CODE, "at-devmsg-0001", "rt-devmsg-0001")

pytestmark = pytest.mark.usefixtures("only_our_plugins", "no_keyring")


@pytest.fixture
def only_our_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "builtins,device_login")


class Events(ListSink):
    def outcomes(self, shell: Any) -> list[tuple[str, str]]:
        shell.telemetry.flush(2.0)
        return [(e.type, e.outcome) for e in self.events if isinstance(e, AuthEvent)]


async def _shell(
    make_shell: Any,
    server: ScriptedOAuthServer,
    *,
    name: str = "scripted",
    extra: str = "",
    **toml: Any,
) -> tuple[Any, DeviceLoginProvider, FakeClock, Events]:
    toml_name = f'"{name}"' if name.startswith("-") else name
    config = extra + server.provider_toml(**toml).replace(
        "providers.scripted]", f"providers.{toml_name}]"
    )
    shell = await make_shell(config=config)
    events = Events()
    shell.telemetry.add_sink("devmsg-events", events)
    provider = shell.auth.provider(name)
    assert isinstance(provider, DeviceLoginProvider)
    clock = FakeClock()
    provider.clock = clock
    return shell, provider, clock, events


def _device(server: ScriptedOAuthServer, **overrides: Any) -> Reply:
    return server.device_reply(device_code=DEVICE_CODE, **overrides)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _no_secrets(output: CapturedOutput) -> None:
    for secret in SECRETS:
        assert secret not in output.text + output.errors


async def _hint_logs_in(
    shell: Any, output: CapturedOutput, server: ScriptedOAuthServer, message: str, name: str
) -> None:
    """Run the command the message tells the user to run; it must log in."""
    match = re.search(r"run (/login .+?) again", message) or re.search(
        r"run: (/login .+?)\)", message
    )
    assert match is not None, message
    command = match.group(1)
    assert command == login_command(name)
    server.script("/device/code", _device(server, interval=1))
    server.script("/token", TOKENS)
    assert await shell.execute(command) == 0, output.errors
    assert f"✓ logged in to {name} (" in output.text


async def test_expired_token_from_the_server(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    oauth_server.script("/device/code", _device(oauth_server, interval=1))
    oauth_server.script("/token", PENDING, Reply(400, {"error": "expired_token"}))
    shell, provider, _, events = await _shell(make_shell, oauth_server)
    assert await shell.execute("/login scripted") == 1
    line = "error: scripted: the code expired; run /login scripted again"
    assert _lines(output.errors) == [line]
    assert provider.load() is None
    assert events.outcomes(shell) == [("auth.login", "expired")]
    _no_secrets(output)
    await _hint_logs_in(shell, output, oauth_server, line, "scripted")


async def test_deadline_reached_without_approval(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    oauth_server.script("/device/code", _device(oauth_server, interval=4, expires_in=10))
    oauth_server.script("/token", *[PENDING] * 5)
    shell, _, clock, events = await _shell(make_shell, oauth_server)
    assert await shell.execute("/login scripted") == 1
    assert clock.now == pytest.approx(10.0)  # stopped at expires_in, not later
    line = "error: scripted: the code expired; run /login scripted again"
    assert _lines(output.errors) == [line]
    assert events.outcomes(shell) == [("auth.login", "expired")]
    _no_secrets(output)
    await _hint_logs_in(shell, output, oauth_server, line, "scripted")


async def test_hint_for_a_name_that_looks_like_an_option_works(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    oauth_server.script("/device/code", _device(oauth_server, interval=1))
    oauth_server.script("/token", Reply(400, {"error": "expired_token"}))
    shell, _, _, _ = await _shell(make_shell, oauth_server, name="--odd")
    assert await shell.execute("/login -- --odd") == 1
    line = "error: --odd: the code expired; run /login -- --odd again"
    assert _lines(output.errors) == [line]
    await _hint_logs_in(shell, output, oauth_server, line, "--odd")


async def test_denied(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    oauth_server.script("/device/code", _device(oauth_server, interval=1))
    oauth_server.script("/token", Reply(400, {"error": "access_denied"}))
    shell, provider, _, events = await _shell(make_shell, oauth_server)
    assert await shell.execute("/login scripted") == 1
    assert _lines(output.errors) == ["error: scripted: login was denied"]
    assert provider.load() is None
    assert events.outcomes(shell) == [("auth.login", "denied")]
    _no_secrets(output)


async def test_unknown_error_with_description_is_redacted(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    oauth_server.script("/device/code", _device(oauth_server, interval=1))
    oauth_server.script(
        "/token",
        Reply(
            400,
            {
                "error": "invalid_client",
                "error_description": f"client unknown (device_code {DEVICE_CODE})",
            },
        ),
    )
    shell, _, _, events = await _shell(make_shell, oauth_server)
    assert await shell.execute("/login scripted") == 1
    (line,) = _lines(output.errors)
    assert line.startswith("error: scripted: login failed: invalid_client: client unknown")
    assert events.outcomes(shell) == [("auth.login", "error")]
    _no_secrets(output)


async def test_slow_down_and_timeout_notices_name_the_provider(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    # longer than the client timeout; that timeout is 1 s, not less, so the answers
    # that are not hung arrive in time even on a loaded machine
    hang = Reply(200, TOKENS.body, delay_s=4.0)
    oauth_server.script("/device/code", _device(oauth_server, interval=1))
    oauth_server.script("/token", Reply(400, {"error": "slow_down"}), hang, TOKENS)
    shell, _, _, _ = await _shell(make_shell, oauth_server, http_timeout_s=1.0)
    assert await shell.execute("/login scripted") == 0, output.errors
    notices = [line for line in _lines(output.text) if "poll" in line and "left" not in line]
    assert notices == [
        "scripted: the server asked to poll more slowly: every 6 s now",
        "scripted: the token endpoint did not answer (read timed out); polling every 12 s",
    ]
    _no_secrets(output)


async def test_ctrl_c(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    oauth_server.script("/device/code", _device(oauth_server, interval=1))
    oauth_server.script("/token", *[PENDING] * 1000)
    shell, provider, _, events = await _shell(make_shell, oauth_server)

    class SlowClock(FakeClock):  # virtual time, but each wait yields for real
        async def sleep(self, seconds: float) -> None:
            self.now += seconds
            await asyncio.sleep(0.01)

    provider.clock = SlowClock()
    task = asyncio.create_task(shell.execute("/login scripted"))
    await wait_until(lambda: len(oauth_server.received("/token")) >= 1, "a poll")
    task.cancel()  # what the REPL does on Ctrl-C
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "scripted: login cancelled; nothing was stored" in _lines(output.text)
    assert output.errors == ""
    assert provider.load() is None
    assert events.outcomes(shell) == [("auth.login", "cancelled")]
    _no_secrets(output)


async def test_no_keyring_and_no_plaintext_refuses_before_showing_a_code(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    extra = "[plugins.device_login]\nallow_plaintext = false\n"
    shell, _, _, events = await _shell(make_shell, oauth_server, extra=extra)
    assert await shell.execute("/login scripted") == 1
    assert _lines(output.errors) == [
        "error: scripted: cannot log in: no secure keyring is available and plain-text "
        "storage is disabled (allow_plaintext = false)"
    ]
    assert oauth_server.received() == []  # no code was requested, none shown
    assert "one-time code" not in output.text
    assert not (Path(shell.data_dir) / "credentials.json").exists()
    assert events.outcomes(shell) == [("auth.login", "error")]


async def _logged_in(
    make_shell: Any, output: CapturedOutput, server: ScriptedOAuthServer, **toml: Any
) -> tuple[Any, DeviceLoginProvider, FakeClock, Events]:
    server.script("/device/code", _device(server, interval=1))
    server.script("/token", TOKENS)
    shell, provider, clock, events = await _shell(make_shell, server, **toml)
    assert await shell.execute("/login scripted") == 0, output.errors
    return shell, provider, clock, events


async def test_refresh_failure_names_the_provider_and_a_working_command(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    shell, provider, clock, _ = await _logged_in(make_shell, output, oauth_server)
    clock.now += 3600  # expired: the refresh is required
    oauth_server.script(
        "/token", Reply(500, {"error": "server_error", "error_description": "down for repair"})
    )
    with pytest.raises(AuthRequired) as info:
        await provider.get_credentials()
    message = str(info.value)
    assert message == (
        "scripted: token refresh failed (server_error: down for repair) (run: /login scripted)"
    )
    assert "\n" not in message
    await _hint_logs_in(shell, output, oauth_server, message, "scripted")


async def test_refresh_failure_while_still_valid_is_a_warning(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    _, provider, clock, _ = await _logged_in(make_shell, output, oauth_server)
    clock.now += 3600 - 60  # one minute left: refresh, but keep the token if that fails
    oauth_server.script("/token", Reply(400, {"error": "temporarily_unavailable"}))
    creds = await provider.get_credentials()
    assert creds is not None
    assert _lines(output.errors)[-1] == (
        "warning: scripted: token refresh failed (temporarily_unavailable)"
    )
    _no_secrets(output)


async def test_logout_messages(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    shell, _, _, _ = await _logged_in(
        make_shell, output, oauth_server, revocation_endpoint=f"{oauth_server.url}/revoke"
    )
    oauth_server.script("/revoke", Reply(400, {"error": "unsupported_token_type"}), Reply(200, ""))
    before = len(_lines(output.errors))
    assert await shell.execute("/logout scripted") == 0
    assert _lines(output.errors)[before:] == [
        "warning: scripted: revoking the refresh token: unsupported_token_type"
    ]
    assert _lines(output.text)[-1] == "✓ logged out of scripted"
    assert await shell.execute("/logout scripted") == 0
    assert _lines(output.text)[-1] == "scripted: not logged in"
    _no_secrets(output)


async def test_missing_config_names_the_fix(make_shell: Any, output: CapturedOutput) -> None:
    shell = await make_shell(config="")
    assert await shell.execute("/login corp") == 1
    assert _lines(output.errors) == [
        "error: unknown provider 'corp': no device-login providers are configured — add "
        "[plugins.device_login.providers.<name>] (see docs/auth.md)"
    ]
