"""Where /login keeps tokens when the keyring cannot: a locked Secret Service, a store
that fails at the last moment, and what /auth status says about it.

The locked keyring is REAL: each test starts its own gnome-keyring-daemon on its own
D-Bus session (dbus-run-session) without unlocking it, and runs the installed CLI
(`python -m agentshell run "/login corp"`) inside it, as a user on such a machine
would. Two ways a keyring is locked are covered: no login collection was ever unlocked
in the session (gnome-keyring must prompt to create one; headless, the prompt is
dismissed — the `InitError` users saw) and an existing login collection that was not
unlocked (`KeyringLocked`). The OAuth server is a real loopback server with scripted
answers (no human approves anything here); the token-revocation test uses the real
oidc-provider.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from speckit_device_login.provider import DeviceLoginProvider
from tests.conftest import CapturedOutput
from tests.helpers.cli import child_env
from tests.plugins.device_login.oauth_support import (  # noqa: F401 - fixtures
    Reply,
    ScriptedOAuthServer,
    no_keyring_fixture,
    oauth_server_fixture,
    unique_name,
    wait_until,
)
from tests.servers.oidc_server import OIDCServer, complete_device_flow

TOKENS = Reply(
    200,
    {
        "access_token": "at-locked-0001-secret",
        "refresh_token": "rt-locked-0001-secret",
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "openid offline_access",
    },
)
SECRETS = ("at-locked-0001", "rt-locked-0001", "dc-locked")

_TOOLS = ("dbus-run-session", "gnome-keyring-daemon")
_missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
needs_gnome_keyring = pytest.mark.skipif(
    bool(_missing) and os.environ.get("AGENTSHELL_TESTS_REQUIRE_KEYRING") != "1",
    reason=f"needs {', '.join(_missing)} (apt-get install -y gnome-keyring dbus)",
)

# start the daemon in the private session; "unlock" first creates and unlocks a login
# collection (the password comes on stdin), then stores an entry so it is written out
_SESSION = """
set -e
if [ "$TEST_KEYRING_SESSION" = unlock ]; then
    eval "$(printf test | gnome-keyring-daemon --unlock --components=secrets)"
else
    eval "$(gnome-keyring-daemon --start --components=secrets)"
fi
exec "$@"
"""


def in_keyring_session(
    home: Path, mode: str, args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` on a new D-Bus session with its own gnome-keyring-daemon whose
    keyrings live under ``home`` (``mode``: ``unlock`` or ``locked``)."""
    runtime = home / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    (home / ".local" / "share" / "keyrings").mkdir(parents=True, exist_ok=True)
    session_env = {
        k: v
        for k, v in env.items()
        if k not in ("DBUS_SESSION_BUS_ADDRESS", "GNOME_KEYRING_CONTROL", "PYTHON_KEYRING_BACKEND")
    }
    session_env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_RUNTIME_DIR=str(runtime),
        TEST_KEYRING_SESSION=mode,
    )
    return subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", _SESSION, "sh", *args],
        env=session_env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _lines(text: str) -> list[str]:
    # dbus-daemon and the (absent) GUI prompter write their own noise to stderr
    return [
        line
        for line in text.splitlines()
        if line.startswith(("error:", "warning:", "✓", "corp:", "logged", "!"))
    ]


