"""End to end: injected faults against real openai-backend agents talking to the
loopback OpenAI-protocol server, handled by the runner's real retry policy; and the
documented fault-injection examples, read from docs/faults.md itself and run verbatim
through the real CLI in a subprocess (so the test runs exactly what the docs show)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agentshell import AgentCallFinished, AgentCallRetry, AgentRequest
from speckit_consensus.agents import RECORDINGS_DIR
from speckit_consensus.events import ConsensusSynthesized
from speckit_faults.events import FaultInjected
from tests.helpers.events import ListSinkPlugin
from tests.helpers.paths import REPO
from tests.helpers.recordings import DEMO
from tests.helpers.speckit import copy_spec
from tests.servers.openai_server import OpenAIServer, ScriptedReply, make_usage

pytestmark = pytest.mark.e2e


FAULT_ENV = {
    "CODEX_FAULTS_SCOPE": "spec_kit",
    "CODEX_FAULTS": "disconnect:3,429:1,timeout:2",
    "CODEX_FAULTS_429_RESET": "now+1s",
}


ROLES = {"gemini": "researcher", "claude": "synthesizer", "gpt_pro": "aggregator"}


def config(server: OpenAIServer, names: list[str]) -> str:
    agents = "".join(
        f'\n[agents.{name}]\nbackend = "openai"\nmodel = "gpt-4o-mini"\n'
        f'role = "{ROLES[name]}"\nbase_url = "{server.base_url}"\n'
        for name in names
    )
    return f"""
[retry]
attempts = 10
base_delay_s = 0.01
max_delay_s = 0.05
rate_limit_jitter_s = 0

[telemetry]
sinks = ["list"]
{agents}
"""


async def test_fan_out_survives_every_fault_and_each_count_fires_once(
    make_shell: Any, openai_server: OpenAIServer, output: Any
) -> None:
    names = ["gemini", "claude", "gpt_pro"]
    sinks = ListSinkPlugin()
    shell = await make_shell(plugins=[sinks], config=config(openai_server, names), env=FAULT_ENV)
    outcomes = await shell.runner.run_many(
        [shell.agents[n] for n in names],
        AgentRequest(prompt="plan SPEC-1"),
        {"spec_id": "SPEC-1", "stage": "plan"},
    )
    assert all(o.ok for o in outcomes), [str(o.error) for o in outcomes]
    assert openai_server.call_count == 3  # faults fire before the backend
    assert shell.telemetry.flush(30)  # returns once every sink has caught up

    injected = sinks.of(FaultInjected)
    assert Counter(e.fault for e in injected) == {"disconnect": 3, "rate_limit": 1, "timeout": 2}
    retries = sinks.of(AgentCallRetry)
    assert Counter(e.error_type for e in retries) == {
        "disconnected": 3,
        "rate_limited": 1,
        "timeout": 2,
    }
    (limited,) = [e for e in retries if e.error_type == "rate_limited"]
    # the runner waited for the injected reset hint (now+1s at injection, less the time
    # to the retry decision), not for backoff (at most max_delay_s = 0.05)
    assert 0.5 < limited.delay_s <= 1.0
    assert all(e.delay_s <= 0.05 for e in retries if e is not limited)
    finished = sinks.of(AgentCallFinished)
    assert sum(e.attempts for e in finished) == 3 + 6
    assert all(e.stage == "plan" and e.spec_id == "SPEC-1" for e in injected)

    assert await shell.execute("/faults") == 0
    assert "disconnect:0, 429:0, timeout:0" in output.text
    assert "disconnect:3, 429:1, timeout:2" in output.text
    assert output.text.count("fault injected:") == 6
    assert output.text.count("retrying in") == 6

    # nothing is left: another fan-out goes straight through
    again = [shell.agents[n] for n in names]
    outcomes = await shell.runner.run_many(again, AgentRequest(prompt="y"))
    assert [o.response.attempts for o in outcomes if o.response] == [1, 1, 1]


RECORDINGS = RECORDINGS_DIR


def recorded_responder(spec_id: str, stage: str) -> Any:
    """Answer each agent (by its X-Agent-Name header) with its recorded stage output, so
    the loopback server speaks exactly what a real model said for that stage."""
    replies: dict[str, ScriptedReply] = {}
    for path in (RECORDINGS / spec_id / stage).glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        usage = data.get("usage", {})
        replies[path.stem] = ScriptedReply(
            content=json.dumps(data["content"]),
            usage=make_usage(usage.get("input_tokens", 100), usage.get("output_tokens", 50)),
        )

    def respond(request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply | None:
        return replies.get(headers.get("x-agent-name", ""))

    return respond


@pytest.fixture
def demo_spec() -> str:
    """The demo spec, copied into the test's working directory."""
    spec_id = "SPEC-KIT-DEMO"
    spec_dir = Path("docs") / spec_id
    spec_dir.mkdir(parents=True)
    shutil.copy(REPO / "docs" / spec_id / "spec.md", spec_dir)
    return spec_id


