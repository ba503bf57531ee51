"""Resume hints, goals, secrets in the store and spec ids: every printed "continue with"
/ "resume with" line names its branch and is executed verbatim here, and the replays it
makes are counted; a goal stays with its branch and its secrets never reach the store or
an artefact; one spec-id rule and one usage line in both plugins. Real parts: the replay
backend with the recorded demo answers, the real SQLite resume store, the real command
parser. A test plugin holds one agent call open so a run can be cancelled mid-stage (as
Ctrl-C does)."""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agentshell import AgentCall, AgentResponse, hookimpl, register_secret
from tests.helpers.paths import REPO, without_demo_outputs
from tests.helpers.recordings import DEMO
from tests.helpers.speckit import clear, json_out

CONFLICT = "SPEC-KIT-CONFLICT"
CONFIG = (
    "[telemetry]\nsinks = []\n\n[retry]\nattempts = 1\n\n"
    '[plugins.resume]\npath = "resume.sqlite3"\n\n'
    "[plugins.consensus]\ndemo_latency_scale = 0\nevidence = true\n"
)
PLUGINS = "consensus,replay,resume"


class Calls:
    """Every finished agent call: (stage, agent, answered from the store, prompt)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool, str]] = []

    @hookimpl
    def after_agent_call(self, call: AgentCall, response: AgentResponse) -> None:
        stage = str(call.context.get("stage"))
        self.seen.append((stage, call.agent.name, response.cached, call.request.prompt))

    def cached(self) -> int:
        return sum(1 for s in self.seen if s[2])

    def live(self) -> list[tuple[str, str]]:
        """(stage, agent) of the backend calls, sorted: a stage's workers run concurrently."""
        return sorted((s[0], s[1]) for s in self.seen if not s[2])


class Hold:
    """Holds the first call of (stage, agent) open until the run is cancelled: the
    other calls of the stage (the workers, before the aggregator) have finished."""

    def __init__(self, stage: str, agent: str) -> None:
        self.target = (stage, agent)
        self.reached = asyncio.Event()
        self.armed = True

    @hookimpl
    async def before_agent_call(self, call: AgentCall) -> AgentResponse | None:
        if self.armed and (call.context.get("stage"), call.agent.name) == self.target:
            self.armed = False
            self.reached.set()
            await asyncio.Event().wait()  # until cancelled
        return None


