"""Configuration problems at an interactive start and on ``/config reload``: every valid
setting is kept next to a bad one, every problem is reported in one pass (one line
each, then one line saying what happens now), a broken agent is left out and shown
broken (never swapped for a recorded one), and an environment variable that cannot be
read is answered with the ``/set-env NAME=`` that unsets it. ``agentshell run`` still
refuses a bad configuration (exit 2) and names every problem at once.

Real Shell with the real entry-point plugins; the CLI tests run ``agentshell`` in a
subprocess. Nothing is mocked.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentshell.config_check import check, check_config
from agentshell.configfiles import RawConfig, Source
from agentshell.errors import ConfigError
from agentshell.output import Output
from agentshell.shell import Shell, fix_advice
from tests.conftest import CapturedOutput
from tests.helpers.cli import REPO, child_env, run_in
from tests.helpers.paths import without_demo_outputs

BUDGET_AND_TYPO = (
    "[retry]\n"
    'attempts = "many"\n'
    "base_delay_s = 0.25\n"
    "[telemetry]\n"
    'sinks = ["null"]\n'
    "[plugins.metrics]\n"
    "budget_usd = 0.5\n"
    "halt_on_budget = true\n"
    "[agents.gpt_pro]\n"
    'backend = "openai"\n'
    'model = "gpt-4o"\n'
    'base_url = "http://127.0.0.1:9/v1"\n'
)


def raw_of(text: str, data: dict[str, Any]) -> RawConfig:
    return RawConfig(data=data, sources=[Source("./agentshell.toml", data, text)])


async def test_repl_keeps_every_valid_setting_next_to_a_bad_one(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(config=BUDGET_AND_TYPO, mode="repl")
    assert "./agentshell.toml:2: retry.attempts: " in output.errors
    assert "only these settings fall back to their defaults, the rest is kept" in output.errors
    assert shell.config.retry.attempts == 4  # only the bad key fell back
    assert shell.config.retry.base_delay_s == 0.25
    assert shell.config.telemetry.sinks == ["null"]
    metrics = shell.plugin_config("metrics")
    assert (metrics.budget_usd, metrics.halt_on_budget) == (0.5, True)  # the cap survives
    agent = shell.agents["gpt_pro"]
    assert (agent.backend, agent.model) == ("openai", "gpt-4o")  # not the recorded one

    output.out_buffer.truncate(0)
    output.out_buffer.seek(0)
    assert await shell.execute("/config") == 0
    assert "budget_usd = 0.5" in output.text and "halt_on_budget = true" in output.text
    assert "# problem: ./agentshell.toml:2: retry.attempts: " in output.text
    output.out_buffer.truncate(0)
    output.out_buffer.seek(0)
    assert await shell.execute("/agents --json") == 0
    rows = {row["name"]: row for row in json.loads(output.text)}
    assert rows["gpt_pro"]["backend"] == "openai" and rows["gpt_pro"]["recorded"] is False


async def test_a_plugin_section_keeps_its_valid_keys(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(
        config="[plugins.metrics]\nbudget_usd = 0.5\nhalt_on_budget = true\nestimate_window = 0\n",
        mode="repl",
    )
    assert "./agentshell.toml:4: plugins.metrics.estimate_window: " in output.errors
    metrics = shell.plugin_config("metrics")
    assert (metrics.budget_usd, metrics.halt_on_budget) == (0.5, True)
    assert metrics.estimate_window == 3  # the default


async def test_run_mode_still_refuses_a_bad_configuration(make_shell: Any) -> None:
    with pytest.raises(ConfigError, match=r"retry\.attempts"):
        await make_shell(config=BUDGET_AND_TYPO, mode="run")


def test_lenient_check_drops_only_what_is_invalid() -> None:
    text = '[telemetry]\nsinks = ["jsonl", 5]\n[agents."bad name"]\nmodel = "m"\n'
    data: dict[str, Any] = {
        "telemetry": {"sinks": ["jsonl", 5], "queue_size": 7},
        "agents": {"bad name": {"model": "m"}, "ok": {"model": "m2", "timeout": -1}},
        "retry": {"attempts": 2},
    }
    checked = check_config(raw_of(text, data))
    config = checked.value
    assert config.retry.attempts == 2
    assert config.telemetry.queue_size == 7
    assert config.telemetry.sinks == ["jsonl"]  # a bad list item: the list's default
    assert config.agents == {}  # an agent with a bad key or name is left out whole
    assert ("agents", "bad name") in checked.dropped and ("agents", "ok") in checked.dropped
    assert len(checked.problems) == 3, checked.problems
    assert data["agents"]["ok"]["timeout"] == -1  # the raw data is not modified


def test_a_dropped_key_is_not_reported_again_as_missing() -> None:
    from pydantic import BaseModel, Field

    class Provider(BaseModel):
        client_id: str = Field(min_length=1)
        scope: str = "x"

    class Section(BaseModel):
        keep: int = 1
        providers: dict[str, Provider] = {}

    data = {"keep": 5, "providers": {"a": {"client_id": ""}, "b": {"client_id": "c"}}}
    checked = check(raw_of("", data), Section, data, ("plugins", "x"))
    assert checked.value.keep == 5 and list(checked.value.providers) == ["b"]
    assert len(checked.problems) == 1, checked.problems
    assert "plugins.x.providers.a.client_id" in checked.problems[0]


FIVE_PROBLEMS = (
    "[retry]\n"
    'attempts = "many"\n'
    "base_delay_s = -1\n"
    "[shell]\n"
    "prompt = 5\n"
    "[plugins.nope]\n"
    "x = 1\n"
    "[plugins.consensus]\n"
    'halt_on = ["bogus"]\n'
)


def test_run_reports_every_problem_at_once_and_exits_2(tmp_path: Path) -> None:
    (Path.cwd() / "agentshell.toml").write_text(FIVE_PROBLEMS, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "agentshell", "run", "/help"],
        env=child_env(tmp_path / "child-home"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    for where in (
        "./agentshell.toml:2: retry.attempts",
        "./agentshell.toml:3: retry.base_delay_s",
        "./agentshell.toml:5: shell.prompt",
        "./agentshell.toml:9: plugins.consensus.halt_on",
        "./agentshell.toml:6: [plugins.nope]",
    ):
        assert sum(where in line for line in lines) == 1, (where, done.stderr)
    assert "Traceback" not in done.stderr


async def test_repl_reports_a_bad_backend_next_to_a_bad_value(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(
        config='[retry]\nattempts = "many"\n[agents.gpt_pro]\nbackend = "nope"\n', mode="repl"
    )
    assert "./agentshell.toml:2: retry.attempts" in output.errors
    assert (
        "./agentshell.toml:4: agents.gpt_pro.backend: unknown backend 'nope' "
        "(available: chat-echo, command, openai, replay)" in output.errors
    )
    assert "gpt_pro" in shell.broken_agents


@pytest.fixture
def demo(isolated_env: Path) -> Path:
    shutil.copytree(
        REPO / "docs" / "SPEC-KIT-DEMO",
        isolated_env / "docs" / "SPEC-KIT-DEMO",
        ignore=without_demo_outputs,
    )
    return isolated_env


async def test_an_unknown_backend_is_shown_broken_not_replaced_by_a_recording(
    make_shell: Any, output: CapturedOutput, demo: Path
) -> None:
    shell = await make_shell(
        config='[telemetry]\nsinks = ["null"]\n[agents.gpt_pro]\nbackend = "nope"\n',
        mode="repl",
    )
    assert "gpt_pro" not in shell.agents
    assert "agent gpt_pro is left out" in output.errors
    assert await shell.execute("/agents") == 0
    row = next(line for line in output.text.splitlines() if "gpt_pro" in line)
    assert "nope (broken)" in row and "recorded" not in row
    assert "gpt_pro is left out: ./agentshell.toml:4: agents.gpt_pro.backend" in output.errors
    assert await shell.execute("/agents --json") == 0
    data = json.loads(output.text[output.text.rindex("\n[") :])
    broken = next(item for item in data if item["name"] == "gpt_pro")
    assert broken["broken"] is True and "unknown backend 'nope'" in broken["error"]

    # the stage that needs it says so instead of running on recordings
    assert await shell.execute("/spec-auto SPEC-KIT-DEMO") != 0
    assert "agent 'gpt_pro' is not configured" in output.errors
    assert not (demo / "docs" / "SPEC-KIT-DEMO" / "plan.md").exists()


async def test_an_agent_with_a_bad_key_is_not_replaced_by_a_recording(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(config="[agents.gpt_pro]\ntimeout = -1\n", mode="repl")
    assert "./agentshell.toml:2: agents.gpt_pro.timeout" in output.errors
    assert "gpt_pro" not in shell.agents and "gpt_pro" in shell.broken_agents
    assert "claude" in shell.agents  # the other recorded demo agents are still there


UNKNOWN_BACKEND = (
    '[agents.claude]\nmodel = "m"\nbackend = "nope"\n\n[agents.ok]\nbackend = "replay"\n'
)


async def test_unknown_backend_is_a_config_error_in_run_mode(make_shell: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_shell(config=UNKNOWN_BACKEND, mode="run")
    message = str(caught.value)
    assert message.startswith("./agentshell.toml:3: agents.claude.backend: unknown backend 'nope'")
    assert "(available: chat-echo, command, openai, replay)" in message


async def test_unknown_backend_drops_the_agent_in_the_repl(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(config=UNKNOWN_BACKEND, mode="repl")
    assert "claude" not in shell.agents
    assert "ok" in shell.agents
    assert "error: ./agentshell.toml:3: agents.claude.backend: unknown backend" in output.errors


def test_unknown_backend_exits_2_from_run(tmp_path: Path) -> None:
    (tmp_path / "agentshell.toml").write_text(UNKNOWN_BACKEND, encoding="utf-8")
    done = run_in(tmp_path, "run", "/config")
    assert done.returncode == 2
    assert "error: ./agentshell.toml:3: agents.claude.backend: unknown backend" in done.stderr


async def test_unknown_sink_in_the_repl_keeps_the_others(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell(config='[telemetry]\nsinks = ["nope", "null"]\n', mode="repl")
    assert "error: ./agentshell.toml:2: telemetry.sinks: unknown telemetry sink 'nope'" in (
        output.errors
    )
    assert shell.started


async def test_reload_with_problems_lists_them_all_and_applies_the_valid_parts(
    make_shell: Any, output: CapturedOutput
) -> None:
    # reload is lenient like an interactive start (it once applied nothing)
    shell = await make_shell(config="[plugins.metrics]\nbudget_usd = 0.5\n", mode="repl")
    Path("agentshell.toml").write_text(  # noqa: ASYNC240
        '[retry]\nattempts = "many"\nbase_delay_s = 0.25\n[agents.a]\nbackend = "nope"\n',
        encoding="utf-8",
    )
    assert await shell.execute("/config reload") == 1
    assert "./agentshell.toml:2: retry.attempts" in output.errors
    assert "./agentshell.toml:5: agents.a.backend: unknown backend" in output.errors
    assert "configuration reloaded with 2 problems (above)" in output.errors
    metrics = shell.plugin_config("metrics")
    assert metrics.budget_usd == type(metrics)().budget_usd != 0.5  # the new files apply
    assert shell.config.retry.base_delay_s == 0.25
    assert "a" in shell.broken_agents and "a" not in shell.agents


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
