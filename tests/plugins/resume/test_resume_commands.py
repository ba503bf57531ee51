"""/resume, /history and /branches: the /resume preview of a stage cut short by a crash
lists every call, runs whose process died show as interrupted, counts and tokens in
/history match --json and the stage lines, unknown specs are errors, the printed
resume hint runs verbatim and never suggests a command that is off, prune speaks of
branches. Real parts only: a real SQLite file, a real dead process, the replay backend
with the recorded demo answers."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from speckit_resume.commands import branch_overview, resume_plan
from speckit_resume.store import OutputRecord, Store
from tests.helpers.recordings import DEMO
from tests.helpers.speckit import FAST, branch_of, clear, copy_spec, history


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "resume.sqlite3")
    yield s
    s.close()


def _put(store: Store, run: dict[str, str], stage: str, agent: str, role: str) -> None:
    store.add_output(
        OutputRecord(
            run_id=run["run_id"],
            branch_id=run["branch_id"],
            spec_id=run["spec_id"],
            stage=stage,
            agent=agent,
            role=role,
            prompt_hash=f"{stage}-{agent}",
            content="{}",
            usage={"total_tokens": 3},
        )
    )


ROLES = {"gemini": "researcher", "claude": "synthesizer", "gpt_pro": "aggregator"}


def _crashed_in_tasks(store: Store) -> dict[str, str]:
    """plan complete; tasks cut short after claude (a worker) answered."""
    run = store.begin_run(spec_id="SPEC-1", goal=None, from_stage=None, resume=False).model_dump()
    for agent, role in ROLES.items():
        _put(store, run, "plan", agent, role)
    _put(store, run, "tasks", "claude", "synthesizer")
    return run


def _roster(stage: str) -> tuple[list[str], str | None]:
    return ["gemini", "claude"], "gpt_pro"


@pytest.mark.parametrize("roster", [_roster, None], ids=["roster", "stored-roles"])
def test_preview_of_a_partially_stored_stage_lists_every_call(store: Store, roster: object) -> None:
    run = _crashed_in_tasks(store)
    plan = {p["stage"]: p for p in resume_plan(store, "SPEC-1", run["branch_id"], roster)}  # type: ignore[arg-type]
    assert plan["plan"]["rerun"] == []
    assert [r["agent"] for r in plan["plan"]["reuse"]] == ["claude", "gemini", "gpt_pro"]
    tasks = plan["tasks"]
    assert [r["agent"] for r in tasks["reuse"]] == ["claude"]
    if roster is not None:  # the roster knows gemini, which was never called
        assert tasks["rerun"] == ["gemini", "gpt_pro"]
    else:  # without one, only the called agents are known: the aggregator still runs
        assert tasks["rerun"] == ["gpt_pro"]


def test_aggregator_runs_when_a_worker_runs_even_if_its_answer_is_stored(store: Store) -> None:
    run = _crashed_in_tasks(store)
    _put(store, run, "tasks", "gpt_pro", "aggregator")  # stored, but its input will change
    plan = {p["stage"]: p for p in resume_plan(store, "SPEC-1", run["branch_id"], _roster)}
    assert plan["tasks"]["rerun"] == ["gemini", "gpt_pro"]
    assert [r["agent"] for r in plan["tasks"]["reuse"]] == ["claude"]


async def test_resume_command_shows_the_calls(make_shell: object, output: object) -> None:
    shell = await make_shell(plugins=[], config="")  # type: ignore[operator]
    service = shell.state["speckit.resume"]
    run = _crashed_in_tasks(service.store)
    shell.state["speckit.consensus.roster"] = _roster
    assert await shell.execute("/resume SPEC-1") == 0
    text = output.text  # type: ignore[attr-defined]
    line = next(ln for ln in text.splitlines() if ln.strip().startswith(("tasks", "│ tasks")))
    assert "gemini, gpt_pro (aggregator)" in line
    assert "no calls" not in line
    assert run["branch_id"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: os.kill(pid, 0) raises ProcessLookupError
    return proc.pid


def test_a_run_whose_process_died_shows_as_interrupted(store: Store) -> None:
    dead = store.begin_run(spec_id="SPEC-1", goal=None, from_stage=None, resume=False)
    alive = store.begin_run(spec_id="SPEC-2", goal=None, from_stage=None, resume=False)
    with store.write() as conn:
        conn.execute("UPDATE runs SET pid = ? WHERE run_id = ?", (_dead_pid(), dead.run_id))
    # no new run of the spec yet: the views already tell the truth
    assert [r.status for r in store.runs("SPEC-1")] == ["interrupted"]
    assert [r.status for r in store.runs("SPEC-2")] == ["running"]  # this process: alive
    overview = branch_overview(store, "SPEC-1")
    assert overview["branches"][0]["last_status"] == "interrupted"
    assert store.branch_runs(alive.branch_id) == (1, "running")
    # and a new run of the spec records it in the store
    store.begin_run(spec_id="SPEC-1", goal=None, from_stage=None, resume=True)
    raw = store.query("SELECT status FROM runs WHERE run_id = ?", (dead.run_id,))
    assert raw[0][0] == "interrupted"


async def test_prune_says_branches(make_shell: object, output: object) -> None:
    shell = await make_shell(plugins=[], config="")  # type: ignore[operator]
    store = shell.state["speckit.resume"].store
    for _ in range(3):
        store.begin_run(spec_id="SPEC-1", goal=None, from_stage=None, resume=False)
    assert await shell.execute("/branches SPEC-1 prune --keep 5") == 0
    assert await shell.execute("/branches SPEC-1 prune --keep 2") == 0
    assert await shell.execute("/branches SPEC-1 prune --keep 1") == 0
    text = output.text  # type: ignore[attr-defined]
    assert "pruned 0 branches of SPEC-1 (0 outputs)" in text
    assert "pruned 1 branch of SPEC-1" in text
    assert "branchs" not in text


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
