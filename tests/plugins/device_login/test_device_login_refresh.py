"""Refreshing a stored login: single-flight across real processes, and a still-valid
token kept in use while the issuer cannot be reached.

Real child processes (each a real shell, as two terminals would run), a real loopback
OAuth server with scripted answers (it holds a refresh in flight on request and answers
a reused refresh token with ``invalid_grant``, as oidc-provider does — see
test_device_login_e2e's reuse test), and the real keyring under
tests/run_with_keyring.sh or the plain-text store otherwise.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from agentshell import AgentDisconnected, TokenStore
from speckit_device_login.provider import DeviceLoginProvider
from tests.conftest import CapturedOutput
from tests.helpers.cli import child_env
from tests.plugins.device_login.oauth_support import (  # noqa: F401 - fixtures
    FakeClock,
    Reply,
    ScriptedOAuthServer,
    delete_keyring_entry,
    keyring_entry,
    no_keyring_fixture,
    oauth_server_fixture,
    real_keyring_fixture,
    unique_name,
    wait_until,
)
from tests.plugins.device_login.refresh_child import fingerprint

WAITING = "another agentshell process is refreshing this login; waiting for it"


def _record(n: int, expires_in: float, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    return {
        "access_token": f"at-proc-{n:04d}-secret",
        "refresh_token": f"rt-proc-{n:04d}-secret",
        "token_type": "Bearer",
        "scope": "openid offline_access",
        "expires_at": now + expires_in,
        "obtained_at": now,
    }


def _tokens(n: int, **reply: Any) -> Reply:
    body = _record(n, 0)
    del body["expires_at"], body["obtained_at"]
    return Reply(200, {**body, "expires_in": 3600}, **reply)


class Child:
    """A child process whose output lines are collected as they come."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.errors), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _read(stream: IO[str], into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def wait(self) -> int:
        code = self.proc.wait(timeout=120)
        for thread in self._threads:
            thread.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(params=["keyring", "plain-text file"])
