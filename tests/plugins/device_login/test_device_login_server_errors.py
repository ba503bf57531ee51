"""What /login, /logout, /auth status and a refresh say when servers misbehave: server
errors while polling are retried until the code expires, HTTP statuses are said in
words (never pseudo codes such as ``http_502``), the provider's name is said once, and
/auth status tells the truth about storage.

Real shell, real loopback OAuth server (scripted answers, incl. non-JSON pages), the
keyring library's fail backend (the plain-text store); FakeClock replaces only waiting.
"""

from __future__ import annotations

from typing import Any

import pytest

from agentshell import AgentDisconnected
from speckit_device_login.provider import DeviceLoginProvider
from tests.conftest import CapturedOutput
from tests.plugins.device_login.oauth_support import (  # noqa: F401 - fixtures
    FakeClock,
    Reply,
    ScriptedOAuthServer,
    no_keyring_fixture,
    oauth_server_fixture,
)

pytestmark = pytest.mark.usefixtures("only_our_plugins", "no_keyring")

PENDING = Reply(400, {"error": "authorization_pending"})
TOKENS = Reply(
    200,
    {
        "access_token": "at-msg-0001-secret",
        "refresh_token": "rt-msg-0001-secret",
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "openid offline_access",
    },
)
BAD_GATEWAY = Reply(502, "<html><body>502 Bad Gateway</body></html>")


@pytest.fixture
def only_our_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "builtins,device_login")


async def _shell(
    make_shell: Any, server: ScriptedOAuthServer, extra: str = "", **toml: Any
) -> tuple[Any, DeviceLoginProvider, FakeClock]:
    shell = await make_shell(config=extra + server.provider_toml(**toml))
    provider = shell.auth.provider("scripted")
    assert isinstance(provider, DeviceLoginProvider)
    clock = FakeClock()
    provider.clock = clock
    return shell, provider, clock


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _no_pseudo_codes(output: CapturedOutput) -> None:
    text = output.text + output.errors
    assert "http_" not in text
    assert "secret" not in text


