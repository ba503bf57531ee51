"""The resume store: schema and migrations, the branch rules of begin_run, the
inheritance rule of the lookup, validation marks and pruning — on a real SQLite file."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from speckit_resume.branches import STAGES, eligible_branches, normalize_stage, parse_branch_id
from speckit_resume.migrations import LATEST, MIGRATIONS
from speckit_resume.store import OutputRecord, Store, StoreError

BRANCH_RE = re.compile(r"^SPEC-1-\d{14}-[0-9a-f]{8}$")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "resume.sqlite3")
    yield s
    s.close()


def put(
    store: Store,
    run: dict[str, str],
    stage: str,
    agent: str = "a1",
    *,
    h: str = "h",
    content: str | None = None,
) -> int:
    return store.add_output(
        OutputRecord(
            run_id=run["run_id"],
            branch_id=run["branch_id"],
            spec_id=run["spec_id"],
            stage=stage,
            agent=agent,
            prompt_hash=h,
            content=content or f"{stage}@{run['branch_id']}",
            usage={"total_tokens": 7},
        )
    )


def find(
    store: Store, branch: str, stage: str, agent: str = "a1", h: str = "h", spec: str = "SPEC-1"
) -> str | None:
    found = store.find_output(
        spec_id=spec, branch_id=branch, stage=stage, agent=agent, prompt_hash=h
    )
    return None if found is None else found.content


def start(store: Store, **kw: object) -> dict[str, str]:
    args: dict[str, object] = {
        "spec_id": "SPEC-1",
        "goal": None,
        "from_stage": None,
        "resume": False,
    }
    args.update(kw)
    return store.begin_run(**args).model_dump()  # type: ignore[arg-type]


# -- schema ---------------------------------------------------------------------------


def test_pragmas_and_schema(store: Store) -> None:
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    assert store.query("PRAGMA foreign_keys")[0][0] == 1
    assert store.query("PRAGMA busy_timeout")[0][0] == 5000
    assert store.query("PRAGMA user_version")[0][0] == LATEST
    assert store.schema_versions() == [m.version for m in MIGRATIONS]
    tables = {r[0] for r in store.query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"branches", "runs", "agent_outputs", "stage_results", "schema_migrations"} <= tables
    assert store.integrity_check() == "ok"


def test_migrations_are_idempotent_and_incremental(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    first = Store(path, migrations=MIGRATIONS[:1])
    assert first.schema_versions() == [1]
    first.close()
    upgraded = Store(path)
    assert upgraded.schema_versions() == [m.version for m in MIGRATIONS]
    assert upgraded.migrate() == []  # again: nothing to do
    indexes = {r[0] for r in upgraded.query("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "agent_outputs_resume" in indexes
    upgraded.close()
    again = Store(path)
    assert again.schema_versions() == [m.version for m in MIGRATIONS]
    assert again.query("SELECT COUNT(*) FROM schema_migrations")[0][0] == len(MIGRATIONS)
    again.close()


def test_newer_schema_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "n.sqlite3"
    Store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    with pytest.raises(StoreError, match="schema version 99, newer"):
        Store(path)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="resume store"):
        Store(path)
    assert path.read_bytes() == b"this is not sqlite" * 100  # nothing lost


def test_resume_lookup_is_an_index_lookup(store: Store) -> None:
    plan = store.query(
        "EXPLAIN QUERY PLAN " + store._LOOKUP.format(valid="AND valid IS NOT 0"),
        ("b", "plan", "a", "h"),
    )
    detail = " ".join(str(r["detail"]) for r in plan)
    assert "USING INDEX agent_outputs_resume" in detail
    assert "TEMP B-TREE" not in detail  # ORDER BY id DESC comes from the index


# -- begin_run rules -----------------------------------------------------------------


def test_branch_rules(store: Store) -> None:
    root = start(store)
    assert BRANCH_RE.match(root["branch_id"]) and parse_branch_id(root["branch_id"])
    assert root["parent_branch_id"] is None and root["fork_stage"] is None

    resumed = start(store, resume=True)
    assert resumed["branch_id"] == root["branch_id"]
    assert resumed["run_id"] != root["run_id"] and resumed["resumed"]

    child = start(store, from_stage="implement")
    assert child["branch_id"] != root["branch_id"]
    assert child["parent_branch_id"] == root["branch_id"]
    assert child["fork_stage"] == "implement"

    # the child is now current: a resume continues it, a new --from forks from it
    assert start(store, resume=True)["branch_id"] == child["branch_id"]
    grandchild = start(store, from_stage="validate")
    assert grandchild["parent_branch_id"] == child["branch_id"]

    fresh = start(store)
    assert fresh["parent_branch_id"] is None and fresh["branch_id"] not in {
        root["branch_id"],
        child["branch_id"],
        grandchild["branch_id"],
    }


def test_from_stage_without_an_earlier_branch_is_a_root(store: Store) -> None:
    run = start(store, spec_id="SPEC-2", from_stage="tasks")
    assert run["parent_branch_id"] is None and run["fork_stage"] is None
    assert start(store, spec_id="SPEC-3", resume=True)["resumed"] is False


def test_crashed_runs_become_interrupted(store: Store) -> None:
    dead = start(store)
    alive = start(store)  # this process: alive
    elsewhere = start(store)
    with store.write() as conn:  # as if its process had died / run on another machine
        conn.execute("UPDATE runs SET pid = 999999999 WHERE run_id = ?", (dead["run_id"],))
        conn.execute(
            "UPDATE runs SET host = 'other-host', pid = 1 WHERE run_id = ?", (elsewhere["run_id"],)
        )
    start(store, from_stage="plan")  # any new run of the spec tidies up
    statuses = {r.run_id: r.status for r in store.runs("SPEC-1")}
    assert statuses[dead["run_id"]] == "interrupted"
    assert statuses[alive["run_id"]] == "running"
    assert statuses[elsewhere["run_id"]] == "running"


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown stage"):
        normalize_stage("deploy")
    assert normalize_stage("spec-plan") == "plan"


def test_finish_run_validates_status(store: Store) -> None:
    run = start(store)
    with pytest.raises(ValueError, match="run status"):
        store.finish_run(run["run_id"], "great")
    store.finish_run(run["run_id"], "halted")
    assert store.runs("SPEC-1")[0].status == "halted"


# -- the inheritance rule ------------------------------------------------------------


def test_parallel_branches_never_see_each_other(store: Store) -> None:
    a = start(store)
    b = start(store)  # a second root of the same spec
    for stage in STAGES:
        put(store, a, stage)
    for stage in STAGES:
        assert find(store, a["branch_id"], stage) == f"{stage}@{a['branch_id']}"
        assert find(store, b["branch_id"], stage) is None
    put(store, b, "plan")
    assert find(store, a["branch_id"], "plan") == f"plan@{a['branch_id']}"
    assert find(store, b["branch_id"], "plan") == f"plan@{b['branch_id']}"


def test_children_inherit_exactly_the_stages_before_each_fork(store: Store) -> None:
    root = start(store)
    child = start(store, from_stage="implement")  # parent: root, fork at implement
    grand = start(store, from_stage="audit")  # parent: child, fork at audit
    start(store, resume=True, branch_id=root["branch_id"])  # make root current again
    sibling = start(store, from_stage="tasks")  # a second child of root
    assert child["parent_branch_id"] == root["branch_id"]
    assert grand["parent_branch_id"] == child["branch_id"]
    assert sibling["parent_branch_id"] == root["branch_id"]
    R, C, G = root["branch_id"], child["branch_id"], grand["branch_id"]
    for stage in STAGES:
        put(store, root, stage)
        put(store, child, stage, agent="c-only")
        put(store, sibling, stage)
        put(store, sibling, stage, agent="c-only")

    # the child sees only the root's stages before its fork
    assert {s: find(store, C, s) for s in STAGES} == {
        "plan": f"plan@{R}",
        "tasks": f"tasks@{R}",
        "implement": None,
        "validate": None,
        "audit": None,
        "unlock": None,
    }
    # the grandchild: plan/tasks from the grandparent (before both forks), nothing of the
    # root's at/after the child's fork, nothing at/after its own fork
    assert {s: find(store, G, s) for s in STAGES} == {
        "plan": f"plan@{R}",
        "tasks": f"tasks@{R}",
        "implement": None,
        "validate": None,
        "audit": None,
        "unlock": None,
    }
    assert {s: find(store, G, s, agent="c-only") for s in STAGES} == {
        "plan": f"plan@{C}",
        "tasks": f"tasks@{C}",
        "implement": f"implement@{C}",
        "validate": f"validate@{C}",
        "audit": None,
        "unlock": None,
    }
    # the nearest branch wins
    for stage in STAGES:
        put(store, child, stage)
    assert {s: find(store, G, s) for s in STAGES} == {
        "plan": f"plan@{C}",
        "tasks": f"tasks@{C}",
        "implement": f"implement@{C}",
        "validate": f"validate@{C}",
        "audit": None,
        "unlock": None,
    }
    put(store, grand, "plan")
    assert find(store, G, "plan") == f"plan@{G}"
    # the sibling's outputs never show through, and it sees only the root's plan
    assert {s: find(store, sibling["branch_id"], s) for s in STAGES} == {
        s: f"{s}@{sibling['branch_id']}" for s in STAGES
    }
    assert find(store, G, "tasks", agent="c-only") == f"tasks@{C}"
    assert eligible_branches(G, "plan", store.lineage) == [G, C, R]
    assert eligible_branches(G, "implement", store.lineage) == [G, C]
    assert eligible_branches(G, "audit", store.lineage) == [G]
    assert eligible_branches(sibling["branch_id"], "plan", store.lineage) == [
        sibling["branch_id"],
        R,
    ]
    assert eligible_branches(sibling["branch_id"], "tasks", store.lineage) == [sibling["branch_id"]]


def test_lookup_keys(store: Store) -> None:
    run = start(store)
    put(store, run, "plan", agent="a1", h="h1")
    branch = run["branch_id"]
    assert find(store, branch, "plan", h="h1") is not None
    assert find(store, branch, "plan", h="h2") is None  # another prompt
    assert find(store, branch, "plan", agent="a2", h="h1") is None  # another agent
    assert find(store, branch, "tasks", h="h1") is None  # another stage
    assert find(store, branch, "plan", h="h1", spec="SPEC-9") is None  # another spec
    assert find(store, "SPEC-1-20000101000000-deadbeef", "plan", h="h1") is None


def test_errors_and_invalid_outputs_are_not_reused(store: Store) -> None:
    run = start(store)
    branch = run["branch_id"]
    store.add_output(
        OutputRecord(
            run_id=run["run_id"],
            branch_id=branch,
            spec_id="SPEC-1",
            stage="plan",
            agent="a1",
            prompt_hash="h",
            status="error",
            error="boom",
        )
    )
    assert find(store, branch, "plan") is None
    put(store, run, "plan", content="first")
    assert find(store, branch, "plan") == "first"
    assert store.set_validation(
        spec_id="SPEC-1",
        branch_id=branch,
        stage="plan",
        agent="a1",
        prompt_hash="h",
        valid=False,
        error="missing field",
    )
    assert find(store, branch, "plan") is None
    put(store, run, "plan", content="second")
    assert find(store, branch, "plan") == "second"
    # an inherited output can be marked invalid from the child, and is then not reused
    child = start(store, from_stage="tasks")
    assert find(store, child["branch_id"], "plan") == "second"
    store.set_validation(
        spec_id="SPEC-1",
        branch_id=child["branch_id"],
        stage="plan",
        agent="a1",
        prompt_hash="h",
        valid=False,
        error="x",
    )
    assert find(store, child["branch_id"], "plan") is None


# -- pruning -------------------------------------------------------------------------


def test_prune_keeps_the_newest_their_ancestors_and_the_current(store: Store) -> None:
    old = start(store)
    put(store, old, "plan")
    other = start(store)
    put(store, other, "plan")
    child = start(store, from_stage="tasks")  # child of `other`
    put(store, child, "tasks")
    deleted, outputs = store.prune("SPEC-1", keep=1)
    assert deleted == [old["branch_id"]] and outputs == 1
    remaining = [b.branch_id for b in store.branches("SPEC-1")]
    assert remaining == [other["branch_id"], child["branch_id"]]
    assert find(store, child["branch_id"], "plan") == f"plan@{other['branch_id']}"
    assert store.query("PRAGMA foreign_key_check") == []
    assert (
        store.query("SELECT COUNT(*) FROM runs WHERE branch_id = ?", (old["branch_id"],))[0][0] == 0
    )
    assert store.prune("SPEC-1", keep=1) == ([], 0)
    with pytest.raises(ValueError, match="at least 1"):
        store.prune("SPEC-1", keep=0)
    assert store.integrity_check() == "ok"
