"""Shared steps of the crash-safety tests (test_resume_crash.py, test_resume_spec_auto.py):
a pipeline process is SIGKILLed once one agent's answer of a stage is committed to the
resume store while another's is still held by the loopback server."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.servers.openai_server import OpenAIServer


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """``sql`` on the store, read-only (the pipeline process may still hold it)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def call_counter(
    server: OpenAIServer, stage_of: Callable[[dict[str, Any]], str]
) -> Callable[[str, str], int]:
    """``calls(agent, stage)``: how many requests of that agent and stage reached ``server``."""

    def calls(agent: str, stage: str) -> int:
        return sum(1 for c in server.calls if c.agent == agent and stage_of(c.json) == stage)

    return calls


def wait_for(
    condition: Callable[[], bool], what: str, proc: subprocess.Popen[str], bound_s: float
) -> None:
    deadline = time.monotonic() + bound_s  # a bound for a hung process, not a timing assertion
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"exited early ({proc.returncode}) waiting {what}: {out}{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def kill_mid_stage(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    db: Path,
    in_flight: Callable[[], bool],
    held: str,
    committed: str,
    stage: str,
    bound_s: float,
) -> subprocess.Popen[str]:
    """Start ``argv``; once ``held``'s call is in flight (``in_flight()``) and
    ``committed``'s answer of ``stage`` is in the store — committed when it arrived, not
    at the end of the stage — SIGKILL it. Returns the finished process."""
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    committed_sql = f"SELECT 1 FROM agent_outputs WHERE agent='{committed}' AND stage='{stage}'"
    try:
        wait_for(in_flight, f"{held}'s {stage} call", proc, bound_s)
        wait_for(
            lambda: db.exists() and bool(rows(db, committed_sql)),
            f"{committed}'s {stage} output in the store",
            proc,
            bound_s,
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    return proc