async def test_spec_plan_completes_ok_through_injected_faults(
    make_shell: Any, openai_server: OpenAIServer, output: Any, demo_spec: str
) -> None:
    spec_id = demo_spec
    openai_server.set_responder(recorded_responder(spec_id, "plan"))
    names = ["gemini", "claude", "gpt_pro"]
    sinks = ListSinkPlugin()
    shell = await make_shell(plugins=[sinks], config=config(openai_server, names), env=FAULT_ENV)
    status = await shell.execute(f"/spec-plan {spec_id}")
    assert shell.telemetry.flush(30)  # returns once every sink has caught up
    synthesized = sinks.of(ConsensusSynthesized)
    assert status == 0, output.text + output.errors
    assert [(e.stage, e.status) for e in synthesized] == [("plan", "ok")]
    injected = sinks.of(FaultInjected)
    assert Counter(e.fault for e in injected) == {"disconnect": 3, "rate_limit": 1, "timeout": 2}
    assert all(e.stage == "plan" and e.spec_id == spec_id for e in injected)
    retries = sinks.of(AgentCallRetry)
    assert len(retries) == 6
    (limited,) = [e for e in retries if e.error_type == "rate_limited"]
    assert 0.5 < limited.delay_s <= 1.0  # the reset hint, as above
    assert openai_server.call_count == len(names)  # every agent reached the server once


def doc_examples() -> tuple[list[str], str]:
    """The ``sh`` and ``toml`` blocks of docs/faults.md's Example section."""
    text = (REPO / "docs" / "faults.md").read_text(encoding="utf-8")
    section = text.split("## Example", 1)[1]
    shells = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    tomls = re.findall(r"```toml\n(.*?)```", section, re.DOTALL)
    assert len(shells) == 2 and len(tomls) == 1, "docs/faults.md examples changed shape"
    return shells, tomls[0]


def run_documented(command: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], list[Any]]:
    """Run a documented ``VAR=value ... agentshell run "..."`` line; also return the
    telemetry events it wrote."""
    words = shlex.split(command.replace("\\\n", " "))
    env = dict(os.environ)
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    assert words[:2] == ["agentshell", "run"], words
    done = subprocess.run(
        [sys.executable, "-m", "agentshell", *words[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    home = Path(os.environ["AGENTSHELL_HOME"])
    events = [
        json.loads(line)
        for path in home.rglob("telemetry.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return done, events


def _names(events: list[Any], name: str) -> list[Any]:
    return [e for e in events if e.get("type") == name]


@pytest.mark.e2e
@pytest.mark.slow  # two subprocess runs with real retry sleeps: ~4 s each
def test_documented_fault_example_completes_ok_with_three_retries(isolated_env: Path) -> None:
    (example, _), _toml = doc_examples()
    copy_spec(isolated_env, DEMO)
    done, events = run_documented(example, isolated_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fault injection on (CODEX_FAULTS_SCOPE=spec_kit): disconnect:1,429:1,timeout:1" in (
        done.stdout
    )
    assert done.stdout.count("fault injected: ") == 3
    assert "✓ plan: ok — 3/3 agents valid" in done.stdout
    assert "gave up" not in done.stdout + done.stderr
    retries = _names(events, "agent.call.retry")
    assert len(_names(events, "fault.injected")) == 3 and len(retries) == 3, events
    rate_limited = [e for e in retries if e["error_type"] == "rate_limited"]
    # the reset hint (one second after injection) plus at most 0.25 s of jitter; the
    # lower bound is only "it waited for the hint", not a timing check
    assert len(rate_limited) == 1 and 0 < rate_limited[0]["delay_s"] <= 1.251
    assert [e["reset_at"] is not None for e in _names(events, "fault.injected")].count(True) == 1


@pytest.mark.e2e
@pytest.mark.slow
def test_documented_six_fault_example_lands_on_claude_and_succeeds(isolated_env: Path) -> None:
    (_, example), toml = doc_examples()
    copy_spec(isolated_env, DEMO)
    (isolated_env / "agentshell.toml").write_text(toml, encoding="utf-8")
    done, events = run_documented(example, isolated_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "✓ plan: ok" in done.stdout
    retries = _names(events, "agent.call.retry")
    assert [e["agent"] for e in retries] == ["claude"] * 6
    assert [e["attempt"] for e in retries] == [1, 2, 3, 4, 5, 6]
    finished = [e for e in _names(events, "agent.call.finished") if e["agent"] == "claude"]
    assert [e["attempts"] for e in finished] == [7]
