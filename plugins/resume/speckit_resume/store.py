"""The SQLite store: connection setup, migrations, every write, and the resume lookup.

Why it looks like this:
- WAL + ``busy_timeout``: readers never block the writer and two shells on one file
  wait for each other instead of failing with "database is locked".
- Every write is one short ``BEGIN IMMEDIATE`` transaction (the write lock is taken up
  front, so a read-then-write never deadlocks); BEGIN is retried on SQLITE_BUSY.
- ``synchronous=FULL`` by default: a committed output survives a power cut, not only a
  killed process.
- One connection per store, shared by the event loop and worker threads under a lock.
"""

from __future__ import annotations

import json
import os
import random
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from .branches import ancestors, eligible_branches, new_branch_id
from .migrations import MIGRATIONS, Migration
from .models import RUN_STATUSES, OutputRecord, RunStart, StoredOutput, StoreError
from .reports import Reports, process_gone

_BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_OUTPUT_COLUMNS = (
    "run_id, branch_id, spec_id, stage, agent, model, role, prompt_hash, prompt_version,"
    " content, parsed, usage, total_tokens, cost_usd, latency_ms, attempts, status, error,"
    " created_at"
)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _BUSY_CODES
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), default=str)


class Store(Reports):
    """One SQLite file. Thread-safe; every method is a short transaction or a read."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_ms: int = 5000,
        synchronous: str = "FULL",
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(
                path,
                timeout=busy_timeout_ms / 1000,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the resume store {path}: {exc}") from None
        self._conn = conn
        self._lock = threading.RLock()
        self._lineage: dict[str, tuple[str | None, str | None]] = {}
        self._spec_of: dict[str, str] = {}
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            mode = self._retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
            if mode is None or str(mode[0]).lower() != "wal":
                raise StoreError(f"{path}: cannot switch the resume store to WAL mode")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            # after a big transaction the WAL file is cut back instead of staying that size
            conn.execute("PRAGMA journal_size_limit = 67108864")
            self.migrate(migrations)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"resume store {path}: {exc}") from None
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- transactions --------------------------------------------------------------

    def _retry(self, action: Any) -> Any:
        """Run ``action``; on SQLITE_BUSY (after the busy handler gave up) wait and retry,
        for at most three busy timeouts in total."""
        deadline = time.monotonic() + 3 * max(self.busy_timeout_ms, 100) / 1000
        delay = 0.005
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(random.uniform(0, delay))
            delay = min(delay * 2, 0.25)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction, holding the write lock from the start."""
        with self._lock:
            conn = self._conn
            self._retry(lambda: conn.execute("BEGIN IMMEDIATE"))
            try:
                yield conn
                self._retry(lambda: conn.execute("COMMIT"))
            except BaseException:
                # SQLite may already have rolled back (disk full); a failing ROLLBACK
                # must not hide the error that caused it
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cursor = self._conn.cursor()
            cursor.row_factory = sqlite3.Row
            rows: list[sqlite3.Row] = self._retry(lambda: cursor.execute(sql, params).fetchall())
            return rows

    def migrate(self, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
        """Apply the migrations not yet applied; return their numbers. Safe to call again
        and from two processes at once (the check runs inside the write transaction)."""
        applied: list[int] = []
        known = max((m.version for m in migrations), default=0)
        with self.write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            newer = [v for v in done if v > known]
            if newer:
                raise StoreError(
                    f"{self.path} has schema version {max(newer)}, newer than this agentshell "
                    f"knows ({known}); upgrade agentshell or use another resume path"
                )
            for migration in sorted(migrations, key=lambda m: m.version):
                if migration.version in done:
                    continue
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )
                applied.append(migration.version)
            conn.execute(f"PRAGMA user_version = {int(known)}")
        return applied

    def schema_versions(self) -> list[int]:
        return [r[0] for r in self.query("SELECT version FROM schema_migrations ORDER BY version")]

    def integrity_check(self) -> str:
        return str(self.query("PRAGMA integrity_check")[0][0])

    # -- branches and runs ---------------------------------------------------------

    def lineage(self, branch_id: str) -> tuple[str | None, str | None] | None:
        """(parent, fork stage) of a branch; cached, since neither ever changes."""
        cached = self._lineage.get(branch_id)
        if cached is not None:
            return cached
        rows = self.query(
            "SELECT spec_id, parent_branch_id, fork_stage FROM branches WHERE branch_id = ?",
            (branch_id,),
        )
        if not rows:
            return None
        info = (rows[0]["parent_branch_id"], rows[0]["fork_stage"])
        self._lineage[branch_id] = info
        self._spec_of[branch_id] = rows[0]["spec_id"]
        return info

    def spec_of(self, branch_id: str) -> str | None:
        if branch_id not in self._spec_of:
            self.lineage(branch_id)
        return self._spec_of.get(branch_id)

    def begin_run(
        self,
        *,
        spec_id: str,
        goal: str | None,
        from_stage: str | None,
        resume: bool,
        branch_id: str | None = None,
    ) -> RunStart:
        """Open a run; choose its branch by the rule in docs/resume.md."""
        now = time.time()
        run_id = uuid.uuid4().hex
        with self.write() as conn:
            if branch_id is not None:
                row = conn.execute(
                    "SELECT spec_id FROM branches WHERE branch_id = ?", (branch_id,)
                ).fetchone()
                if row is None or row[0] != spec_id:
                    raise StoreError(f"no branch {branch_id} for {spec_id}")
                latest: str | None = branch_id
            else:
                row = conn.execute(
                    "SELECT branch_id FROM runs WHERE spec_id = ? ORDER BY seq DESC LIMIT 1",
                    (spec_id,),
                ).fetchone()
                if row is None:
                    row = conn.execute(
                        "SELECT branch_id FROM branches WHERE spec_id = ?"
                        " ORDER BY created_at DESC, rowid DESC LIMIT 1",
                        (spec_id,),
                    ).fetchone()
                latest = row[0] if row else None
            parent: str | None = None
            fork: str | None = None
            if resume and latest is not None:
                branch = latest
                info = conn.execute(
                    "SELECT parent_branch_id, fork_stage FROM branches WHERE branch_id = ?",
                    (branch,),
                ).fetchone()
                parent, fork = info[0], info[1]
            else:
                branch = new_branch_id(spec_id)
                if from_stage and latest is not None:
                    parent, fork = latest, from_stage
                conn.execute(
                    "INSERT INTO branches(branch_id, spec_id, parent_branch_id, fork_stage, goal,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (branch, spec_id, parent, fork, goal, now),
                )
            self._mark_interrupted(conn, spec_id, now)
            conn.execute(
                "INSERT INTO runs(run_id, spec_id, branch_id, parent_branch_id, goal, from_stage,"
                " resumed, started_at, host, pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    spec_id,
                    branch,
                    parent,
                    goal,
                    from_stage,
                    int(resume and latest is not None),
                    now,
                    socket.gethostname(),
                    os.getpid(),
                ),
            )
        return RunStart(
            run_id=run_id,
            spec_id=spec_id,
            branch_id=branch,
            parent_branch_id=parent,
            fork_stage=fork,
            resumed=bool(resume and latest is not None),
        )

    @staticmethod
    def _mark_interrupted(conn: sqlite3.Connection, spec_id: str, now: float) -> None:
        """Runs of this spec still 'running' whose process on this host is gone (killed,
        crashed) become 'interrupted', so /history tells the truth. A run of another
        host is left alone: whether it is alive cannot be known from here."""
        host = socket.gethostname()
        rows = conn.execute(
            "SELECT run_id, pid FROM runs WHERE spec_id = ? AND status = 'running' AND host = ?",
            (spec_id, host),
        ).fetchall()
        for run_id, pid in rows:
            if pid is not None and not process_gone(host, int(pid)):
                continue
            conn.execute(
                "UPDATE runs SET status = 'interrupted', finished_at = ? WHERE run_id = ?",
                (now, run_id),
            )

    def finish_run(self, run_id: str, status: str) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {', '.join(RUN_STATUSES)}")
        with self.write() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                (status, time.time(), run_id),
            )

    def add_replay(self, run_id: str, tokens: int = 0) -> None:
        with self.write() as conn:
            conn.execute(
                "UPDATE runs SET replayed = replayed + 1, replayed_tokens = replayed_tokens + ?"
                " WHERE run_id = ?",
                (max(int(tokens), 0), run_id),
            )

    # -- outputs ---------------------------------------------------------------------

    @staticmethod
    def _output_params(record: OutputRecord) -> tuple[Any, ...]:
        total = int(record.usage.get("total_tokens") or 0) if record.usage else 0
        return (
            record.run_id,
            record.branch_id,
            record.spec_id,
            record.stage,
            record.agent,
            record.model,
            record.role,
            record.prompt_hash,
            record.prompt_version,
            record.content,
            _json(record.parsed),
            _json(record.usage or {}),
            total,
            record.cost_usd,
            record.latency_ms,
            record.attempts,
            record.status,
            record.error,
            record.created_at if record.created_at is not None else time.time(),
            int(record.recorded),
        )

    def add_output(self, record: OutputRecord) -> int:
        """Commit one output now, in its own transaction; return its row id."""
        with self.write() as conn:
            cursor = conn.execute(
                f"INSERT INTO agent_outputs({_OUTPUT_COLUMNS}, recorded)"
                f" VALUES ({','.join('?' * 20)})",
                self._output_params(record),
            )
            return int(cursor.lastrowid or 0)

    def add_outputs_raw(self, conn: sqlite3.Connection, rows: Iterable[Sequence[Any]]) -> None:
        """Bulk insert (benchmarks, imports) inside a caller's ``write()``: rows are
        tuples in the order of ``_OUTPUT_COLUMNS``."""
        conn.executemany(
            f"INSERT INTO agent_outputs({_OUTPUT_COLUMNS}) VALUES ({','.join('?' * 19)})", rows
        )

    _LOOKUP = (
        "SELECT id, run_id, branch_id, spec_id, stage, agent, model, prompt_hash, prompt_version,"
        " content, parsed, usage, cost_usd, valid, created_at, recorded FROM agent_outputs"
        " WHERE branch_id = ? AND stage = ? AND agent = ? AND prompt_hash = ? AND status = 'ok'"
        " {valid} ORDER BY id DESC LIMIT 1"
    )

    def find_output(
        self,
        *,
        spec_id: str,
        branch_id: str,
        stage: str,
        agent: str,
        prompt_hash: str,
        include_invalid: bool = False,
    ) -> StoredOutput | None:
        """The output a call may reuse: the newest ok (and not invalid) one on the branch,
        else on the nearest ancestor that still shares ``stage`` (see branches.py)."""
        if self.spec_of(branch_id) != spec_id:
            return None  # unknown branch, or another spec's: never reuse
        sql = self._LOOKUP.format(valid="" if include_invalid else "AND valid IS NOT 0")
        for candidate in eligible_branches(branch_id, stage, self.lineage):
            rows = self.query(sql, (candidate, stage, agent, prompt_hash))
            if rows:
                return _stored(rows[0])
        return None

    def set_validation(
        self,
        *,
        spec_id: str,
        branch_id: str,
        stage: str,
        agent: str,
        prompt_hash: str,
        valid: bool,
        error: str | None,
    ) -> bool:
        """Mark the output a call on ``branch_id`` resolves to as valid or invalid."""
        found = self.find_output(
            spec_id=spec_id,
            branch_id=branch_id,
            stage=stage,
            agent=agent,
            prompt_hash=prompt_hash,
            include_invalid=True,
        )
        if found is None:
            return False
        with self.write() as conn:
            conn.execute(
                "UPDATE agent_outputs SET valid = ?, validation_error = ? WHERE id = ?",
                (int(valid), error, found.id),
            )
        return True

    def add_stage_result(
        self,
        *,
        run_id: str,
        branch_id: str,
        spec_id: str,
        stage: str,
        status: str,
        agreements: list[Any],
        conflicts: list[Any],
        synthesis_path: str | None,
        summary: dict[str, Any] | None = None,
    ) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT INTO stage_results(run_id, branch_id, spec_id, stage, status, agreements,"
                " conflicts, synthesis_path, created_at, summary)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    branch_id,
                    spec_id,
                    stage,
                    status,
                    _json(list(agreements)),
                    _json(list(conflicts)),
                    synthesis_path,
                    time.time(),
                    _json(summary),
                ),
            )

    def prune(self, spec_id: str, keep: int) -> tuple[list[str], int]:
        """Delete all but the ``keep`` newest branches of a spec, never an ancestor of a
        kept branch nor the current branch. Return (deleted branch ids, deleted outputs)."""
        if keep < 1:
            raise ValueError("--keep must be at least 1")
        branches = self.branches(spec_id)
        kept = {b.branch_id for b in branches[-keep:]}
        current = self.current_branch(spec_id)
        if current is not None:
            kept.add(current)
        for branch in list(kept):
            kept.update(ancestors(branch, self.lineage))
        doomed = [b.branch_id for b in branches if b.branch_id not in kept]
        if not doomed:
            return [], 0
        marks = ",".join("?" * len(doomed))
        with self.write() as conn:
            count = conn.execute(
                f"SELECT COUNT(*) FROM agent_outputs WHERE branch_id IN ({marks})", doomed
            ).fetchone()[0]
            conn.execute(f"DELETE FROM branches WHERE branch_id IN ({marks})", doomed)
        for branch_id in doomed:
            self._lineage.pop(branch_id, None)
            self._spec_of.pop(branch_id, None)
        return doomed, int(count)


def _stored(row: sqlite3.Row) -> StoredOutput:
    data = dict(row)
    data["parsed"] = json.loads(data["parsed"]) if data["parsed"] is not None else None
    data["usage"] = json.loads(data["usage"]) if data["usage"] else {}
    data["valid"] = None if data["valid"] is None else bool(data["valid"])
    data["recorded"] = bool(data.get("recorded"))
    return StoredOutput(**data)


__all__ = [
    "RUN_STATUSES",
    "OutputRecord",
    "RunStart",
    "Store",
    "StoreError",
    "StoredOutput",
]
