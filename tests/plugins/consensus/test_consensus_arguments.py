"""The stage commands' arguments: a branch id after ``--consensus`` is an error, not a
goal; ``--resume`` or a branch id without the resume store fails before any work and
says why; a near-miss branch id is not a goal word; every usage error prints the
command's grammar. Real parts only: the replay backend with the recorded demo answers
and the real plugin host (plugins disabled the ways a user disables them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentshell import AgentCall, hookimpl
from speckit_consensus.commands import SPEC_AUTO_USAGE, stage_usage
from tests.helpers.recordings import DEMO
from tests.helpers.speckit import FAST, copy_spec, history


class Calls:
    """A test plugin: counts the agent calls that reach the backend hooks."""

    __name__ = "counting_calls"

    def __init__(self) -> None:
        self.count = 0

    @hookimpl
    def before_agent_call(self, call: AgentCall) -> None:
        self.count += 1


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
