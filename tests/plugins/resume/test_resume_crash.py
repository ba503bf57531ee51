"""Crash safety with real processes: a pipeline process is SIGKILLed while a stage is in
flight (the loopback server holds one agent's answer), a new process resumes, and the
finished outputs are replayed from the store — the server's call counts prove it.

The pipeline here is a small script on the public API (begin_run, the runner with the
consensus plugin's call context, record_stage, finish_run), so this test does not
depend on the consensus plugin; test_resume_spec_auto.py does the same with /spec-auto.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.crash import call_counter, kill_mid_stage, rows
from tests.servers.openai_server import OpenAIServer, ScriptedReply

pytestmark = pytest.mark.e2e

STAGES = ["plan", "tasks", "implement", "validate", "audit", "unlock"]

SCRIPT = r"""
import asyncio, hashlib, json, sys
from agentshell import AgentRequest, Shell

STAGES = ["plan", "tasks", "implement", "validate", "audit", "unlock"]

async def main(resume: bool) -> int:
    shell = Shell(mode="run")
    await shell.start()
    try:
        api = shell.state["speckit.resume"]
        run = api.begin_run(spec_id="SPEC-CRASH", goal="demo", from_stage=None, resume=resume)
        print(json.dumps({"run": run}), flush=True)
        previous = ""
        for stage in STAGES:
            prompt = f"{stage} for SPEC-CRASH. Previous outputs: {previous}"
            ctx = {"spec_id": "SPEC-CRASH", "stage": stage, "run_id": run["run_id"],
                   "branch_id": run["branch_id"], "role": "",
                   "prompt_hash": hashlib.sha256(prompt.encode()).hexdigest(),
                   "prompt_version": "v1"}
            agents = [shell.agents["a1"], shell.agents["a2"]]
            outcomes = await shell.runner.run_many(agents, AgentRequest(prompt=prompt), ctx)
            if not all(o.ok for o in outcomes):
                api.finish_run(run["run_id"], "failed")
                return 1
            previous = " | ".join(o.response.content for o in outcomes)
            api.record_stage(run_id=run["run_id"], branch_id=run["branch_id"],
                             spec_id="SPEC-CRASH", stage=stage, status="ok", agreements=[],
                             conflicts=[], synthesis_path=None)
            cached = {o.agent.name: o.response.cached for o in outcomes}
            print(json.dumps({"stage": stage, "cached": cached}), flush=True)
        api.finish_run(run["run_id"], "ok")
        return 0
    finally:
        await shell.stop()

sys.exit(asyncio.run(main(sys.argv[1] == "resume")))
"""

CONFIG = """
[agents.a1]
backend = "openai"
model = "m1"
base_url = "{url}"

[agents.a2]
backend = "openai"
model = "m2"
base_url = "{url}"

[retry]
attempts = 1

[plugins.resume]
path = "resume.sqlite3"
"""


def _stage_of(request: dict[str, Any]) -> str:
    return str(request["messages"][-1]["content"]).split()[0]


def test_sigkill_mid_stage_then_resume_reuses_finished_outputs(
    openai_server: OpenAIServer, isolated_env: Path
) -> None:
    slow = {"on": True}

    def responder(request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply:
        agent, stage = headers.get("x-agent-name"), _stage_of(request)
        # a2's tasks answer is held while the first process runs: the kill lands then
        delay = 60.0 if slow["on"] and agent == "a2" and stage == "tasks" else 0.0
        return ScriptedReply(content=f"{agent} says {stage}", delay_s=delay)

    openai_server.set_responder(responder)
    (isolated_env / "agentshell.toml").write_text(CONFIG.format(url=openai_server.base_url))
    script = isolated_env / "pipeline.py"
    script.write_text(SCRIPT)
    db = isolated_env / "resume.sqlite3"
    env = {**os.environ, "AGENTSHELL_LOAD_PLUGINS": "builtins,openai,resume"}

    calls = call_counter(openai_server, _stage_of)

    first = kill_mid_stage(
        [sys.executable, str(script), "fresh"],
        cwd=isolated_env,
        env=env,
        db=db,
        in_flight=lambda: calls("a2", "tasks") == 1,
        held="a2",
        committed="a1",
        stage="tasks",
        bound_s=30,
    )
    assert first.returncode == -signal.SIGKILL
    branch = rows(db, "SELECT branch_id FROM branches")[0][0]
    assert rows(db, "SELECT status FROM runs") == [("running",)]

    slow["on"] = False
    second = subprocess.run(
        [sys.executable, str(script), "resume"],
        cwd=isolated_env,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 0, second.stderr
    lines = [json.loads(line) for line in second.stdout.splitlines()]
    assert lines[0]["run"]["branch_id"] == branch and lines[0]["run"]["resumed"]
    cached = {line["stage"]: line["cached"] for line in lines[1:]}
    assert cached["plan"] == {"a1": True, "a2": True}
    assert cached["tasks"] == {"a1": True, "a2": False}  # only the call in flight is redone
    assert all(cached[s] == {"a1": False, "a2": False} for s in STAGES[2:])

    # exactly one backend call per finished output, two for the one killed in flight
    for stage in STAGES:
        assert calls("a1", stage) == 1, stage
        assert calls("a2", stage) == (2 if stage == "tasks" else 1), stage

    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert rows(db, "PRAGMA foreign_key_check") == []
    assert rows(db, "SELECT status, resumed FROM runs ORDER BY seq") == [
        ("interrupted", 0),
        ("ok", 1),
    ]
    assert rows(db, "SELECT COUNT(*) FROM agent_outputs WHERE status = 'ok'") == [(12,)]
