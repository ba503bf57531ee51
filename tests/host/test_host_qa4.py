"""QA pass 4 on the host.

1. A ``-p MODULE`` whose ``shell_started`` hook raises is unusable: one ``error:`` line,
   ``agentshell run`` exits 2 without running anything, piped stdin (the REPL's path)
   goes on with the error shown, and ``/plugins`` lists it as failed with the reason.
   An entry-point plugin whose hook raises only warns and stays loaded, but ``/plugins``
   still shows why.
2. ``/config reload`` is lenient like an interactive start: the valid parts apply, each
   problem is one line, a summary says how many, and a bad environment variable is
   answered with the ``/set-env NAME=`` that unsets it (editing a file cannot fix it).
3. Messages: no auth providers registered is said as such; the "what happens now"
   warning comes after every problem line at start-up.

The CLI tests run the real ``agentshell`` in a subprocess; the rest use a real Shell with
the real entry-point plugins. Nothing is mocked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentshell import hookimpl
from agentshell.commands import Command, CommandContext
from agentshell.output import Output
from agentshell.shell import Shell, fix_advice
from tests.conftest import CapturedOutput
from tests.helpers.cli import REPO, agentshell, child_env

RAISING = (
    "from agentshell import hookimpl\n"
    "@hookimpl\n"
    "def shell_started(shell):\n"
    '    raise RuntimeError("boom at start")\n'
)
ERROR_LINE = (
    "error: plugin qa4_raising: hook shell_started raised "
    "RuntimeError: boom at start at qa4_raising.py:4"
)


@pytest.fixture
def plugin_env(tmp_path: Path) -> dict[str, str]:
    plugdir = tmp_path / "plugins"
    plugdir.mkdir()
    (plugdir / "qa4_raising.py").write_text(RAISING, encoding="utf-8")
    env = child_env(tmp_path / "home")
    env["PYTHONPATH"] = f"{plugdir}:{REPO}"
    return env


# -- 1: a -p module whose shell_started raises ----------------------------------------------


def test_run_with_a_p_module_raising_at_start_exits_2_and_runs_nothing(
    plugin_env: dict[str, str],
) -> None:
    ran = agentshell(plugin_env, "-p", "qa4_raising", "run", "/config path")
    assert ran.returncode == 2
    assert ran.stderr.splitlines() == [ERROR_LINE]
    assert ran.stdout == ""  # /config path did not run


def test_piped_stdin_goes_on_and_plugins_shows_it_failed(plugin_env: dict[str, str]) -> None:
    piped = agentshell(plugin_env, "-p", "qa4_raising", stdin="/plugins --json\n")
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr.splitlines() == [ERROR_LINE]
    infos = {info["name"]: info for info in json.loads(piped.stdout)}
    assert infos["qa4_raising"]["state"] == "failed"
    assert infos["qa4_raising"]["reason"] == (
        "hook shell_started raised RuntimeError: boom at start at qa4_raising.py:4"
    )


class StartsBadly:
    """A plugin with a command whose ``shell_started`` raises."""

    __name__ = "starts_badly"

    @hookimpl
    def register_commands(self, register: Any) -> None:
        register(Command("qa4-hello", self.hello, help="say hello"))

    @staticmethod
    def hello(ctx: CommandContext) -> int:
        ctx.out.print("hello")
        return 0

    @hookimpl
    def shell_started(self, shell: Any) -> None:
        raise RuntimeError("no start for me")


async def test_a_requested_plugin_raising_at_start_is_failed_with_its_commands(
    output: CapturedOutput,
) -> None:
    shell = Shell(mode="repl", output=output)
    shell.plugins.requested.add("starts_badly")  # what `-p` does
    shell.plugins.register(StartsBadly(), "starts_badly")
    await shell.start()
    try:
        assert "error: plugin starts_badly: hook shell_started raised RuntimeError: " in (
            output.errors
        )
        assert "warning:" not in output.errors
        info = shell.plugins.infos["starts_badly"]
        assert info.state == "failed"
        assert info.reason is not None and "no start for me" in info.reason
        assert await shell.execute("/qa4-hello") == 1  # failed: its command went with it
        assert await shell.execute("/plugins") == 0
        row = next(line for line in output.text.splitlines() if "starts_badly" in line)
        assert "failed: hook shell_started raised RuntimeError" in row
    finally:
        await shell.stop()


async def test_an_entry_point_plugin_raising_at_start_only_warns(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(plugins=[StartsBadly()], mode="repl")
    assert "warning: plugin starts_badly: hook shell_started raised RuntimeError" in output.errors
    assert "error:" not in output.errors
    info = shell.plugins.infos["starts_badly"]
    assert info.state == "loaded"  # a broken third-party plugin does not stop anything
    assert info.reason is not None and "no start for me" in info.reason
    assert await shell.execute("/qa4-hello") == 0
    assert await shell.execute("/plugins --json") == 0
    listed = json.loads(output.text[output.text.index("[") :])
    entry = next(item for item in listed if item["name"] == "starts_badly")
    assert entry["state"] == "loaded" and "no start for me" in entry["reason"]


async def test_a_run_mode_shell_with_an_entry_point_raising_still_starts(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(plugins=[StartsBadly()], mode="run")
    assert shell.started
    assert await shell.execute("/qa4-hello") == 0


# -- 2: /config reload and the environment ----------------------------------------------


async def test_reload_with_only_a_bad_env_variable_applies_the_file(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(
        config="[retry]\nattempts = 2\n", mode="repl", env={"AGENTSHELL_RETRYY__ATTEMPTS": "3"}
    )
    env_line = (
        "error: environment variable AGENTSHELL_RETRYY__ATTEMPTS: unknown section 'retryy' "
        "(did you mean 'retry'?)"
    )
    assert env_line in output.errors.splitlines()
    assert "/set-env AGENTSHELL_RETRYY__ATTEMPTS=" in output.errors
    Path("agentshell.toml").write_text("[retry]\nattempts = 7\n", encoding="utf-8")  # noqa: ASYNC240
    before = len(output.errors)
    assert await shell.execute("/config reload") == 1
    said = output.errors[before:].splitlines()
    assert said[0] == env_line
    assert said[-1].startswith("error: configuration reloaded with 1 problem (above): ")
    assert (
        "unset AGENTSHELL_RETRYY__ATTEMPTS with /set-env AGENTSHELL_RETRYY__ATTEMPTS=" in (said[-1])
    )
    assert "fix the file" not in said[-1]  # editing a file cannot fix this one
    assert shell.config.retry.attempts == 7  # the valid parts are applied

    # the advice works: unset it, reload, and nothing is left to report
    assert await shell.execute("/set-env AGENTSHELL_RETRYY__ATTEMPTS=") == 0
    before = len(output.errors)
    assert await shell.execute("/config reload") == 0
    assert output.errors[before:] == ""
    assert "configuration reloaded" in output.text
    assert shell.config_errors == []


async def test_reload_prints_every_problem_of_files_and_environment(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(mode="repl", env={"AGENTSHELL_RETRYY__ATTEMPTS": "3"})
    Path("agentshell.toml").write_text(  # noqa: ASYNC240
        '[retry]\nattempts = "many"\nbase_delay_s = 0.125\n', encoding="utf-8"
    )
    before = len(output.errors)
    assert await shell.execute("/config reload") == 1
    said = output.errors[before:].splitlines()
    assert any(line.startswith("error: ./agentshell.toml:2: retry.attempts") for line in said)
    assert any("environment variable AGENTSHELL_RETRYY__ATTEMPTS" in line for line in said)
    assert said[-1].startswith("error: configuration reloaded with 2 problems (above): ")
    assert "fix the file and unset AGENTSHELL_RETRYY__ATTEMPTS with /set-env" in said[-1]
    assert shell.config.retry.base_delay_s == 0.125
    assert len(shell.config_errors) == 2  # /config lists both


async def test_reload_with_an_unreadable_env_variable_keeps_the_running_config(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(config="[retry]\nattempts = 2\n", mode="repl")
    Path("agentshell.toml").write_text("[retry]\nattempts = 9\n", encoding="utf-8")  # noqa: ASYNC240
    shell.environ["AGENTSHELL_RETRY__"] = "1"  # an empty key: the environment is unreadable
    try:
        before = len(output.errors)
        assert await shell.execute("/config reload") == 1
    finally:
        del shell.environ["AGENTSHELL_RETRY__"]
    said = output.errors[before:].splitlines()
    assert said == [
        "error: environment variable AGENTSHELL_RETRY__: empty key in the name",
        "error: configuration not reloaded, the running one is unchanged; unset "
        "AGENTSHELL_RETRY__ with /set-env AGENTSHELL_RETRY__=, then run /config reload",
    ]
    assert shell.config.retry.attempts == 2


def test_fix_advice_names_each_variable_once() -> None:
    lines = [
        "environment variable AGENTSHELL_A__B: unknown section 'a'",
        "environment variable AGENTSHELL_A__B, AGENTSHELL_C__D: conflict",
        "./agentshell.toml:2: retry.attempts: bad",
    ]
    assert fix_advice(lines) == (
        "fix the file and unset AGENTSHELL_A__B with /set-env AGENTSHELL_A__B= and unset "
        "AGENTSHELL_C__D with /set-env AGENTSHELL_C__D=, then run /config reload"
    )
    assert fix_advice(lines[2:]) == "fix the file, then run /config reload"


# -- 3: messages ------------------------------------------------------------------------


async def test_no_auth_providers_is_said_plainly(make_shell: Any, output: CapturedOutput) -> None:
    await make_shell(config='[agents.x]\nauth = "nope"\n', mode="repl")
    assert (
        "error: ./agentshell.toml:2: agents.x.auth: unknown auth provider 'nope' "
        "(use env:NAME or keyring:SERVICE/NAME; no auth providers are registered)"
    ) in output.errors.splitlines()
    assert "provider: none" not in output.errors


async def test_known_auth_providers_are_listed(make_shell: Any, output: CapturedOutput) -> None:
    await make_shell(
        config=(
            '[agents.x]\nauth = "nope"\n'
            "[plugins.device_login.providers.corp]\n"
            'client_id = "cli"\n'
            'device_authorization_endpoint = "https://login.example/device"\n'
            'token_endpoint = "https://login.example/token"\n'
        ),
        mode="repl",
    )
    assert "or a provider: corp)" in output.errors


async def test_the_consequence_comes_after_every_problem_line(
    make_shell: Any, output: CapturedOutput
) -> None:
    await make_shell(
        config=(
            '[retry]\nattempts = "many"\n'
            '[agents.a]\nbackend = "nope"\n'
            '[agents.b]\nauth = "nope"\n'
            '[telemetry]\nsinks = ["nope"]\n'
        ),
        mode="repl",
    )
    lines = output.errors.splitlines()
    problems = [i for i, line in enumerate(lines) if line.startswith("error: ./agentshell.toml")]
    assert len(problems) == 4, output.errors
    consequence = [i for i, line in enumerate(lines) if "fall back to their defaults" in line]
    assert len(consequence) == 1 and consequence[0] > max(problems)
    said = lines[consequence[0]]
    assert "agent a is left out" in said and "agent b is left out" in said
    assert said.endswith("fix the file, then run /config reload")


async def test_a_later_config_problem_is_still_printed_at_once(output: CapturedOutput) -> None:
    # outside start-up and reload nothing collects: a problem is printed when found
    from agentshell.errors import ConfigError

    shell = Shell(mode="repl", output=output)
    shell._config_error(ConfigError("./agentshell.toml:1: x: bad"), False, "x is ignored")
    assert output.errors.splitlines() == [
        "error: ./agentshell.toml:1: x: bad",
        "warning: x is ignored; fix the file, then run /config reload",
    ]
    assert isinstance(shell.output, Output)
