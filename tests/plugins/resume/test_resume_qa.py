"""QA regressions: the /resume preview of a stage cut short by a crash, and runs whose
process died shown as interrupted (on a real SQLite file, with a real dead process)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from speckit_resume.commands import branch_overview, resume_plan
from speckit_resume.store import OutputRecord, Store


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
