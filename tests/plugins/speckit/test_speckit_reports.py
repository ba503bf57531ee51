"""The spec-kit plugins together (consensus, resume, metrics) tell one story: a cost
reads the same in the stage line, /history, /spec-status and /metrics; a cancelled call
is labelled cancelled in the stage line and counted as cancelled by /metrics; the
replays of a resumed run are counted but are no loop, and recorded answers served
again from the store stay "recorded", never $0. Real parts only: the replay backend
with the recorded demo answers, the loopback OpenAI server, the real SQLite store."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.recordings import DEMO, recorded, stage_of
from tests.helpers.speckit import QUIET, STORE_AT_SCALE, FinishedCalls, clear, copy_spec
from tests.servers.openai_server import OpenAIServer, ScriptedReply, make_usage


def _house_agents(server: OpenAIServer) -> str:
    roles = {"gemini": "researcher", "claude": "synthesizer", "gpt_pro": "aggregator"}
    return "".join(
        f'[agents.{name}]\nbackend = "openai"\nbase_url = "{server.base_url}"\n'
        f'model = "house-model-1"\nrole = "{role}"\n\n'
        for name, role in roles.items()
    )


async def test_a_cost_reads_the_same_in_the_stage_line_history_status_and_metrics(
    make_shell: Any,
    output: Any,
    isolated_env: Path,
    openai_server: OpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,openai,resume,metrics")
    copy_spec(isolated_env, DEMO)

    def responder(request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply:
        # 110 input tokens at $3/Mtok: $0.00033 a call, $0.00099 for the stage
        content = recorded(stage_of(request), headers["x-agent-name"])
        return ScriptedReply(content=content, usage=make_usage(110, 0))

    openai_server.set_responder(responder)
    config = (
        QUIET
        + _house_agents(openai_server)
        + '[plugins.resume]\npath = "resume.sqlite3"\n\n'
        + "[plugins.metrics.prices.house-model-1]\ninput_per_mtok = 3.0\noutput_per_mtok = 3.0\n"
    )
    shell = await make_shell(config=config)
    assert await shell.execute(f"/spec-plan {DEMO}") == 0
    stage_line = next(line for line in output.text.splitlines() if "plan: ok" in line)
    assert ", $0.00099 → " in stage_line
    for command, where in (
        (f"/history {DEMO}", "/history"),
        (f"/spec-status {DEMO}", "/spec-status"),
        ("/metrics", "/metrics"),
    ):
        clear(output)
        assert await shell.execute(command) == 0
        assert "$0.00099" in output.text, where
        assert "$0.0010" not in output.text, where


async def test_a_cancelled_call_is_labelled_and_counted_as_cancelled(
    make_shell: Any,
    output: Any,
    isolated_env: Path,
    openai_server: OpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,openai,metrics")
    copy_spec(isolated_env, DEMO)
    arrived: list[str] = []
    both = asyncio.Event()
    loop = asyncio.get_running_loop()

    def responder(request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply:
        arrived.append(headers["x-agent-name"])
        if len(arrived) == 2:  # both workers are in flight
            loop.call_soon_threadsafe(both.set)
        return ScriptedReply(
            content=recorded(stage_of(request), headers["x-agent-name"]), delay_s=30
        )

    openai_server.set_responder(responder)
    shell = await make_shell(config=QUIET + _house_agents(openai_server))
    task = asyncio.create_task(shell.execute(f"/spec-plan {DEMO}"))
    await asyncio.wait_for(both.wait(), 30)  # a bound for a hang, not a timing check
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    lines = output.text.splitlines()
    for agent, role in (("gemini", "researcher"), ("claude", "synthesizer")):
        assert any(
            re.fullmatch(rf"  plan · {agent} \({role}\) cancelled after \d+\.\ds", line)
            for line in lines
        ), lines
    assert "failed after" not in output.text
    clear(output)
    assert await shell.execute("/metrics") == 0
    assert "0 (1 cancelled)" in output.text and "failed" not in output.text
    clear(output)
    assert await shell.execute("/metrics --json") == 0
    report = json.loads(output.text)
    assert report["session"]["cancelled"] == 2 and report["session"]["failures"] == 0
    assert report["agents"]["gemini"]["cancelled"] == 1


CONFIG = STORE_AT_SCALE


@pytest.fixture
def demo(isolated_env: Path) -> Path:
    copy_spec(isolated_env)
    return isolated_env


async def test_resume_replays_are_no_loop_and_recorded_answers_cost_recorded(
    make_shell: Any, output: Any, demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,replay,resume,metrics")
    calls = FinishedCalls()
    shell = await make_shell(plugins=[calls], config=CONFIG.format(scale=0))
    assert await shell.execute(f"/spec-auto {DEMO}") == 0, output.errors
    calls.seen.clear()
    output.out_buffer.seek(0)
    output.out_buffer.truncate()
    assert await shell.execute(f"/spec-auto {DEMO} --resume") == 0, output.errors
    replayed = [r for _, r in calls.seen if r.cached]
    assert len(replayed) == 19 and all(r.recorded for r in replayed)
    # a recorded answer served again from the store is still unpriced, never $0
    assert all(r.cost_usd is None for r in replayed)
    assert "$0.0000" not in output.text
    stage_lines = [ln for ln in output.text.splitlines() if " agents valid, " in ln]
    assert len(stage_lines) == 6
    assert all(" tok, recorded" in ln for ln in stage_lines), stage_lines
    assert await shell.execute(f"/spec-status {DEMO}") == 0
    status_rows = [ln for ln in output.text.splitlines() if ln.startswith("│ ") and "│ ok " in ln]
    assert len(status_rows) >= 6
    assert all(ln.rstrip().endswith("│ recorded │") for ln in status_rows[-6:]), status_rows
    # every replay is counted, but replaying each stored answer once is no loop
    output.out_buffer.seek(0)
    output.out_buffer.truncate()
    assert await shell.execute("/metrics --json") == 0
    text = output.text
    report = json.loads(text[text.index("{") :])
    assert report["session"]["replay_updates"] == 19
    assert report["session"]["loop_warning"] is None
    output.out_buffer.seek(0)
    output.out_buffer.truncate()
    assert await shell.execute("/metrics") == 0
    assert "loop" not in output.text and "warning" not in output.text
