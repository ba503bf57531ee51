"""Regressions from the fourth spec-kit QA pass; each test failed before its fix.

Real parts only: the replay backend with the recorded demo answers, the real SQLite
resume store, the real plugin host (plugins disabled the ways a user disables them)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from agentshell.agents import AgentCall
from agentshell.plugins import hookimpl
from speckit_consensus.commands import SPEC_AUTO_USAGE, stage_usage
from tests.helpers.paths import REPO
from tests.helpers.recordings import DEMO

FAST = (
    "[telemetry]\nsinks = []\n\n[retry]\nattempts = 1\n\n"
    "[plugins.consensus]\ndemo_latency_scale = 0\n"
)
BRANCH = re.compile(rf"branch ({re.escape(DEMO)}-\d{{14}}-[0-9a-f]{{8}})")


def copy_spec(cwd: Path, spec: str = DEMO) -> None:
    shutil.copytree(REPO / "docs" / spec, cwd / "docs" / spec)


def clear(output: Any) -> None:
    for buffer in (output.out_buffer, output.err_buffer):
        buffer.seek(0)
        buffer.truncate()


class Calls:
    """A test plugin: counts the agent calls that reach the backend hooks."""

    __name__ = "qa4_calls"

    def __init__(self) -> None:
        self.count = 0

    @hookimpl
    def before_agent_call(self, call: AgentCall) -> None:
        self.count += 1


async def history(shell: Any, output: Any, spec: str = DEMO) -> dict[str, Any]:
    clear(output)
    assert await shell.execute(f"/history {spec} --json") == 0
    data: dict[str, Any] = json.loads(output.text)
    clear(output)
    return data


def branch_of(output: Any) -> str:
    found = BRANCH.findall(output.text)
    assert found, output.text
    return str(found[-1])


# -- 1. --consensus <BRANCH-ID> --------------------------------------------------------


async def test_a_branch_id_after_consensus_is_an_error_not_a_goal(
    make_shell: Any, output: Any, isolated_env: Path
) -> None:
    copy_spec(isolated_env)
    calls = Calls()
    shell = await make_shell(plugins=[calls], config=FAST)
    branch = f"{DEMO}-20261122062253-17eb0fcb"
    assert await shell.execute(f"/spec-audit {DEMO} --consensus {branch}") == 1
    assert (
        f"/spec-audit: --consensus needs a goal; {branch} is a branch id "
        f"(usage: {stage_usage('audit')})"
    ) in output.errors
    near = f"{DEMO}-20261122062253-17EB0FCB"  # upper-case hex: a mistyped branch id
    assert await shell.execute(f"/spec-plan {DEMO} --consensus {near}") == 1
    assert f"{near!r} is not a branch id" in output.errors
    assert calls.count == 0
    assert (await history(shell, output))["runs"] == []  # no run, no branch was made


# -- 2. --resume without the resume plugin -----------------------------------------------


@pytest.mark.parametrize(
    ("env", "config", "cause"),
    [
        (
            {"AGENTSHELL_DISABLE_PLUGINS": "resume"},
            "",
            "the resume plugin is off (disabled by AGENTSHELL_DISABLE_PLUGINS)",
        ),
        ({}, '[plugins]\ndisable = ["resume"]\n', "the resume plugin is off (disabled by"),
        (
            {},
            "[plugins.resume]\nenabled = false\n",
            "the resume store is disabled ([plugins.resume] enabled = false)",
        ),
    ],
)
async def test_resume_without_the_resume_service_fails_before_any_work_naming_why(
    make_shell: Any,
    output: Any,
    isolated_env: Path,
    env: dict[str, str],
    config: str,
    cause: str,
) -> None:
    copy_spec(isolated_env)
    calls = Calls()
    shell = await make_shell(plugins=[calls], config=FAST + config, env=env)
    assert await shell.execute(f"/spec-auto {DEMO} --resume") == 1
    assert f"--resume needs the resume store, but {cause}" in output.errors
    branch = f"{DEMO}-20261122062253-17eb0fcb"
    assert await shell.execute(f"/spec-plan {DEMO} {branch}") == 1
    assert f"branch {branch} needs the resume store, but {cause}" in output.errors
    assert "plan:" not in output.text and "run " not in output.text
    assert calls.count == 0  # nothing was paid for
    if "enabled = false" not in config:  # only the config setting may be blamed on it
        assert "enabled = false" not in output.errors
    # a fresh run without --resume still works without the store
    assert await shell.execute(f"/spec-plan {DEMO}") == 0


# -- 3. a near-miss branch id after --resume -------------------------------------------


@pytest.mark.parametrize(
    "word",
    [f"{DEMO}-2026112206225-17eb0fcb", f"{DEMO}-20261122062253-17EB0FCB"],
)
async def test_a_near_miss_branch_id_is_not_a_goal_word(
    make_shell: Any, output: Any, isolated_env: Path, word: str
) -> None:
    copy_spec(isolated_env)
    shell = await make_shell(config=FAST)
    assert await shell.execute(f"/spec-auto {DEMO} --resume {word}") == 1
    assert (
        f"/spec-auto: {word!r} is not a branch id (<SPEC-ID>-<YYYYMMDDHHMMSS>-<8 hex>"
    ) in output.errors
    assert "goal" not in output.errors


async def test_resume_with_a_goal_on_a_branch_without_one_reads_well(
    make_shell: Any, output: Any, isolated_env: Path
) -> None:
    copy_spec(isolated_env)
    shell = await make_shell(config=FAST)
    assert await shell.execute(f"/spec-plan {DEMO}") == 0
    branch = branch_of(output)
    assert await shell.execute(f"/spec-auto {DEMO} --resume {branch} a goal") == 1
    assert f"--resume continues {branch} (the branch has no goal), not 'a goal'" in output.errors
    assert "own no goal" not in output.errors


# -- 4. one usage line ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "usage"),
    [
        (f"/spec-auto {DEMO} --from plan --from unlock", SPEC_AUTO_USAGE),
        ("/spec-auto", SPEC_AUTO_USAGE),
        (f"/spec-auto {DEMO} --from", SPEC_AUTO_USAGE),
        (f"/spec-auto {DEMO} --resume=yes", SPEC_AUTO_USAGE),
        (f"/spec-auto {DEMO} --from bogus", SPEC_AUTO_USAGE),
        (f"/spec-auto {DEMO} --bogus", SPEC_AUTO_USAGE),
        (f"/spec-plan {DEMO} --consensus", stage_usage("plan")),
        (f"/spec-plan {DEMO} --resume --resume", stage_usage("plan")),
        (f"/spec-plan {DEMO} a b", stage_usage("plan")),
    ],
)
async def test_every_usage_error_prints_the_command_grammar(
    make_shell: Any, output: Any, isolated_env: Path, line: str, usage: str
) -> None:
    copy_spec(isolated_env)
    shell = await make_shell(config=FAST)
    assert await shell.execute(line) == 1
    lines = output.errors.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(f"; usage: {usage}"), lines


# -- 5. /history, /branches, /resume -------------------------------------------------


def history_row(text: str, run_id: str) -> list[str]:
    for line in text.splitlines():
        if run_id[:8] in line:
            return [c.strip() for c in re.split(r"[│|]", line) if c.strip()]
    raise AssertionError(f"no row for {run_id} in:\n{text}")


async def test_history_counts_and_tokens_match_json_and_the_stage_lines(
    make_shell: Any, output: Any, isolated_env: Path
) -> None:
    copy_spec(isolated_env)
    shell = await make_shell(config=FAST)
    assert await shell.execute("/faults set disconnect:1") == 0
    assert await shell.execute(f"/spec-plan {DEMO}") in (0, 3)  # one agent fails
    branch = branch_of(output)
    first = (await history(shell, output))["runs"][0]
    assert first["errors"] == 1 and first["calls"] > first["errors"]
    assert await shell.execute(f"/spec-plan {DEMO} --resume {branch}") in (0, 3)
    stage_line = output.text
    data = await history(shell, output)
    second = data["runs"][1]
    assert await shell.execute(f"/history {DEMO}") == 0
    table = output.text
    calls, failed = history_row(table, first["run_id"])[4], history_row(table, first["run_id"])[6]
    assert (int(calls), int(failed)) == (first["calls"], first["errors"])  # as --json says
    # the second run replayed the stored answers: its tokens are the ones it showed
    assert second["replayed"] > 0 and second["replayed_tokens"] > 0
    shown = second["tokens"] + second["replayed_tokens"]
    assert f"{shown:,} tok" in stage_line
    row = history_row(table, second["run_id"])
    assert f"{shown:,}" in row and "—" not in row


async def test_unknown_specs_are_errors_in_history_and_branches(
    make_shell: Any, output: Any, isolated_env: Path
) -> None:
    copy_spec(isolated_env)
    shell = await make_shell(config=FAST)
    for command in ("history", "branches"):
        assert await shell.execute(f"/{command} NOPE-1") == 1
        assert f"/{command}: no spec 'NOPE-1'" in output.errors
        assert await shell.execute(f"/{command} {DEMO}") == 0  # a known spec without runs
    assert f"no runs of {DEMO} yet" in output.text


async def test_resume_hint_keeps_from_for_a_root_branch_and_runs_verbatim(
    make_shell: Any, output: Any, isolated_env: Path
) -> None:
    copy_spec(isolated_env)
    shell = await make_shell(config=FAST)
    assert await shell.execute(f"/spec-auto {DEMO} --from validate") == 0
    branch = branch_of(output)
    clear(output)
    assert await shell.execute(f"/resume {DEMO}") == 0
    hint = f"continue with: /spec-auto {DEMO} --resume {branch} --from validate"
    assert hint in output.text
    clear(output)
    assert await shell.execute(hint.removeprefix("continue with: ")) == 0
    assert "plan:" not in output.text and "validate:" in output.text
    last = (await history(shell, output))["runs"][-1]
    assert last["replayed"] > 0 and last["calls"] == 0  # all replayed, none asked again


async def test_resume_does_not_suggest_a_command_that_is_off(
    make_shell: Any, output: Any, isolated_env: Path
) -> None:
    copy_spec(isolated_env)
    shell = await make_shell(config=FAST, env={"AGENTSHELL_DISABLE_PLUGINS": "consensus"})
    assert await shell.execute(f"/resume {DEMO}") == 1
    assert "no runs of" in output.errors and "/spec-auto" not in output.errors
    assert "consensus plugin" in output.errors


# -- 6. /faults after a clear ----------------------------------------------------------


async def test_faults_status_line_after_a_clear_says_cleared(make_shell: Any, output: Any) -> None:
    shell = await make_shell(config=FAST)
    assert await shell.execute("/faults set disconnect:2") == 0
    assert await shell.execute("/faults clear") == 0
    clear(output)
    assert await shell.execute("/faults") == 0
    assert "fault injection on (/faults set)\n" not in output.text
    assert "fault injection on (/faults set; counters cleared by /faults clear" in output.text
    assert await shell.execute("/faults set 429:1") == 0
    clear(output)
    assert await shell.execute("/faults") == 0
    assert "fault injection on (/faults set)\n" in output.text
