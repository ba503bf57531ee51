"""QA3: configuration problems keep every valid setting, are all reported in one pass,
never swap a broken agent for a recorded one, and name bad credentials and homes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentshell.config import check, check_config
from agentshell.configfiles import RawConfig, Source
from agentshell.errors import ConfigError
from tests.conftest import CapturedOutput
from tests.helpers.cli import REPO, child_env

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


# -- 1: a config error keeps everything valid ---------------------------------------------


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


# -- 2: every problem in one pass ---------------------------------------------------------

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
        "(available: command, openai, replay)" in output.errors
    )
    assert "gpt_pro" in shell.broken_agents


async def test_reload_with_problems_lists_them_all_and_applies_the_valid_parts(
    make_shell: Any, output: CapturedOutput
) -> None:
    # QA4: reload is lenient like an interactive start (was: nothing applied)
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


# -- 3: an unknown backend is an error, never a recorded stand-in ---------------------------


@pytest.fixture
def demo(isolated_env: Path) -> Path:
    shutil.copytree(REPO / "docs" / "SPEC-KIT-DEMO", isolated_env / "docs" / "SPEC-KIT-DEMO")
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


# -- 4: credentials -----------------------------------------------------------------------


async def test_an_unknown_auth_provider_is_a_config_error(
    make_shell: Any, output: CapturedOutput
) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_shell(config='[agents.x]\nauth = "nope"\n', mode="run")
    assert str(caught.value) == (
        "./agentshell.toml:2: agents.x.auth: unknown auth provider 'nope' "
        "(use env:NAME or keyring:SERVICE/NAME; no auth providers are registered)"
    )
    shell = await make_shell(mode="repl")
    assert "x" not in shell.agents and "x" in shell.broken_agents
    assert await shell.execute("/agents") == 0
    assert "?" not in output.text and "unknown provider" not in output.text


async def test_a_device_login_provider_counts_as_known(make_shell: Any) -> None:
    shell = await make_shell(
        config=(
            '[agents.x]\nauth = "corp:me"\n'
            "[plugins.device_login.providers.corp]\n"
            'client_id = "cli"\n'
            'device_authorization_endpoint = "https://login.example/device"\n'
            'token_endpoint = "https://login.example/token"\n'
        ),
        mode="run",
    )
    assert "x" in shell.agents and not shell.broken_agents


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('api_key = { env = "" }', "agents.x.api_key: Value error, env: the variable name is"),
        ('api_key = { keyring = "svc" }', "agents.x.api_key: Value error, keyring: expected"),
        ('auth = "env:"', "agents.x.auth: Value error, auth: the variable name after 'env:'"),
        ('auth = "keyring:/n"', "agents.x.auth: Value error, keyring: expected 'service/name'"),
    ],
)
async def test_empty_credential_references_are_rejected(
    make_shell: Any, setting: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_shell(config=f"[agents.x]\n{setting}\n", mode="run")
    assert str(caught.value).startswith(f"./agentshell.toml:2: {message}"), caught.value


async def test_keyring_credentials_say_not_checked(make_shell: Any, output: CapturedOutput) -> None:
    shell = await make_shell(
        config='[agents.k]\napi_key = { keyring = "svc/x" }\n[agents.p]\nauth = "keyring:svc/y"\n'
    )
    assert await shell.execute("/agents --json") == 0
    rows = {row["name"]: row for row in json.loads(output.text)}
    assert rows["k"]["credentials"] == "api_key keyring svc/x"
    assert rows["k"]["available"] is None
    assert await shell.execute("/agents") == 0
    assert "not checked (api_key keyring svc/x)" in output.text
    assert "not checked (keyring svc/y)" in output.text
    assert "?:" not in output.text


# -- 5: homes and config files of the wrong kind -------------------------------------------


async def test_a_home_that_is_a_file_is_one_clear_line(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "home-file"
    home.write_text("", encoding="utf-8")
    monkeypatch.setenv("AGENTSHELL_HOME", str(home))
    with pytest.raises(ConfigError) as caught:
        await make_shell(mode="run")
    assert str(caught.value) == f"AGENTSHELL_HOME={home} is not a directory"
    await make_shell(mode="repl")  # jsonl, the default sink, writes under the home
    assert f"error: AGENTSHELL_HOME={home} is not a directory" in output.errors
    assert "NotADirectoryError" not in output.errors and "pathlib" not in output.errors
    assert re.search(r"telemetry sink jsonl: cannot write \S+: Not a directory", output.errors)


async def test_a_config_file_that_is_a_directory_is_reported(
    make_shell: Any, output: CapturedOutput
) -> None:
    user = Path(os.environ["AGENTSHELL_HOME"]) / "config.toml"
    user.mkdir()
    Path("agentshell.toml").mkdir()  # noqa: ASYNC240
    with pytest.raises(ConfigError) as caught:
        await make_shell(mode="run")
    assert str(caught.value).splitlines() == [
        f"{user}: is a directory, not a config file",
        "./agentshell.toml: is a directory, not a config file",
    ]
    shell = await make_shell(mode="repl")
    assert shell.started and f"error: {user}: is a directory" in output.errors


# -- 6: the docs agree with the code ------------------------------------------------------


def test_docs_give_exit_2_for_a_bad_configuration() -> None:
    from agentshell.cli import EXIT_USAGE

    spec_kit = (REPO / "docs" / "spec-kit.md").read_text(encoding="utf-8")
    sentence = spec_kit[spec_kit.index("Exit codes") :].split("\n\n")[0]
    assert f"`{EXIT_USAGE}` the configuration is invalid" in sentence
    assert "bad configuration" not in sentence.split(f"`{EXIT_USAGE}`")[0]
    configuration = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert f"stops with exit status {EXIT_USAGE}" in configuration
