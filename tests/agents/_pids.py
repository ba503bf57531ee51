"""Shared by the test agents: record this process's pid (and role) in $AGENT_PID_FILE,
so tests can check afterwards that every process of an agent call is gone."""

from __future__ import annotations

import os


def record(role: str) -> None:
    path = os.environ.get("AGENT_PID_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{role} {os.getpid()}\n")
            fh.flush()
