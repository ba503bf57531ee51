"""Read-only queries behind ``/branches``, ``/resume``, ``/history`` and completion.

A mixin of :class:`~speckit_resume.store.Store`: every query is a short read that WAL
lets run while another process writes.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Sequence
from typing import Any

from .models import BranchRow, RunRow


def process_gone(host: str | None, pid: int | None) -> bool:
    """True when the process that owns a run is known to be dead: same host, and the
    pid no longer exists. Another host's run cannot be checked from here."""
    if pid is None or host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False
    return False


def shown_status(status: str, host: str | None, pid: int | None) -> str:
    """A 'running' run whose process is gone (kill -9, crash) is shown 'interrupted'."""
    return "interrupted" if status == "running" and process_gone(host, pid) else status


class Reports:
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        raise NotImplementedError

    def current_branch(self, spec_id: str) -> str | None:
        """The branch of the spec's most recent run (else its newest branch)."""
        rows = self.query(
            "SELECT branch_id FROM runs WHERE spec_id = ? ORDER BY seq DESC LIMIT 1", (spec_id,)
        )
        if rows:
            return str(rows[0][0])
        rows = self.query(
            "SELECT branch_id FROM branches WHERE spec_id = ? ORDER BY created_at DESC, rowid DESC"
            " LIMIT 1",
            (spec_id,),
        )
        return str(rows[0][0]) if rows else None

    def branch_goal(self, branch_id: str) -> str | None:
        """The goal the branch was created with (what a resume of it runs with)."""
        rows = self.query("SELECT goal FROM branches WHERE branch_id = ?", (branch_id,))
        return str(rows[0][0]) if rows and rows[0][0] is not None else None

    def spec_ids(self, prefix: str = "") -> list[str]:
        rows = self.query(
            "SELECT DISTINCT spec_id FROM branches WHERE spec_id >= ? ORDER BY spec_id LIMIT 200",
            (prefix,),
        )
        return [str(r[0]) for r in rows if str(r[0]).startswith(prefix)]

    def branch_ids(self, prefix: str = "", limit: int = 50) -> list[str]:
        """Branch ids starting with ``prefix`` (completion): a range scan of the key."""
        rows = self.query(
            "SELECT branch_id FROM branches WHERE branch_id >= ? AND branch_id < ?"
            " ORDER BY branch_id LIMIT ?",
            (prefix, prefix + "\U0010ffff", limit),
        )
        return [str(r[0]) for r in rows]

    def spec_branch_ids(self, spec_id: str, prefix: str = "", limit: int = 50) -> list[str]:
        """One spec's branch ids starting with ``prefix``, newest first (completion):
        one scan of the ``branches_spec`` index, backwards."""
        rows = self.query(
            "SELECT branch_id FROM branches WHERE spec_id = ?"
            " AND branch_id >= ? AND branch_id < ?"
            " ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (spec_id, prefix, prefix + "\U0010ffff", limit),
        )
        return [str(r[0]) for r in rows]

    def branches(self, spec_id: str) -> list[BranchRow]:
        rows = self.query(
            "SELECT branch_id, spec_id, parent_branch_id, fork_stage, goal, created_at"
            " FROM branches WHERE spec_id = ? ORDER BY created_at, rowid",
            (spec_id,),
        )
        return [BranchRow(**dict(r)) for r in rows]

    def stage_statuses(self, branch_id: str) -> dict[str, str]:
        """Latest recorded synthesis status per stage of one branch."""
        rows = self.query(
            "SELECT stage, status FROM stage_results WHERE branch_id = ? ORDER BY id",
            (branch_id,),
        )
        return {str(r[0]): str(r[1]) for r in rows}

    def latest_stage_result(self, spec_id: str, stage: str) -> dict[str, Any] | None:
        """The newest recorded verdict of one stage of a spec, on any branch."""
        rows = self.query(
            "SELECT status, branch_id, run_id, synthesis_path, created_at FROM stage_results"
            " WHERE spec_id = ? AND stage = ? ORDER BY created_at DESC, id DESC LIMIT 1",
            (spec_id, stage),
        )
        return dict(rows[0]) if rows else None

    def latest_stage_summary(self, spec_id: str, stage: str) -> dict[str, Any] | None:
        """The newest recorded result of one stage of a spec, on any branch, with its
        agreements, conflicts and summary (``{}`` for a row written before migration 5)."""
        rows = self.query(
            "SELECT status, branch_id, run_id, synthesis_path, created_at, agreements,"
            " conflicts, summary FROM stage_results WHERE spec_id = ? AND stage = ?"
            " ORDER BY created_at DESC, id DESC LIMIT 1",
            (spec_id, stage),
        )
        if not rows:
            return None
        found = dict(rows[0])
        for key, empty in (("agreements", "[]"), ("conflicts", "[]"), ("summary", "{}")):
            found[key] = json.loads(found[key] or empty)
        return found

    def output_counts(self, branch_id: str) -> dict[str, int]:
        """Stored ok outputs per stage of one branch (an index-only count)."""
        rows = self.query(
            "SELECT stage, COUNT(*) FROM agent_outputs WHERE branch_id = ? AND status = 'ok'"
            " GROUP BY stage",
            (branch_id,),
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def branch_runs(self, branch_id: str) -> tuple[int, str | None]:
        rows = self.query(
            "SELECT COUNT(*) OVER (), status, host, pid FROM runs WHERE branch_id = ?"
            " ORDER BY seq DESC LIMIT 1",
            (branch_id,),
        )
        if not rows:
            return 0, None
        return int(rows[0][0]), shown_status(rows[0][1], rows[0][2], rows[0][3])

    def stage_outputs(self, branch_id: str, stage: str) -> list[sqlite3.Row]:
        """Every output row (ok and failed) of one stage of one branch, newest first."""
        return self.query(
            "SELECT id, agent, model, role, prompt_hash, prompt_version, status, valid, error,"
            " validation_error, created_at FROM agent_outputs WHERE branch_id = ? AND stage = ?"
            " ORDER BY id DESC",
            (branch_id, stage),
        )

    def runs(self, spec_id: str) -> list[RunRow]:
        rows = self.query(
            "SELECT r.run_id, r.branch_id, r.goal, r.from_stage, r.resumed, r.replayed,"
            " r.replayed_tokens,"
            " r.started_at, r.finished_at, r.status, r.host, r.pid,"
            " COUNT(o.id) AS calls, COALESCE(SUM(o.status = 'error'), 0) AS errors,"
            " COALESCE(SUM(o.total_tokens), 0) AS tokens,"
            " SUM(o.cost_usd) AS cost_usd,"
            " COALESCE(SUM(o.cost_usd IS NULL AND o.recorded = 0 AND o.status != 'error'"
            " AND o.total_tokens > 0), 0) AS unpriced,"
            " COALESCE(SUM(o.recorded), 0) AS recorded"
            " FROM runs r LEFT JOIN agent_outputs o ON o.run_id = r.run_id"
            " WHERE r.spec_id = ? GROUP BY r.seq ORDER BY r.seq",
            (spec_id,),
        )
        out = []
        for r in rows:
            data = dict(r)
            data["status"] = shown_status(data["status"], data.pop("host"), data.pop("pid"))
            out.append(RunRow(**data))
        return out

    def run_errors(self, spec_id: str, limit: int = 20) -> list[sqlite3.Row]:
        return self.query(
            "SELECT o.run_id, o.stage, o.agent, o.error FROM runs r"
            " JOIN agent_outputs o ON o.run_id = r.run_id"
            " WHERE r.spec_id = ? AND o.status = 'error' ORDER BY o.id DESC LIMIT ?",
            (spec_id, limit),
        )


__all__ = ["Reports", "process_gone", "shown_status"]