@pytest.fixture
def project(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", PLUGINS)
    for spec in (DEMO, CONFLICT):
        shutil.copytree(
            REPO / "docs" / spec, isolated_env / "docs" / spec, ignore=without_demo_outputs
        )
    return isolated_env


def branch_of(text: str) -> str:
    found = re.findall(r"^run \w+ · branch (\S+)$", text, re.MULTILINE)
    assert found, text
    return str(found[-1])


def hint(text: str, kind: str = "continue with") -> str:
    found = re.findall(rf"{kind}: (.+)$", text, re.MULTILINE)
    assert len(found) == 1, text
    return str(found[0])


def artefacts(project: Path) -> list[Path]:
    """Every file a run writes: Markdown, evidence, telemetry and the store (with WAL)."""
    kinds = {".md", ".json", ".jsonl"}
    files = [p for p in project.rglob("*") if p.is_file() and p.suffix in kinds]
    return files + list(project.glob("resume.sqlite3*"))


async def cancel_while_held(shell: Any, line: str, hold: Hold) -> None:
    task = asyncio.create_task(shell.execute(line))
    await asyncio.wait_for(hold.reached.wait(), 30)  # a bound for a hang, not a timing check
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def history(shell: Any, output: Any, spec: str = DEMO) -> list[dict[str, Any]]:
    clear(output)
    assert await shell.execute(f"/history {spec} --json") == 0, output.errors
    runs: list[dict[str, Any]] = json_out(output)["runs"]
    clear(output)
    return runs


# -- the hint keeps the goal -----------------------------------------------------


async def test_cancelled_run_with_a_goal_resumes_with_it_and_replays(
    make_shell: Any, output: Any, project: Path
) -> None:
    calls, hold = Calls(), Hold("validate", "gpt_pro")
    shell = await make_shell(plugins=[calls, hold], config=CONFIG)
    await cancel_while_held(shell, f"/spec-auto {DEMO} ship the export feature", hold)
    branch = branch_of(output.text)
    again = hint(output.text)
    assert again == f"/spec-auto {DEMO} --resume {branch}"
    assert "cancelled at validate" in output.text
    calls.seen.clear()
    clear(output)
    assert await shell.execute(again) == 0, output.errors
    # plan 3 + tasks 3 + implement 4 + validate's 2 workers come from the store
    assert calls.cached() == 12
    assert calls.live() == sorted(
        [("validate", "gpt_pro")]
        + [(s, a) for s in ("audit", "unlock") for a in ("gemini", "claude", "gpt_pro")]
    )
    assert all("ship the export feature" in s[3] for s in calls.seen if not s[2])
    assert output.text.count("cached") >= 12
    last = (await history(shell, output))[-1]
    assert last["branch_id"] == branch and last["resumed"] and last["replayed"] == 12
    assert last["goal"] == "ship the export feature"

    # the same goal with --resume is the branch's own: accepted, everything replayed
    calls.seen.clear()
    assert await shell.execute(f"/spec-auto {DEMO} ship the export feature --resume") == 0
    assert calls.cached() == 19 and calls.live() == []
    # another goal with --resume is an error before anything runs
    before = len(await history(shell, output))
    assert await shell.execute(f"/spec-auto {DEMO} ship it faster --resume {branch}") == 1
    assert output.errors.count("\n") == 1
    assert "'ship the export feature'" in output.errors and "'ship it faster'" in output.errors
    assert len(await history(shell, output)) == before


# -- hints name the branch; --resume <branch-id> --------------------------------


async def test_resume_hint_continues_the_cancelled_branch_not_the_newest(
    make_shell: Any, output: Any, project: Path
) -> None:
    calls, hold = Calls(), Hold("audit", "gpt_pro")
    repl = await make_shell(plugins=[calls, hold], config=CONFIG)
    await cancel_while_held(repl, f"/spec-auto {DEMO}", hold)
    cancelled = branch_of(output.text)
    again = hint(output.text)
    assert again == f"/spec-auto {DEMO} --resume {cancelled}"
    # "another shell on the same project" runs a stage: its branch becomes the current one
    other = await make_shell(config=CONFIG)
    clear(output)
    assert await other.execute(f"/spec-plan {DEMO}") == 0, output.errors
    newest = branch_of(output.text)
    assert newest != cancelled
    # /resume of the cancelled branch prints the same explicit line
    clear(output)
    assert await repl.execute(f"/resume {DEMO} {cancelled}") == 0, output.errors
    assert hint(output.text) == again
    calls.seen.clear()
    clear(output)
    assert await repl.execute(again) == 0, output.errors
    # plan 3, tasks 3, implement 4, validate 3 and audit's 2 workers are replayed
    assert calls.cached() == 15
    assert calls.live() == sorted(
        [("audit", "gpt_pro")] + [("unlock", a) for a in ("gemini", "claude", "gpt_pro")]
    )
    last = (await history(repl, output))[-1]
    assert last["branch_id"] == cancelled and last["replayed"] == 15


async def test_resume_with_a_branch_id_of_another_run_and_bad_branch_ids(
    make_shell: Any, output: Any, project: Path
) -> None:
    calls = Calls()
    shell = await make_shell(plugins=[calls], config=CONFIG)
    assert await shell.execute(f"/spec-auto {CONFLICT}") == 3
    first = branch_of(output.text)
    assert await shell.execute(f"/spec-auto {CONFLICT}") == 3
    assert branch_of(output.text) != first
    calls.seen.clear()
    clear(output)
    # the branch id is the branch, not goal words; the other (current) branch is untouched
    assert await shell.execute(f"/spec-auto {CONFLICT} --resume {first}") == 3
    assert branch_of(output.text) == first
    assert calls.live() == [] and calls.cached() == 16  # plan..audit, all stored
    last = (await history(shell, output, CONFLICT))[-1]
    assert last["branch_id"] == first and last["goal"] is None and last["replayed"] == 16
    runs = len(await history(shell, output, CONFLICT))
    demo_branch = f"{DEMO}-20260101000000-0123abcd"
    for line, message in (
        (f"/spec-auto {CONFLICT} --resume {demo_branch}", f"a branch of {DEMO}, not of"),
        (f"/spec-auto {CONFLICT} --resume {CONFLICT}-20990101000000-deadbeef", "no branch"),
        (f"/spec-auto {CONFLICT} {first}", "goes with --resume"),
        (f"/spec-auto {CONFLICT} --resume {first} {first}", "one branch id"),
        (f"/spec-audit {CONFLICT} not-a-branch --resume", "is not a branch id"),
    ):
        clear(output)
        assert await shell.execute(line) == 1, line
        assert message in output.errors and output.errors.count("\n") == 1, output.errors
    assert len(await history(shell, output, CONFLICT)) == runs


async def test_cancelled_single_stage_resumes_its_finished_calls(
    make_shell: Any, output: Any, project: Path
) -> None:
    calls, hold = Calls(), Hold("validate", "gpt_pro")
    shell = await make_shell(plugins=[calls, hold], config=CONFIG)
    hold.armed = False
    assert await shell.execute(f"/spec-auto {DEMO}") == 0, output.errors
    hold.armed = True
    clear(output)
    await cancel_while_held(shell, f"/spec-validate {DEMO}", hold)
    branch = branch_of(output.text)
    again = hint(output.text)
    assert again == f"/spec-validate {DEMO} --resume {branch}"
    calls.seen.clear()
    clear(output)
    assert await shell.execute(again) == 0, output.errors
    assert calls.cached() == 2 and calls.live() == [("validate", "gpt_pro")]
    assert "▶ audit" not in output.text
    last = (await history(shell, output))[-1]
    assert last["branch_id"] == branch and last["replayed"] == 2


# -- a halted single stage's hint re-runs just that stage ------------------------


async def test_halt_hints_name_the_branch_and_rerun_only_what_they_say(
    make_shell: Any, output: Any, project: Path
) -> None:
    calls = Calls()
    shell = await make_shell(plugins=[calls], config=CONFIG)
    assert await shell.execute(f"/spec-auto {CONFLICT} the goal") == 3
    root = branch_of(output.text)
    auto_hint = hint(output.text, "resume with")
    assert auto_hint == f"/spec-auto {CONFLICT} --from audit {root}"
    clear(output)
    calls.seen.clear()
    assert await shell.execute(auto_hint) == 3  # the recordings still disagree
    child = branch_of(output.text)
    # a child of the halted branch: audit is asked again (not replayed), with the goal
    assert calls.live() == sorted(("audit", a) for a in ("gemini", "claude", "gpt_pro"))
    assert all("the goal" in s[3] for s in calls.seen)
    clear(output)
    assert await shell.execute(f"/branches {CONFLICT} --json") == 0
    tree = {b["branch_id"]: b for b in json_out(output)["branches"]}
    assert tree[child]["parent_branch_id"] == root and tree[child]["fork_stage"] == "audit"

    clear(output)
    calls.seen.clear()
    assert await shell.execute(f"/spec-audit {CONFLICT}") == 3
    single = branch_of(output.text)
    stage_hint = hint(output.text, "resume with")
    assert stage_hint == f"/spec-audit {CONFLICT} {single}"
    clear(output)
    calls.seen.clear()
    assert await shell.execute(stage_hint) == 3
    assert [s for s, _ in calls.live()] == ["audit"] * 3  # just that stage, not six
    assert "▶ unlock" not in output.text


# -- no secret of the goal reaches the store or an artefact ----------------------


async def test_goal_secrets_are_redacted_everywhere_and_resume_still_matches(
    make_shell: Any, output: Any, project: Path
) -> None:
    registered = "QAreg-7f3a9c51e2"
    register_secret(registered)
    secrets = ("sk-proj-QAsecret0123456789abcdef", "hunter2", registered)
    goal = f"goal {secrets[0]} password={secrets[1]} and {registered}"
    calls = Calls()
    shell = await make_shell(plugins=[calls], config=CONFIG)
    assert await shell.execute(f"/spec-plan {DEMO} --consensus '{goal}'") == 0, output.errors
    branch = branch_of(output.text)
    assert len(calls.live()) == 3
    # not even the agents are sent the secrets
    assert all("****" in s[3] and not any(x in s[3] for x in secrets) for s in calls.seen)
    db = sqlite3.connect(project / "resume.sqlite3")
    try:
        goals = [
            r[0] for r in db.execute("SELECT goal FROM runs UNION ALL SELECT goal FROM branches")
        ]
    finally:
        db.close()
    assert goals and all("****" in g and not any(x in g for x in secrets) for g in goals)
    files = artefacts(project)
    assert any("_synthesis.json" in p.name for p in files)
    for path in files:
        data = path.read_bytes()
        assert not any(x.encode() in data for x in secrets), path
    # the same goal, typed again with --resume, is the stored one: all three replayed
    calls.seen.clear()
    clear(output)
    line = f"/spec-plan {DEMO} --resume {branch} --consensus '{goal}'"
    assert await shell.execute(line) == 0, output.errors
    assert calls.cached() == 3 and calls.live() == []


# -- one spec-id rule in both plugins --------------------------------------------


async def test_one_spec_id_rule_and_one_clean_line(
    make_shell: Any, output: Any, project: Path
) -> None:
    from speckit_consensus import specid
    from speckit_resume import branches

    assert branches.check_spec_id is specid.check_spec_id
    shell = await make_shell(config=CONFIG)
    longest = "S" + "x" * 127
    (project / "docs" / longest).mkdir()
    shutil.copy(project / "docs" / DEMO / "spec.md", project / "docs" / longest / "spec.md")
    # 128 characters: accepted by both plugins (no recording for it, so the stage fails)
    assert await shell.execute(f"/spec-plan {longest}") == 3
    assert "bug" not in output.errors and "ValueError" not in output.errors
    assert branch_of(output.text).startswith(f"{longest}-")
    assert await shell.execute(f"/branches {longest}") == 0, output.errors
    too_long = longest + "x"
    for bad in (too_long, "_starts-badly", "a..b"):
        for line in (
            f"/spec-plan {bad}",
            f"/spec-auto {bad}",
            f"/branches {bad}",
            f"/history {bad}",
            f"/resume {bad}",
        ):
            clear(output)
            assert await shell.execute(line) == 1, line
            assert output.errors.count("\n") == 1, output.errors
            assert "invalid spec id" in output.errors
            assert (
                "start with a letter or digit" in output.errors and "at most 128" in output.errors
            )
            assert "bug" not in output.errors


# -- usage lines agree; a repeated option is an error ---------------------------


async def test_branches_usage_and_repeated_options(
    make_shell: Any, output: Any, project: Path
) -> None:
    shell = await make_shell(config=CONFIG)
    usage = "usage: /branches <SPEC-ID> [prune --keep N] [--json]"
    for line in (
        "/branches",
        f"/branches {DEMO} explode",
        f"/branches {DEMO} prune",
        f"/branches {DEMO} --keep 2",
        f"/branches {DEMO} --json --json",
    ):
        clear(output)
        assert await shell.execute(line) == 1, line
        assert output.errors.rstrip().endswith(usage), output.errors
    docs = (REPO / "docs" / "resume.md").read_text(encoding="utf-8")
    assert f"`{usage}`" in docs
    for line, option in (
        (f"/spec-auto {DEMO} --from plan --from unlock", "--from"),
        (f"/spec-plan {DEMO} --consensus a --consensus b", "--consensus"),
    ):
        clear(output)
        assert await shell.execute(line) == 1, line
        assert f"{option} given twice" in output.errors
    assert await history(shell, output) == []  # nothing ran
