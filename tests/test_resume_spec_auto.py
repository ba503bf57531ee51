"""The whole thing, as a user runs it: ``agentshell run "/spec-auto SPEC"`` in a real
process against the loopback OpenAI server (answering with the recorded demo outputs),
SIGKILLed while the tasks stage is in flight; ``agentshell run "/spec-auto SPEC
--resume"`` in a new process replays what had finished and runs the rest."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.servers.openai_server import OpenAIServer, ScriptedReply

pytestmark = pytest.mark.e2e

consensus = pytest.importorskip("speckit_consensus.agents")

ROOT = Path(__file__).resolve().parents[1]
SPEC = "SPEC-KIT-DEMO"
STAGES = ["plan", "tasks", "implement", "validate", "audit", "unlock"]
AGENTS = {  # name -> (model, role), as the recorded demo agents
    "gemini": ("gemini-2.5-pro", "researcher"),
    "claude": ("claude-sonnet-4-5", "synthesizer"),
    "gpt_codex": ("gpt-5-codex", "coder"),
    "gpt_pro": ("gpt-5", "aggregator"),
}
STAGE_LINE = re.compile(r"^STAGE: (\w+)", re.MULTILINE)


def _stage_of(request: dict[str, Any]) -> str:
    text = "\n".join(str(m.get("content")) for m in request.get("messages", []))
    match = STAGE_LINE.search(text)
    return match[1] if match else "?"


def _recorded(stage: str, agent: str) -> str:
    path = consensus.RECORDINGS_DIR / SPEC / stage / f"{agent}.json"
    return json.dumps(json.loads(path.read_text())["content"])


def _wait(condition: Callable[[], bool], what: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60  # a bound for a hung process, not a timing assertion
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"exited early ({proc.returncode}) waiting {what}: {out}{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_spec_auto_killed_mid_stage_resumes_without_paying_twice(
    openai_server: OpenAIServer, isolated_env: Path
) -> None:
    slow = {"on": True}

    def responder(request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply:
        agent, stage = str(headers.get("x-agent-name")), _stage_of(request)
        delay = 120.0 if slow["on"] and agent == "claude" and stage == "tasks" else 0.0
        return ScriptedReply(content=_recorded(stage, agent), delay_s=delay)

    openai_server.set_responder(responder)
    config = "".join(
        f'[agents.{name}]\nbackend = "openai"\nmodel = "{model}"\nrole = "{role}"\n'
        'base_url = "{url}"\n\n'
        for name, (model, role) in AGENTS.items()
    ).format(url=openai_server.base_url)
    config += '[retry]\nattempts = 1\n\n[plugins.resume]\npath = "resume.sqlite3"\n'
    (isolated_env / "agentshell.toml").write_text(config)
    shutil.copytree(ROOT / "docs" / SPEC, isolated_env / "docs" / SPEC)
    db = isolated_env / "resume.sqlite3"
    env = {**os.environ, "AGENTSHELL_DISABLE_PLUGINS": "faults"}
    cmd = [sys.executable, "-m", "agentshell", "run"]

    def calls(agent: str, stage: str) -> int:
        return sum(
            1 for c in openai_server.calls if c.agent == agent and _stage_of(c.json) == stage
        )

    first = subprocess.Popen(
        [*cmd, f"/spec-auto {SPEC}"],
        cwd=isolated_env,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait(lambda: calls("claude", "tasks") == 1, "claude's tasks call", first)
        _wait(
            lambda: (
                db.exists()
                and bool(
                    _rows(db, "SELECT 1 FROM agent_outputs WHERE agent='gemini' AND stage='tasks'")
                )
            ),
            "gemini's tasks output in the store",
            first,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
    assert first.returncode == -signal.SIGKILL

    slow["on"] = False
    second = subprocess.run(
        [*cmd, f"/spec-auto {SPEC} --resume"],
        cwd=isolated_env,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 0, second.stdout + second.stderr

    for stage in STAGES:
        names = ["gemini", "claude", "gpt_pro"] + (["gpt_codex"] if stage == "implement" else [])
        for agent in names:
            want = 2 if (agent, stage) == ("claude", "tasks") else 1
            assert calls(agent, stage) == want, (agent, stage)

    assert _rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert _rows(db, "PRAGMA foreign_key_check") == []
    assert _rows(db, "SELECT status, resumed FROM runs ORDER BY seq") == [
        ("interrupted", 0),
        ("ok", 1),
    ]
    assert len({r[0] for r in _rows(db, "SELECT branch_id FROM runs")}) == 1
    replayed = _rows(db, "SELECT replayed FROM runs ORDER BY seq")[1][0]
    assert replayed >= 4  # plan's three agents and gemini's tasks answer at least