@pytest.fixture(params=["no unlocked collection", "locked login collection"])
def locked_keyring(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """A HOME for a gnome-keyring that runs but is locked, and the reason users see."""
    if _missing:
        pytest.fail(f"needs {', '.join(_missing)}", pytrace=False)
    home = tmp_path / "keyring-home"
    home.mkdir()
    if request.param == "no unlocked collection":
        return home, "the keyring is locked or not set up"
    made = in_keyring_session(
        home,
        "unlock",
        [sys.executable, "-c", "import keyring; keyring.set_password('other', 'x', 'y')"],
        dict(os.environ),
        tmp_path,
    )
    assert made.returncode == 0, made.stderr
    assert (home / ".local" / "share" / "keyrings" / "login.keyring").exists()
    return home, "the keyring is locked"


def _login_in_locked_keyring(
    server: ScriptedOAuthServer, locked: tuple[Path, str], work: Path, extra: str = ""
) -> subprocess.CompletedProcess[str]:
    server.script("/device/code", server.device_reply(device_code="dc-locked-secret"))
    server.script("/token", Reply(400, {"error": "authorization_pending"}), TOKENS)
    (work / "agentshell.toml").write_text(
        extra + server.provider_toml("corp", poll_interval_s=0.05), encoding="utf-8"
    )
    env = child_env(work.parent / "home", AGENTSHELL_LOAD_PLUGINS="builtins,device_login,null")
    home, _ = locked
    return in_keyring_session(
        home, "locked", [sys.executable, "-m", "agentshell", "run", "/login corp"], env, work
    )


@needs_gnome_keyring
def test_locked_keyring_falls_back_to_the_0600_file_before_a_code_is_requested(
    oauth_server: ScriptedOAuthServer, locked_keyring: tuple[Path, str], isolated_env: Path
) -> None:
    ran = _login_in_locked_keyring(oauth_server, locked_keyring, isolated_env)
    _, reason = locked_keyring
    assert ran.returncode == 0, ran.stdout + ran.stderr
    path = isolated_env.parent / "home" / "data" / "credentials.json"
    assert _lines(ran.stderr) == [
        f"warning: no secure keyring available ({reason}): credentials are stored in plain "
        f"text in {path} (mode 0600)"
    ]
    assert any(
        line.startswith("✓ logged in to corp")
        and line.endswith(f"tokens stored in plain-text file {path}")
        for line in _lines(ran.stdout)
    ), ran.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    record = json.loads(json.loads(path.read_text(encoding="utf-8"))["device_login:corp"])
    assert record["refresh_token"] == "rt-locked-0001-secret"
    for text in (ran.stdout, ran.stderr):
        assert "InitError" not in text and "KeyringLocked" not in text
        for secret in SECRETS:
            assert secret not in text


@needs_gnome_keyring
def test_locked_keyring_without_plaintext_refuses_before_a_code_is_requested(
    oauth_server: ScriptedOAuthServer, locked_keyring: tuple[Path, str], isolated_env: Path
) -> None:
    extra = "[plugins.device_login]\nallow_plaintext = false\n"
    ran = _login_in_locked_keyring(oauth_server, locked_keyring, isolated_env, extra)
    _, reason = locked_keyring
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert _lines(ran.stderr) == [
        f"error: corp: cannot log in: no secure keyring is available ({reason}) and "
        "plain-text storage is disabled (allow_plaintext = false)"
    ]
    assert oauth_server.received() == []  # no code requested: nobody approves in vain
    assert "one-time code" not in ran.stdout
    assert not (isolated_env.parent / "home" / "data" / "credentials.json").exists()


@pytest.mark.e2e
@pytest.mark.usefixtures("no_keyring")
async def test_tokens_that_cannot_be_stored_are_revoked(
    make_shell: Any,
    output: CapturedOutput,
    oidc_server: OIDCServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store fails only after approval (here: the credentials file's place is taken
    by a directory, on the real filesystem): the new tokens are revoked at the real
    oidc-provider, and the message says both."""
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "builtins,device_login")
    name = unique_name("oidc")
    config = (
        f'[plugins.device_login.providers.{name}]\nissuer = "{oidc_server.issuer}"\n'
        f'client_id = "{oidc_server.client_id}"\npoll_interval_s = 0.1\n'
    )
    shell = await make_shell(config=config)
    provider = shell.auth.provider(name)
    assert isinstance(provider, DeviceLoginProvider)
    seen: list[Any] = []
    provider.on_device_code = seen.append
    target = Path(shell.data_dir) / "credentials.json"
    target.mkdir(parents=True)
    issued: list[str] = []
    refused = provider.store.set

    def set_and_record(key: str, value: Any) -> str:  # the tokens the store refuses
        issued.extend(value[k] for k in ("refresh_token", "access_token") if value.get(k))
        return refused(key, value)

    monkeypatch.setattr(provider.store, "set", set_and_record)
    task = asyncio.create_task(shell.execute(f"/login {name}"))
    await wait_until(lambda: bool(seen), "the device code")
    url = seen[0].verification_uri_complete
    await asyncio.to_thread(complete_device_flow, url)
    assert await task == 1
    assert issued, output.errors
    errors = [line for line in output.errors.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {name}: the tokens were not stored (cannot write {target}: Is a directory); "
        "they were revoked at the provider"
    ]
    import httpx

    answer = await asyncio.to_thread(
        httpx.post,
        oidc_server.token_endpoint,
        data={
            "client_id": oidc_server.client_id,
            "grant_type": "refresh_token",
            "refresh_token": issued[0],
        },
        trust_env=False,
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    for secret in issued:
        assert secret not in output.text + output.errors
