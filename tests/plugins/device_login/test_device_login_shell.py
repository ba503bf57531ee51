"""/login, /logout, /auth and the AuthProvider behaviour through a real shell, against a
scripted loopback OAuth server (cases oidc-provider cannot produce on demand) and the
keyring library's fail backend, so the plain-text fallback is exercised on every machine."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from agentshell import AuthRequired, ConfigError
from speckit_device_login.events import AuthEvent
from speckit_device_login.provider import DeviceLoginProvider
from tests.conftest import CapturedOutput
from tests.helpers.events import ListSink
from tests.helpers.paths import REPO
from tests.plugins.device_login.oauth_support import (  # noqa: F401 - fixtures
    FakeClock,
    Reply,
    ScriptedOAuthServer,
    no_keyring_fixture,
    oauth_server_fixture,
)

PENDING = Reply(400, {"error": "authorization_pending"})


def tokens(n: int, expires_in: int = 3600, refresh: bool = True) -> Reply:
    body: dict[str, Any] = {
        "access_token": f"at-shell-{n:04d}-secret",
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": "openid offline_access",
    }
    if refresh:
        body["refresh_token"] = f"rt-shell-{n:04d}-secret"
    return Reply(200, body)


class Events(ListSink):
    """A telemetry sink keeping every event (the bus delivers on a worker thread)."""

    def auth(self, shell: Any) -> list[tuple[str, str, str]]:
        assert shell.telemetry.flush(30)  # returns once delivered
        return [(e.type, e.provider, e.outcome) for e in self.events if isinstance(e, AuthEvent)]


@pytest.fixture
def only_our_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    # openai: an agent whose credentials come from a provider needs a real backend
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "builtins,device_login,openai")


async def _shell(
    make_shell: Any, config: str
) -> tuple[Any, DeviceLoginProvider, FakeClock, Events]:
    shell = await make_shell(config=config)
    events = Events()
    shell.telemetry.add_sink("test-events", events)
    provider = shell.auth.provider("scripted")
    assert isinstance(provider, DeviceLoginProvider)
    clock = FakeClock()
    provider.clock = clock
    return shell, provider, clock, events


def _data_files(shell: Any) -> dict[Path, str]:
    return {
        p: p.read_text(encoding="utf-8", errors="replace")
        for root in {Path(shell.home), Path(shell.data_dir), Path.cwd()}
        if root.exists()
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.mark.usefixtures("only_our_plugins", "no_keyring")
async def test_login_stores_tokens_in_a_0600_file_after_a_warning(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    oauth_server.script(
        "/device/code",
        oauth_server.device_reply(
            device_code="dc-shell-secret-42",
            verification_uri_complete=f"{oauth_server.url}/device?user_code=WDJB-MJHT",
        ),
    )
    oauth_server.script("/token", PENDING, tokens(1))
    shell, _, clock, events = await _shell(make_shell, oauth_server.provider_toml())

    assert await shell.execute("/login scripted") == 0

    text = output.text
    code_line = text.index("First copy your one-time code: WDJB-MJHT")
    assert code_line < text.index(f"Then open {oauth_server.url}/device in a browser")
    assert f"Or open {oauth_server.url}/device?user_code=WDJB-MJHT" in text
    assert "logged in to scripted (scope: openid offline_access; expires in 60:00)" in text
    assert (
        "warning: no secure keyring available: credentials are stored in plain text"
        in output.errors
    )
    path = Path(shell.data_dir) / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    record = json.loads(json.loads(path.read_text())["device_login:scripted"])
    assert record["access_token"] == "at-shell-0001-secret"
    assert record["refresh_token"] == "rt-shell-0001-secret"
    # expiry counts from when the successful poll was SENT (virtual time 5 s + 5 s)
    assert record["expires_at"] == pytest.approx(clock.wall0 + 10.0 + 3600)
    assert events.auth(shell) == [("auth.login", "scripted", "ok")]
    # only the credentials file holds the secrets; output never does
    for file, content in _data_files(shell).items():
        if file != path:
            for secret in ("dc-shell-secret-42", "at-shell-0001", "rt-shell-0001"):
                assert secret not in content, file
    for secret in ("dc-shell-secret-42", "at-shell-0001", "rt-shell-0001"):
        assert secret not in output.text + output.errors


@pytest.mark.usefixtures("only_our_plugins", "no_keyring")
async def test_allow_plaintext_false_refuses_and_stores_nothing(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    oauth_server.script("/device/code", oauth_server.device_reply())
    oauth_server.script("/token", tokens(2))
    config = "[plugins.device_login]\nallow_plaintext = false\n" + oauth_server.provider_toml()
    shell, _, _, _ = await _shell(make_shell, config)
    assert await shell.execute("/login scripted") == 1
    assert "no secure keyring is available and plain-text storage is disabled" in output.errors
    assert not (Path(shell.data_dir) / "credentials.json").exists()
    assert "at-shell-0002" not in output.text + output.errors


@pytest.mark.usefixtures("only_our_plugins", "no_keyring")
async def test_denied_login_stores_nothing_and_says_so(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    oauth_server.script("/device/code", oauth_server.device_reply())
    oauth_server.script("/token", PENDING, Reply(400, {"error": "access_denied"}))
    shell, _, _, events = await _shell(make_shell, oauth_server.provider_toml())
    assert await shell.execute("/login scripted") == 1
    assert "error: scripted: login was denied" in output.errors
    assert not (Path(shell.data_dir) / "credentials.json").exists()
    assert events.auth(shell) == [("auth.login", "scripted", "denied")]


async def _logged_in(
    make_shell: Any, oauth_server: ScriptedOAuthServer, *, expires_in: int = 3600, extra: str = ""
) -> tuple[Any, DeviceLoginProvider, FakeClock, Events]:
    oauth_server.script("/device/code", oauth_server.device_reply(interval=1))
    oauth_server.script("/token", tokens(1, expires_in))
    shell, provider, clock, events = await _shell(make_shell, oauth_server.provider_toml() + extra)
    assert await shell.execute("/login scripted") == 0
    return shell, provider, clock, events


@pytest.mark.usefixtures("only_our_plugins", "no_keyring")
async def test_credentials_refresh_within_five_minutes_of_expiry_with_rotation(
    make_shell: Any, oauth_server: ScriptedOAuthServer
) -> None:
    shell, provider, clock, events = await _logged_in(make_shell, oauth_server)
    creds = await provider.get_credentials()
    assert creds is not None and creds.token == "at-shell-0001-secret"
    assert oauth_server.received("/token")[-1].form["grant_type"].endswith("device_code")

    clock.now += 3600 - 301  # 5 min + 1 s left: still fine
    assert (await provider.get_credentials()).token == "at-shell-0001-secret"  # type: ignore[union-attr]
    assert len(oauth_server.received("/token")) == 1

    clock.now += 2  # 4:59 left: refresh first
    oauth_server.script("/token", tokens(2))
    creds = await provider.get_credentials()
    assert creds is not None and creds.token == "at-shell-0002-secret"
    refresh = oauth_server.received("/token")[-1].form
    assert refresh == {
        "client_id": "test-client",
        "grant_type": "refresh_token",
        "refresh_token": "rt-shell-0001-secret",
    }
    record = provider.load()
    assert record is not None and record.refresh_token == "rt-shell-0002-secret"  # rotation saved
    assert events.auth(shell)[-1] == ("auth.refresh", "scripted", "ok")


@pytest.mark.usefixtures("only_our_plugins", "no_keyring")
async def test_concurrent_calls_trigger_one_refresh(
    make_shell: Any, oauth_server: ScriptedOAuthServer
) -> None:
    _, provider, clock, _ = await _logged_in(make_shell, oauth_server)
    clock.now += 3600  # expired
    slow = tokens(2)
    slow.delay_s = 0.2  # keep the refresh in flight while the others arrive
    oauth_server.script("/token", slow, tokens(3))
    results = await asyncio.gather(*(provider.get_credentials() for _ in range(8)))
    assert {c.token for c in results if c is not None} == {"at-shell-0002-secret"}
    assert len(oauth_server.received("/token")) == 2  # the login poll and ONE refresh

    # 401s from several calls with the same token: also one refresh
    results = await asyncio.gather(*(provider.on_unauthorized() for _ in range(5)))
    assert {c.token for c in results if c is not None} == {"at-shell-0003-secret"}
    assert len(oauth_server.received("/token")) == 3


@pytest.mark.usefixtures("only_our_plugins", "no_keyring")
async def test_rejected_refresh_token_clears_and_asks_to_log_in_again(
    make_shell: Any, oauth_server: ScriptedOAuthServer
) -> None:
    shell, provider, _, events = await _logged_in(make_shell, oauth_server)
    oauth_server.script(
        "/token",
        Reply(400, {"error": "invalid_grant", "error_description": "grant request is invalid"}),
    )
    with pytest.raises(AuthRequired) as info:
        await provider.on_unauthorized()
    assert str(info.value) == (
        "scripted: the refresh token was rejected; log in again (run: /login scripted)"
    )
    assert provider.load() is None
    assert await provider.get_credentials() is None
    assert events.auth(shell)[-1] == ("auth.refresh", "scripted", "rejected")


@pytest.mark.usefixtures("only_our_plugins", "no_keyring")
async def test_agent_credentials_come_from_the_provider(
    make_shell: Any, oauth_server: ScriptedOAuthServer
) -> None:
    extra = '[agents.coder]\nbackend = "openai"\nmodel = "m"\nauth = "scripted"\n'
    oauth_server.script("/device/code", oauth_server.device_reply(interval=1))
    shell, _, _, _ = await _shell(make_shell, oauth_server.provider_toml() + extra)
    agent = shell.agents["coder"]
    with pytest.raises(AuthRequired, match=r"not logged in to scripted \(run: /login scripted\)"):
        await shell.auth.credentials(agent)
    oauth_server.script("/token", tokens(1))
    assert await shell.execute("/login scripted") == 0
    creds = await shell.auth.credentials(agent)
    assert creds.headers() == {"Authorization": "Bearer at-shell-0001-secret"}
    assert creds.source == "device_login:scripted"


@pytest.mark.usefixtures("only_our_plugins", "no_keyring")
async def test_logout_revokes_refresh_then_access_token_and_forgets(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    extra = f'revocation_endpoint = "{oauth_server.url}/revoke"\n'
    shell, provider, _, events = await _logged_in(make_shell, oauth_server, extra=extra)
    oauth_server.script("/revoke", Reply(200, ""), Reply(200, ""))
    assert await shell.execute("/logout scripted") == 0
    forms = [r.form for r in oauth_server.received("/revoke")]
    assert forms == [
        {
            "client_id": "test-client",
            "token": "rt-shell-0001-secret",
            "token_type_hint": "refresh_token",
        },
        {
            "client_id": "test-client",
            "token": "at-shell-0001-secret",
            "token_type_hint": "access_token",
        },
    ]
    assert provider.load() is None
    assert "✓ logged out of scripted" in output.text
    assert events.auth(shell)[-1] == ("auth.logout", "scripted", "ok")
    assert await shell.execute("/logout scripted") == 0
    assert "scripted: not logged in" in output.text


@pytest.mark.usefixtures("only_our_plugins", "no_keyring")
async def test_logout_without_revocation_endpoint_warns_and_still_forgets(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    shell, provider, _, _ = await _logged_in(make_shell, oauth_server)
    assert await shell.execute("/logout scripted") == 0
    assert "has no revocation endpoint" in output.errors
    assert provider.load() is None


@pytest.mark.usefixtures("only_our_plugins", "no_keyring")
async def test_auth_status_lists_state_but_never_tokens(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    shell, _, clock, _ = await _logged_in(make_shell, oauth_server)
    clock.now += 600
    assert await shell.execute("/auth status") == 0
    row = next(line for line in output.text.splitlines() if "scripted" in line and "yes" in line)
    assert "openid" in row  # the table may wrap the scope
    assert "50:00" in row  # logged in at 1 s (virtual) with expires_in 3600; now 601 s
    assert "plain-text file" in output.text
    assert "at-shell" not in output.text and "rt-shell" not in output.text


CONFIG_ERRORS = [
    ('client_secret = "hunter2-literal"', "a literal client_secret is not allowed"),
    ('token_endpoint = "http://auth.example.com/token"', "only https is allowed"),
]


@pytest.mark.usefixtures("only_our_plugins")
@pytest.mark.parametrize(("line", "message"), CONFIG_ERRORS)
async def test_bad_provider_config_is_a_clear_error(
    make_shell: Any, line: str, message: str
) -> None:
    config = (
        "[plugins.device_login.providers.bad]\n"
        'device_authorization_endpoint = "https://auth.example.com/device"\n'
        'client_id = "x"\n' + line + "\n"
    )
    if "token_endpoint" not in line:
        config += 'token_endpoint = "https://auth.example.com/token"\n'
    with pytest.raises(ConfigError) as info:
        await make_shell(config=config)
    assert message in str(info.value)
    assert "agentshell.toml" in str(info.value)
    assert "hunter2" not in str(info.value)


@pytest.mark.usefixtures("only_our_plugins")
async def test_client_secret_from_env_is_sent_with_basic_auth(
    make_shell: Any, oauth_server: ScriptedOAuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDP_SECRET", "s3cr3t/with+chars")
    oauth_server.script("/device/code", oauth_server.device_reply())
    oauth_server.script("/token", Reply(400, {"error": "access_denied"}))
    config = oauth_server.provider_toml() + 'client_secret = { env = "IDP_SECRET" }\n'
    shell, _, _, _ = await _shell(make_shell, config)
    assert await shell.execute("/login scripted") == 1
    import base64

    expected = "Basic " + base64.b64encode(b"test-client:s3cr3t%2Fwith%2Bchars").decode()
    assert [r.authorization for r in oauth_server.received()] == [expected, expected]


@pytest.mark.usefixtures("only_our_plugins")
async def test_unknown_provider_and_no_provider(make_shell: Any, output: CapturedOutput) -> None:
    shell = await make_shell(config="")
    assert await shell.execute("/login nope") == 1
    # one clean sentence: what is wrong, then how to fix it (no nested parentheses)
    assert output.errors.strip() == (
        "error: unknown provider 'nope': no device-login providers are configured — add "
        "[plugins.device_login.providers.<name>] (see docs/auth.md)"
    )
    assert await shell.execute("/login") == 1
    assert output.errors.strip().endswith(
        "error: no device-login providers are configured — add "
        "[plugins.device_login.providers.<name>] (see docs/auth.md)"
    )
    assert await shell.execute("/auth status") == 0
    assert "no device-login providers are configured — add [plugins" in output.text


@pytest.mark.usefixtures("only_our_plugins", "no_keyring")
async def test_unknown_provider_names_the_configured_ones(
    make_shell: Any, output: CapturedOutput, oauth_server: ScriptedOAuthServer
) -> None:
    shell, _, _, _ = await _shell(make_shell, oauth_server.provider_toml())
    assert await shell.execute("/login nosuch") == 1
    assert output.errors.strip() == (
        "error: unknown provider 'nosuch': the device-login providers are scripted"
    )
    assert oauth_server.received() == []  # nothing was sent anywhere
    assert await shell.execute("/auth status") == 0
    assert "Device login" in output.text
    row = next(line for line in output.text.splitlines() if "scripted" in line)
    assert [cell.strip() for cell in row.strip("│ ").split("│")] == ["scripted", "no", "-", "-"]


def test_docs_examples_are_valid_config() -> None:
    """The commented examples in docs/auth.md validate against the config model."""
    import tomllib

    from speckit_device_login.config import DeviceLoginConfig

    doc = (REPO / "docs" / "auth.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in doc.split("```toml\n")[1:]]
    assert len(blocks) >= 2
    for block in blocks:
        data = tomllib.loads(block)
        section = data.get("plugins", {}).get("device_login")
        if section is not None:
            DeviceLoginConfig.model_validate(section)
