"""Two processes on one store at once (two shells on the same project): every output
is committed, none is lost, nobody sees "database is locked", the file stays sound."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from speckit_resume.migrations import MIGRATIONS

pytestmark = pytest.mark.e2e

WRITER = r"""
import json, os, sys, time
from pathlib import Path
from speckit_resume.store import OutputRecord, Store

path, go, name, count = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
store = Store(path)  # both processes also race through migrations here
run = store.begin_run(spec_id="SPEC-CC", goal=name, from_stage=None, resume=False)
print(json.dumps({"ready": run.branch_id}), flush=True)
while not go.exists():
    time.sleep(0.001)
errors = 0
for i in range(count):
    stage = ("plan", "tasks", "implement")[i % 3]
    record = OutputRecord(run_id=run.run_id, branch_id=run.branch_id, spec_id="SPEC-CC",
                          stage=stage, agent=f"{name}-{i}", prompt_hash=f"h{i}",
                          content=f"{name} output {i}", usage={"total_tokens": i})
    store.add_output(record)  # one short transaction each, as after_agent_call does
    found = store.find_output(spec_id="SPEC-CC", branch_id=run.branch_id, stage=stage,
                              agent=f"{name}-{i}", prompt_hash=f"h{i}")
    errors += found is None or found.content != f"{name} output {i}"
    if i % 25 == 0:
        store.add_stage_result(run_id=run.run_id, branch_id=run.branch_id, spec_id="SPEC-CC",
                               stage=stage, status="ok", agreements=[], conflicts=[],
                               synthesis_path=None)
store.finish_run(run.run_id, "ok")
print(json.dumps({"done": count, "read_errors": errors}), flush=True)
"""


def test_two_processes_write_the_same_store(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    db = tmp_path / "shared" / "resume.sqlite3"
    go = tmp_path / "go"
    count = 150
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(db), str(go), name, str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for name in ("left", "right")
    ]
    try:
        for proc in procs:  # both opened the store and started a run
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            assert "ready" in json.loads(line)
        go.touch()  # now both write at once
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            assert "locked" not in err
            results.append(json.loads(out.splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert results == [{"done": count, "read_errors": 0}] * 2

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        per_writer = dict(
            conn.execute(
                "SELECT b.goal, COUNT(*) FROM agent_outputs o JOIN branches b"
                " ON b.branch_id = o.branch_id GROUP BY b.goal"
            ).fetchall()
        )
        assert per_writer == {"left": count, "right": count}
        agents = {r[0] for r in conn.execute("SELECT agent FROM agent_outputs")}
        assert agents == {f"{n}-{i}" for n in ("left", "right") for i in range(count)}
        assert conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone() == (
            len(MIGRATIONS),
        )
        assert conn.execute("SELECT status FROM runs").fetchall() == [("ok",), ("ok",)]
    finally:
        conn.close()


def test_a_long_writer_makes_the_other_wait_not_fail(tmp_path: Path) -> None:
    """Another process holds the write lock for a while (well under busy_timeout):
    our write waits for it instead of raising "database is locked"."""
    from speckit_resume.store import OutputRecord, Store

    db = tmp_path / "resume.sqlite3"
    store = Store(db)
    run = store.begin_run(spec_id="SPEC-W", goal=None, from_stage=None, resume=False)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "c.execute(\"INSERT INTO branches VALUES ('SPEC-W-20000101000000-0000abcd',"
            " 'SPEC-W', NULL, NULL, 'holder', 0)\")\n"
            "print('locked', flush=True)\n"
            "time.sleep(0.5)\n"
            "c.execute('COMMIT')\n",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        store.add_output(
            OutputRecord(
                run_id=run.run_id,
                branch_id=run.branch_id,
                spec_id="SPEC-W",
                stage="plan",
                agent="a",
                prompt_hash="h",
                content="x",
            )
        )
        # our write went through only after the holder's transaction committed
        assert store.spec_of("SPEC-W-20000101000000-0000abcd") == "SPEC-W"
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert (
        store.find_output(
            spec_id="SPEC-W", branch_id=run.branch_id, stage="plan", agent="a", prompt_hash="h"
        )
        is not None
    )
    store.close()