async def test_server_errors_while_polling_are_retried_with_backoff_until_approval(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    oauth_server.script("/device/code", oauth_server.device_reply(interval=1))
    oauth_server.script(
        "/token",
        PENDING,
        BAD_GATEWAY,
        Reply(200, "<html>captive portal</html>"),
        Reply(503, {"error": "temporarily_unavailable"}),
        PENDING,
        TOKENS,
    )
    shell, provider, _ = await _shell(make_shell, oauth_server)
    assert await shell.execute("/login scripted") == 0, output.errors
    notices = [line for line in _lines(output.text) if "polling every" in line]
    assert notices == [
        "scripted: HTTP 502 from the token endpoint; polling every 2 s",
        "scripted: an answer from the token endpoint that is not a JSON object (HTTP 200); "
        "polling every 4 s",
        "scripted: the token endpoint failed (HTTP 503: temporarily_unavailable); "
        "polling every 8 s",
    ]
    poller = provider.last_poller
    assert poller is not None
    gaps = [
        round(b - a, 6) for a, b in zip([0.0, *poller.poll_times], poller.poll_times, strict=False)
    ]
    assert gaps == [1.0, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert provider.load() is not None
    _no_pseudo_codes(output)


async def test_server_errors_until_the_code_expires_end_with_the_expiry_message(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    oauth_server.script("/device/code", oauth_server.device_reply(interval=5, expires_in=120))
    oauth_server.script("/token", *[BAD_GATEWAY] * 50)
    shell, _, clock = await _shell(make_shell, oauth_server)
    assert await shell.execute("/login scripted") == 1
    assert _lines(output.errors)[-1] == (
        "error: scripted: the code expired; run /login scripted again"
    )
    assert clock.now == pytest.approx(120)
    # 5, 10, 20, 40, 60 (capped), 60 ... until 120 s: polls at 5, 15, 35, 75
    assert len(oauth_server.received("/token")) == 4
    _no_pseudo_codes(output)


async def test_a_4xx_page_that_is_not_oauth_ends_the_login_in_words(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    oauth_server.script("/device/code", oauth_server.device_reply(interval=1))
    oauth_server.script("/token", Reply(404, "<html>Not Found</html>"))
    shell, _, _ = await _shell(make_shell, oauth_server)
    assert await shell.execute("/login scripted") == 1
    assert _lines(output.errors) == [
        "error: scripted: login failed: HTTP 404 from the token endpoint"
    ]
    _no_pseudo_codes(output)


async def test_device_authorization_failure_names_the_status_in_words(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    oauth_server.script("/device/code", BAD_GATEWAY)
    shell, _, _ = await _shell(make_shell, oauth_server)
    assert await shell.execute("/login scripted") == 1
    assert _lines(output.errors) == [
        "error: scripted: the device authorization request failed: "
        "HTTP 502 from the device authorization endpoint"
    ]
    _no_pseudo_codes(output)


async def _logged_in(
    make_shell: Any, output: CapturedOutput, server: ScriptedOAuthServer, **toml: Any
) -> tuple[Any, DeviceLoginProvider, FakeClock]:
    server.script("/device/code", server.device_reply(interval=1))
    server.script("/token", TOKENS)
    shell, provider, clock = await _shell(make_shell, server, **toml)
    assert await shell.execute("/login scripted") == 0, output.errors
    return shell, provider, clock


async def test_refresh_answered_by_a_5xx_page_keeps_the_valid_token_then_fails_in_words(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    _, provider, clock = await _logged_in(make_shell, output, oauth_server)
    clock.now += 3600 - 120  # two minutes left
    oauth_server.script("/token", BAD_GATEWAY)
    creds = await provider.get_credentials()
    assert creds is not None and creds.token == "at-msg-0001-secret"
    assert _lines(output.errors)[-1] == (
        "warning: scripted: cannot refresh the access token: HTTP 502 from the token "
        "endpoint; using the current one until it expires (in 2:00)"
    )
    clock.now += 120  # expired now
    oauth_server.script("/token", BAD_GATEWAY)
    with pytest.raises(AgentDisconnected) as info:
        await provider.get_credentials()
    assert str(info.value) == (
        "scripted: cannot refresh the access token: HTTP 502 from the token endpoint"
    )
    _no_pseudo_codes(output)


async def test_logout_when_discovery_fails_names_the_provider_once(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    # the login found the revocation endpoint through the issuer's metadata; the next
    # process (a new shell) cannot read that metadata any more
    meta = {
        "issuer": oauth_server.url,
        "device_authorization_endpoint": f"{oauth_server.url}/device/code",
        "token_endpoint": f"{oauth_server.url}/token",
        "revocation_endpoint": f"{oauth_server.url}/revoke",
    }
    oauth_server.script("/.well-known/openid-configuration", Reply(200, meta))
    _, provider, _ = await _logged_in(make_shell, output, oauth_server, issuer=oauth_server.url)
    assert provider.load() is not None
    later = await make_shell(config=None)
    assert await later.execute("/logout scripted") == 0
    warnings = [line for line in _lines(output.errors) if "revocation" in line]
    assert len(warnings) == 1, output.errors
    assert warnings[0].startswith(
        "warning: scripted: revocation skipped: cannot read the issuer's metadata ("
    )
    assert "scripted: scripted:" not in output.errors
    assert later.auth.provider("scripted").load() is None
    _no_pseudo_codes(output)


async def test_auth_status_without_keyring_and_without_plaintext_says_nothing_is_stored(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    extra = "[plugins.device_login]\nallow_plaintext = false\n"
    shell, _, _ = await _shell(make_shell, oauth_server, extra)
    assert await shell.execute("/auth status") == 0
    assert "plain-text file" not in output.text
    assert _lines(output.text)[-1] == (
        "tokens cannot be stored: no secure keyring is available and plain-text storage "
        "is disabled (allow_plaintext = false)"
    )