def storage(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Where the processes keep the login: the real Secret Service (skipped without
    one) or the 0600 file (the keyring library's fail backend, in the children too).
    Yields the environment the children need."""
    if request.param == "keyring":
        request.getfixturevalue("real_keyring")
        yield {}
    else:
        request.getfixturevalue("no_keyring")
        yield {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


async def test_two_processes_refreshing_at_once_send_one_refresh_and_both_succeed(
    oauth_server: ScriptedOAuthServer,
    storage: dict[str, str],
    isolated_env: Path,
    request: pytest.FixtureRequest,
) -> None:
    name = unique_name("proc")
    if not storage:  # the real keyring: leave nothing behind
        request.addfinalizer(lambda: delete_keyring_entry(name))
    (isolated_env / "agentshell.toml").write_text(
        oauth_server.provider_toml(name), encoding="utf-8"
    )
    home = Path(isolated_env.parent / "home")
    store = TokenStore(home / "data")
    # valid for 2 more minutes: inside the 5-minute margin, so both processes refresh
    store.set(f"device_login:{name}", _record(1, 120))
    release = threading.Event()
    # the first refresh is held in flight until the other process has shown its hand:
    # either it waits for the lock (fixed) or it sends the same refresh token (the bug),
    # which the issuer treats as reuse
    oauth_server.script(
        "/token",
        _tokens(2, hold=release),
        Reply(400, {"error": "invalid_grant", "error_description": "grant request is invalid"}),
    )
    env = child_env(home, AGENTSHELL_LOAD_PLUGINS="builtins,device_login,null", **storage)
    args = [sys.executable, "-m", "tests.plugins.device_login.refresh_child", name]
    children = [Child(args, env, isolated_env) for _ in range(2)]
    try:

        def refreshes() -> list[Any]:
            return [
                r
                for r in oauth_server.received("/token")
                if r.form.get("grant_type") == "refresh_token"
            ]

        def other_showed_its_hand() -> bool:
            waiting = any(WAITING in line for c in children for line in c.lines)
            exited = any(c.proc.poll() is not None for c in children)
            return waiting or len(refreshes()) > 1 or exited

        await wait_until(other_showed_its_hand, "the second process to refresh or wait", 90)
        release.set()
        codes = [await asyncio.to_thread(child.wait) for child in children]
    finally:
        release.set()
        for child in children:
            child.kill()
    assert codes == [0, 0], "\n".join(line for c in children for line in c.lines + c.errors)
    expected = f"token {fingerprint('at-proc-0002-secret')}"
    assert [c.lines[-1] for c in children] == [expected, expected]
    assert len(refreshes()) == 1
    assert refreshes()[0].form["refresh_token"] == "rt-proc-0001-secret"
    # exactly one of them waited, and said so once
    assert sorted(sum(WAITING in line for line in c.lines) for c in children) == [0, 1]
    stored = store.get(f"device_login:{name}")
    assert stored is not None and stored["refresh_token"] == "rt-proc-0002-secret"
    for child in children:
        for line in child.lines + child.errors:
            assert "secret" not in line, line


# -- a still-valid token while the issuer is unreachable --------------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.usefixtures("no_keyring")
async def test_valid_token_is_used_while_the_issuer_is_unreachable_with_one_warning(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "builtins,device_login,openai")
    issuer = f"http://127.0.0.1:{_closed_port()}"  # nothing listens: connection refused
    config = (
        f'[plugins.device_login.providers.corp]\nissuer = "{issuer}"\nclient_id = "c"\n'
        '[agents.coder]\nbackend = "openai"\nmodel = "m"\n'
        f'base_url = "{issuer}/v1"\nauth = "corp"\n'
    )
    # a new process: the login was stored earlier, nothing is cached (no endpoints)
    shell = await make_shell(config=config)
    shell.auth.token_store.data_dir.mkdir(parents=True, exist_ok=True)
    provider = shell.auth.provider("corp")
    assert isinstance(provider, DeviceLoginProvider)
    clock = FakeClock(wall=time.time())
    provider.clock = clock
    provider.store.set(provider.key, _record(1, 240, clock.time()))  # 4 minutes left
    before = len(output.errors.splitlines())  # the plain-text store's own warning

    agent = shell.agents["coder"]
    for _ in range(3):
        creds = await shell.auth.credentials(agent)
        assert creds is not None and creds.token == "at-proc-0001-secret"
    warnings = output.errors.splitlines()[before:]
    assert len(warnings) == 1, output.errors
    assert warnings[0].startswith(
        "warning: corp: cannot refresh the access token: cannot read the issuer's metadata ("
    )
    assert "connection refused" in warnings[0]
    assert warnings[0].endswith("; using the current one until it expires (in 4:00)")
    assert "Error" not in output.errors  # no exception class names

    # once it has really expired, the failure is an error (retryable: the issuer may
    # come back), in words, with no class name
    clock.now += 241
    with pytest.raises(AgentDisconnected) as info:
        await shell.auth.credentials(agent)
    message = str(info.value)
    assert message.startswith(
        "corp: cannot refresh the access token: cannot read the issuer's metadata ("
    )
    assert "Error" not in message and "secret" not in message


async def test_an_agentshell_error_from_a_backend_shows_its_message_not_its_class(
    make_shell: Any,
) -> None:
    """What `/spec-plan` showed as `fatal: CommandError: corp: ...`: the runner wraps a
    non-agent error from a backend; for agentshell's own errors (user sentences) it
    must keep the sentence and drop the class name."""
    from agentshell import AgentRequest, CommandError, FatalAgentError, hookimpl

    class Backend:
        async def complete(self, call: Any) -> Any:
            raise CommandError("corp: cannot read the issuer's metadata (connection refused)")

        async def aclose(self) -> None:
            return None

    class Plugin:
        __name__ = "raising-backend"

        @hookimpl
        def register_agent_backends(self, register: Any) -> None:
            register("raising", lambda shell: Backend())

    shell = await make_shell(
        plugins=[Plugin()], config='[agents.a]\nbackend = "raising"\nmodel = "m"\n'
    )
    with pytest.raises(FatalAgentError) as info:
        await shell.runner.run(shell.agents["a"], AgentRequest(prompt="hi"))
    assert str(info.value) == "corp: cannot read the issuer's metadata (connection refused)"


@pytest.mark.usefixtures("no_keyring")
async def test_a_rejected_refresh_never_deletes_a_login_another_process_stored_meanwhile(
    make_shell: Any, oauth_server: ScriptedOAuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While our refresh is in flight, another process (one that did not wait for the
    lock: an older agentshell, or one that gave up waiting) stores a new login; the
    issuer then rejects our old refresh token. The new login must survive and be used."""
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "builtins,device_login")
    shell = await make_shell(config=oauth_server.provider_toml("corp"))
    provider = shell.auth.provider("corp")
    assert isinstance(provider, DeviceLoginProvider)
    provider.store.set(provider.key, _record(1, 60))  # one minute left: refresh
    release = threading.Event()
    oauth_server.script("/token", Reply(400, {"error": "invalid_grant"}, hold=release))
    task = asyncio.create_task(provider.get_credentials())
    await wait_until(lambda: bool(oauth_server.received("/token")), "the refresh request")
    other = TokenStore(provider.store.data_dir)  # the other process's view of the store
    other.set(provider.key, _record(7, 3600))
    release.set()
    creds = await task
    assert creds is not None and creds.token == "at-proc-0007-secret"
    stored = provider.store.get(provider.key)
    assert stored is not None and stored["refresh_token"] == "rt-proc-0007-secret"
