"""The ``replay`` backend: recorded answers from a directory of JSON files, looked up by
spec, stage and agent, labelled as recorded everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentshell.agents import AgentRequest, AgentSpec
from agentshell.backends.replay import make_backend
from agentshell.config import RetrySettings
from agentshell.errors import BadAgentOutput
from tests.agents.harness import Harness, make_harness, make_shell_stub


def write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    stub = make_shell_stub(tmp_path / "data", cwd=tmp_path)
    return make_harness({"replay": make_backend}, shell=stub, retry=RetrySettings(attempts=1))


def replay(name: str, **options: Any) -> AgentSpec:
    return AgentSpec(name=name, backend="replay", model="configured-model", options=options)


REQ = AgentRequest(prompt="plan it", expect_json=True)


async def test_lookup_order_spec_then_stage_then_agent(h: Harness, tmp_path: Path) -> None:
    root = tmp_path / ".agentshell" / "recordings"  # the default directory
    write(root / "gemini.json", {"content": "agent-level"})
    write(root / "plan" / "gemini.json", {"content": "stage-level"})
    write(root / "SPEC-1" / "plan" / "gemini.json", {"content": "spec-level"})
    spec = replay("gemini")
    run = h.runner.run
    assert (await run(spec, REQ, {"spec_id": "SPEC-1", "stage": "plan"})).content == "spec-level"
    assert (await run(spec, REQ, {"spec_id": "SPEC-2", "stage": "plan"})).content == "stage-level"
    assert (await run(spec, REQ, {"stage": "tasks"})).content == "agent-level"
    assert (await run(spec, REQ)).content == "agent-level"


async def test_json_content_usage_and_labels(h: Harness, tmp_path: Path) -> None:
    payload = {"stage": "plan", "agent": "claude", "work_breakdown": [{"step": "one"}]}
    write(
        tmp_path / "rec" / "plan" / "claude.json",
        {
            "agent": "claude",
            "stage": "plan",
            "model": "claude-recorded",
            "content": payload,
            "usage": {
                "prompt_tokens": 900,
                "completion_tokens": 120,
                "total_tokens": 1020,
                "prompt_tokens_details": {"cached_tokens": 800},
                "completion_tokens_details": {"reasoning_tokens": 40},
            },
        },
    )
    response = await h.runner.run(replay("claude", dir="rec"), REQ, {"stage": "plan"})
    assert response.recorded and not response.cached
    assert response.parsed == payload and json.loads(response.content) == payload
    assert response.model == "claude-recorded"
    assert (response.usage.input_tokens, response.usage.cached_input_tokens) == (900, 800)
    assert response.usage.reasoning_output_tokens == 40 and response.usage.total_tokens == 1020
    finished: Any = h.events("agent.call.finished")[0]
    assert finished.recorded is True and finished.usage.total_tokens == 1020


async def test_recorded_latency_is_honoured_and_scaled(h: Harness, tmp_path: Path) -> None:
    write(tmp_path / "rec" / "slow.json", {"content": "late", "latency_ms": 60000})
    # scaled down 10000x: the call sleeps 6 ms; with honour_latency false it does not sleep
    assert (
        await h.runner.run(replay("slow", dir="rec", latency_scale=1e-4), REQ)
    ).content == "late"
    spec = replay("slow", dir=str(tmp_path / "rec"), honour_latency=False)
    assert (await h.runner.run(spec, REQ)).content == "late"


async def test_recorded_latency_counts_against_the_timeout(h: Harness, tmp_path: Path) -> None:
    write(tmp_path / "rec" / "slow.json", {"content": "late", "latency_ms": 60000})
    spec = AgentSpec(name="slow", backend="replay", timeout_s=0.05, options={"dir": "rec"})
    outcome = (await h.runner.run_many([spec], REQ))[0]
    assert outcome.error is not None and outcome.error.kind == "timeout"


async def test_missing_recording_names_the_paths(h: Harness, tmp_path: Path) -> None:
    with pytest.raises(BadAgentOutput) as info:
        await h.runner.run(replay("ghost", dir="rec"), REQ, {"spec_id": "S-9", "stage": "audit"})
    message = str(info.value)
    for part in ("rec/S-9/audit/ghost.json", "rec/audit/ghost.json", "rec/ghost.json"):
        assert str(tmp_path / part) in message


async def test_bad_recording_is_a_clear_error(h: Harness, tmp_path: Path) -> None:
    write(tmp_path / "rec" / "broken.json", {"model": "m"})
    (tmp_path / "rec" / "garbled.json").write_text("{nope", encoding="utf-8")
    with pytest.raises(
        BadAgentOutput, match=r"bad recording .*broken.json: content: Field required"
    ):
        await h.runner.run(replay("broken", dir="rec"), REQ)
    with pytest.raises(BadAgentOutput, match=r"bad recording .*garbled.json"):
        await h.runner.run(replay("garbled", dir="rec"), REQ)


async def test_path_traversal_in_context_is_ignored(h: Harness, tmp_path: Path) -> None:
    write(tmp_path / "secret.json", {"content": "outside"})
    write(tmp_path / "rec" / "a.json", {"content": "inside"})
    context = {"spec_id": "..", "stage": "../.."}
    assert (await h.runner.run(replay("a", dir="rec"), REQ, context)).content == "inside"
    with pytest.raises(BadAgentOutput):
        await h.runner.run(replay("../secret", dir="rec"), REQ)


async def test_recordings_are_reread_when_changed(h: Harness, tmp_path: Path) -> None:
    path = write(tmp_path / "rec" / "a.json", {"content": "first"})
    assert (await h.runner.run(replay("a", dir="rec"), REQ)).content == "first"
    write(path, {"content": "second version"})
    import os

    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert (await h.runner.run(replay("a", dir="rec"), REQ)).content == "second version"
