"""Regressions from a QA pass that drove the real CLI: each test failed before its fix."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from agentshell.commands import Command, CommandContext, Option
from agentshell.errors import ConfigError
from agentshell.plugins import hookimpl
from tests.conftest import CapturedOutput
from tests.helpers.cli import child_env


def _noop(ctx: CommandContext) -> int:
    return 0


# -- 1. a plugin that calls register wrongly fails alone; the shell starts ----------------


class WrongArity:
    """register_commands: one good command, then register("boom", fn)."""

    __name__ = "WrongArity"  # the plugin name make_shell registers it under

    @hookimpl
    def register_commands(self, register: Any) -> None:
        register(Command("fine-before", _noop, help="registered before the bad call"))
        register("boom", _noop)


class WrongTypes:
    __name__ = "WrongTypes"  # the plugin name make_shell registers it under

    @hookimpl
    def register_agent_backends(self, register: Any) -> None:
        register("okay-backend", lambda spec: None)
        register(123, "not callable")

    @hookimpl
    def register_telemetry_sinks(self, register: Any) -> None:
        register("bad-sink", "not callable")

    @hookimpl
    def register_auth_providers(self, register: Any) -> None:
        register("lonely")  # no factory


class BadConfigModel:
    __name__ = "BadConfigModel"  # the plugin name make_shell registers it under

    @hookimpl
    def register_config(self, register: Any) -> None:
        register("badcfg", dict)  # not a pydantic model


async def test_bad_register_calls_fail_only_their_plugin(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(plugins=[WrongArity(), WrongTypes(), BadConfigModel()], mode="repl")
    assert shell.started
    infos = shell.plugins.infos
    arity = infos["WrongArity"]
    assert arity.state == "failed"
    assert "register_commands: bad registration" in (arity.reason or "")
    assert "register(command) called wrongly: too many positional arguments" in (arity.reason or "")
    assert shell.commands.get("fine-before") is None  # discarded with the bad call
    types = infos["WrongTypes"]
    assert types.state == "failed"
    assert "name must be a non-empty string, got 123" in (types.reason or "")
    assert "okay-backend" not in shell.backend_names  # discarded too
    assert infos["BadConfigModel"].state == "failed"
    assert "pydantic model" in (infos["BadConfigModel"].reason or "")
    assert await shell.execute("/help") == 0  # the built-ins are all there


# -- 2. an unknown backend is a config error --------------------------------------------

UNKNOWN_BACKEND = (
    '[agents.claude]\nmodel = "m"\nbackend = "nope"\n\n[agents.ok]\nbackend = "replay"\n'
)


async def test_unknown_backend_is_a_config_error_in_run_mode(make_shell: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_shell(config=UNKNOWN_BACKEND, mode="run")
    message = str(caught.value)
    assert message.startswith("./agentshell.toml:3: agents.claude.backend: unknown backend 'nope'")
    assert "(available: command, openai, replay)" in message


async def test_unknown_backend_drops_the_agent_in_the_repl(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(config=UNKNOWN_BACKEND, mode="repl")
    assert "claude" not in shell.agents
    assert "ok" in shell.agents
    assert "error: ./agentshell.toml:3: agents.claude.backend: unknown backend" in output.errors


def test_unknown_backend_exits_2_from_run(tmp_path: Path) -> None:
    (tmp_path / "agentshell.toml").write_text(UNKNOWN_BACKEND, encoding="utf-8")
    done = _cli(tmp_path, "run", "/config")
    assert done.returncode == 2
    assert "error: ./agentshell.toml:3: agents.claude.backend: unknown backend" in done.stderr


# -- 3. config errors name file, line and key; unknown names are warned about ----------


async def test_unknown_sink_names_file_line_and_key(make_shell: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_shell(config='[telemetry]\nsinks = ["nope"]\n', mode="run")
    assert str(caught.value).startswith(
        "./agentshell.toml:2: telemetry.sinks: unknown telemetry sink 'nope' (available:"
    )


async def test_unknown_sink_in_the_repl_keeps_the_others(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(config='[telemetry]\nsinks = ["nope", "null"]\n', mode="repl")
    assert "error: ./agentshell.toml:2: telemetry.sinks: unknown telemetry sink 'nope'" in (
        output.errors
    )
    assert shell.started


async def test_structured_env_value_is_shown(
    make_shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_RETRY__ATTEMPTS", '{"a":1}')
    with pytest.raises(ConfigError) as caught:
        await make_shell(mode="run")
    assert str(caught.value) == (
        "environment variable AGENTSHELL_RETRY__ATTEMPTS: retry.attempts: "
        'Input should be a valid integer (got {"a": 1})'
    )


async def test_unknown_names_are_warned_about_once(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_BOGUS", "1")
    monkeypatch.setenv("AGENTSHELL_DEBGU", "1")
    monkeypatch.setenv("AGENTSHELL_DISABLE_PLUGINS", "faults,metrix")
    config = '[plugins]\ndisable = ["consensu"]\n\n[plugins.nosuch]\nx = 1\n\n[plugins.faults]\n'
    await make_shell(config=config, mode="repl")
    errors = output.errors
    assert "environment variable AGENTSHELL_BOGUS is not a setting" in errors
    assert "AGENTSHELL_DEBGU is not a setting (did you mean AGENTSHELL_DEBUG?)" in errors
    assert "./agentshell.toml:4: [plugins.nosuch]: no plugin named 'nosuch'" in errors
    assert "[plugins.faults]" not in errors  # disabled, but a plugin of that name exists
    assert (
        "AGENTSHELL_DISABLE_PLUGINS names no known plugin: 'metrix' (did you mean 'metrics'?)"
        in errors
    )
    assert "plugins.disable names no known plugin: 'consensu' (did you mean 'consensus'?)" in (
        errors
    )
    assert errors.count("AGENTSHELL_BOGUS") == 1


async def test_known_names_are_not_warned_about(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_DEBUG", "1")
    monkeypatch.setenv("AGENTSHELL_TELEMETRY_SINKS", "null")
    monkeypatch.setenv("AGENTSHELL_DISABLE_PLUGINS", "faults")
    await make_shell(config="[plugins.metrics]\nbudget_usd = 1.0\n", mode="repl")
    assert "warning" not in output.errors


# -- 5. user errors carry no class names or source locations ---------------------------


class Failing:
    @hookimpl
    def register_commands(self, register: Any) -> None:
        def oserror(ctx: CommandContext) -> int:
            with open("/proc/nope/t.jsonl", "w"):  # a real OSError from the OS
                return 0

        def bug(ctx: CommandContext) -> int:
            table: dict[str, int] = {}
            return table["missing"]

        register(Command("write", oserror, help="writes where it cannot"))
        register(Command("bug", bug, help="has a bug"))


async def test_oserror_is_one_plain_line(make_shell: Any, output: CapturedOutput) -> None:
    shell = await make_shell(plugins=[Failing()])
    assert await shell.execute("/write") == 1
    assert output.errors.strip() == "error: /write: No such file or directory: /proc/nope/t.jsonl"


async def test_unexpected_exception_says_it_is_a_bug(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(plugins=[Failing()])
    assert await shell.execute("/bug") == 1
    assert "error: /bug failed: KeyError" in output.errors
    assert "(a bug: run with AGENTSHELL_DEBUG=1 for the traceback)" in output.errors


def test_closed_stdout_is_quiet(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written: EPIPE for sure
    try:
        done = subprocess.run(
            [sys.executable, "-m", "agentshell", "run", "/help", "/plugins"],
            env=_env(tmp_path),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode in (0, 141)


# -- 6. disabled plugins: why, and what their commands say ------------------------------


async def test_disabled_plugins_say_where_and_their_commands_explain(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_DISABLE_PLUGINS", "metrics,faults")
    shell = await make_shell(config='[plugins]\ndisable = ["resume"]\n')
    infos = shell.plugins.infos
    assert infos["faults"].reason == "disabled by AGENTSHELL_DISABLE_PLUGINS"
    assert infos["resume"].reason == "disabled by plugins.disable in ./agentshell.toml"
    assert await shell.execute("/faults") == 1
    assert (
        "error: unknown command /faults: plugin 'faults' is disabled (AGENTSHELL_DISABLE_PLUGINS)"
        in output.errors
    )
    assert await shell.execute("/resume-x") == 1
    assert "plugin 'resume' is disabled (plugins.disable in ./agentshell.toml)" in output.errors


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [("hlep", "/help"), ("spec-atuo", "/spec-auto"), ("plgins", "/plugins"), ("bogus", None)],
)
async def test_did_you_mean_cutoff(
    make_shell: Any, output: CapturedOutput, typo: str, suggestion: str | None
) -> None:
    shell = await make_shell()
    assert await shell.execute(f"/{typo}") == 1
    if suggestion is None:
        assert "did you mean" not in output.errors  # /bogus used to suggest /logout
    else:
        assert f"did you mean {suggestion}" in output.errors


# -- 7. `agentshell run` does not import prompt_toolkit --------------------------------


def test_run_does_not_import_prompt_toolkit(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from agentshell.cli import main\n"
        "status = main(['run', '/help'])\n"
        "sys.stderr.write('LOADED=%s' % ('prompt_toolkit' in sys.modules))\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(tmp_path),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "/help" in done.stdout
    assert "LOADED=False" in done.stderr


# -- 8. polish -------------------------------------------------------------------------

LITERAL = (
    '[agents.claude]\nbackend = "openai"\nmodel = "m"\ntimeout = 30\n'
    'api_key = "sk-literal-123456789"\n'
)


async def test_config_output_is_valid_toml_with_documented_names(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(config=LITERAL)
    assert await shell.execute("/config") == 0
    parsed = tomllib.loads(output.text)  # masks and unset values must not break TOML
    claude = parsed["agents"]["claude"]
    assert claude["api_key"] == "****"
    assert claude["timeout"] == 30
    assert "timeout_s" not in claude
    assert "# base_url: (unset)" in output.text
    assert "# sources (lowest precedence first): defaults, ./agentshell.toml\n" in output.text
    assert "sk-literal" not in output.text


async def test_literal_secret_warns_once(make_shell: Any, output: CapturedOutput) -> None:
    shell = await make_shell(config=LITERAL)
    await shell.execute("/config reload")
    expected = 'literal secret in ./agentshell.toml:5: prefer { env = "CLAUDE_API_KEY" }'
    assert output.errors.count(expected) == 1


async def test_agents_shows_literal_keys_and_json_keeps_long_fields(
    make_shell: Any, output: CapturedOutput
) -> None:
    import json

    long_command = ["python", "-c", "print(1)", *[f"--flag-{i}" for i in range(12)]]
    config = (
        LITERAL + f'\n[agents.local]\nbackend = "command"\ncommand = {json.dumps(long_command)}\n'
    )
    shell = await make_shell(config=config)
    assert await shell.execute("/agents") == 0
    assert "literal (config)" in output.text
    assert "?: api_key" not in output.text
    output.out_buffer.truncate(0)
    output.out_buffer.seek(0)
    assert await shell.execute("/agents --json") == 0
    local = next(a for a in json.loads(output.text) if a["name"] == "local")
    assert local["target"].endswith("--flag-11")
    assert "…" not in local["target"]


async def test_tables_in_non_tty_output_are_not_cut(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell()
    shell.output.table(["a", "b"], [("x" * 120, "the end"), ("short", "")])
    lines = output.text.splitlines()
    assert any("x" * 120 in line and "the end" in line for line in lines)
    assert all(line == line.rstrip() for line in lines)
    assert "…" not in output.text


def test_run_says_which_commands_were_skipped(tmp_path: Path) -> None:
    done = _cli(tmp_path, "run", "/nosuch", "/help", "/plugins --json")
    assert done.returncode == 1
    assert (
        "error: skipped 2 commands after the failure: /help, /plugins; use -k to keep going"
        in done.stderr
    )


class Documented:
    @hookimpl
    def register_commands(self, register: Any) -> None:
        register(
            Command(
                "doc",
                _noop,
                help="uses ``markup`` in help",
                options=[
                    Option("--x", "short one", flag=True),
                    Option("--a-long-option", "set ``path`` here", metavar="PATH"),
                ],
            )
        )


async def test_help_aligns_options_and_strips_rst(make_shell: Any, output: CapturedOutput) -> None:
    shell = await make_shell(plugins=[Documented()])
    assert await shell.execute("/help doc") == 0
    text = output.text
    assert "``" not in text
    assert "uses markup in help" in text
    lines = [line for line in text.splitlines() if "short one" in line or "set path" in line]
    assert len(lines) == 2
    assert lines[0].index("short one") == lines[1].index("set path here")


async def test_set_env_with_empty_value_unsets(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_TEMP_VAR", "1")
    shell = await make_shell()
    assert await shell.execute("/set-env QA_TEMP_VAR=") == 0
    assert "QA_TEMP_VAR" not in os.environ
    assert "QA_TEMP_VAR unset for this session" in output.text
    path = os.environ["PATH"]
    assert await shell.execute("/set-env PATH=") == 1
    assert "refusing to unset PATH" in output.errors
    assert os.environ["PATH"] == path


# -- helpers ---------------------------------------------------------------------------


def _env(tmp_path: Path) -> dict[str, str]:
    return child_env(tmp_path / "home")


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentshell", *args],
        env=_env(tmp_path),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
