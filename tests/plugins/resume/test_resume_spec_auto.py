"""The whole thing, as a user runs it: ``agentshell run "/spec-auto SPEC"`` in a real
process against the loopback OpenAI server (answering with the recorded demo outputs),
SIGKILLed while the tasks stage is in flight; ``agentshell run "/spec-auto SPEC
--resume"`` in a new process replays what had finished and runs the rest."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.crash import call_counter, kill_mid_stage, rows
from tests.helpers.paths import REPO, without_demo_outputs
from tests.helpers.recordings import recorded, stage_of
from tests.servers.openai_server import OpenAIServer, ScriptedReply

pytestmark = pytest.mark.e2e

ROOT = REPO
SPEC = "SPEC-KIT-DEMO"
STAGES = ["plan", "tasks", "implement", "validate", "audit", "unlock"]
AGENTS = {  # name -> (model, role), as the recorded demo agents
    "gemini": ("gemini-2.5-pro", "researcher"),
    "claude": ("claude-sonnet-4-5", "synthesizer"),
    "gpt_codex": ("gpt-5-codex", "coder"),
    "gpt_pro": ("gpt-5", "aggregator"),
}


def test_spec_auto_killed_mid_stage_resumes_without_paying_twice(
    openai_server: OpenAIServer, isolated_env: Path
) -> None:
    slow = {"on": True}

    def responder(request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply:
        agent, stage = str(headers.get("x-agent-name")), stage_of(request)
        delay = 120.0 if slow["on"] and agent == "claude" and stage == "tasks" else 0.0
        return ScriptedReply(content=recorded(stage, agent), delay_s=delay)

    openai_server.set_responder(responder)
    config = "".join(
        f'[agents.{name}]\nbackend = "openai"\nmodel = "{model}"\nrole = "{role}"\n'
        'base_url = "{url}"\n\n'
        for name, (model, role) in AGENTS.items()
    ).format(url=openai_server.base_url)
    config += '[retry]\nattempts = 1\n\n[plugins.resume]\npath = "resume.sqlite3"\n'
    (isolated_env / "agentshell.toml").write_text(config)
    shutil.copytree(ROOT / "docs" / SPEC, isolated_env / "docs" / SPEC, ignore=without_demo_outputs)
    db = isolated_env / "resume.sqlite3"
    env = {**os.environ, "AGENTSHELL_DISABLE_PLUGINS": "faults"}
    cmd = [sys.executable, "-m", "agentshell", "run"]

    calls = call_counter(openai_server, stage_of)

    first = kill_mid_stage(
        [*cmd, f"/spec-auto {SPEC}"],
        cwd=isolated_env,
        env=env,
        db=db,
        in_flight=lambda: calls("claude", "tasks") == 1,
        held="claude",
        committed="gemini",
        stage="tasks",
        bound_s=60,
    )
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

    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert rows(db, "PRAGMA foreign_key_check") == []
    assert rows(db, "SELECT status, resumed FROM runs ORDER BY seq") == [
        ("interrupted", 0),
        ("ok", 1),
    ]
    assert len({r[0] for r in rows(db, "SELECT branch_id FROM runs")}) == 1
    replayed = rows(db, "SELECT replayed FROM runs ORDER BY seq")[1][0]
    assert replayed >= 4  # plan's three agents and gemini's tasks answer at least
