"""/spec-auto with the resume store on the recorded demo: a resume after a full run
makes no backend call, a cancelled run says where it stopped and how to continue, and
a halted run reads well in its stage lines, /spec-status, /history and /branches.
Real parts only: the replay backend with the recorded demo answers, the loopback
OpenAI server, the real SQLite resume store."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from agentshell import AgentCall, AgentResponse, hookimpl
from speckit_consensus.markdown import strip_meta
from speckit_consensus.stages import STAGES
from tests.helpers.recordings import DEMO, recorded, stage_of
from tests.helpers.speckit import (
    QUIET,
    STORE_AT_SCALE,
    answer_recorded,
    clear,
    copy_spec,
    json_out,
    openai_agents,
)
from tests.servers.openai_server import OpenAIServer, ScriptedReply

FAST = STORE_AT_SCALE.format(scale=0)


class Counter:
    """A test plugin: every agent call that reached a backend (not answered by a
    before_agent_call hook such as the resume store)."""

    def __init__(self) -> None:
        self.live: list[tuple[str, str]] = []
        self.cached: list[AgentResponse] = []

    @hookimpl
    def after_agent_call(self, call: AgentCall, response: AgentResponse) -> None:
        if response.cached:
            self.cached.append(response)
        else:
            self.live.append((str(call.context.get("stage")), call.agent.name))


@pytest.fixture
def demo(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for spec in (DEMO, "SPEC-KIT-CONFLICT"):
        copy_spec(isolated_env, spec)
    return isolated_env


async def test_resume_after_a_full_run_makes_no_backend_calls(
    make_shell: Any, output: Any, demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,replay,resume")
    counter = Counter()
    shell = await make_shell(plugins=[counter], config=FAST)
    assert await shell.execute(f"/spec-auto {DEMO}") == 0, output.errors
    assert len(counter.live) == 19  # 6 stages x 3 agents + the coder in implement
    docs = {s: strip_meta((demo / "docs" / DEMO / f"{s}.md").read_text()) for s in STAGES}

    # /resume promises to reuse everything and run nothing ...
    assert await shell.execute(f"/resume {DEMO} --json") == 0
    plan = json_out(output)["stages"]
    assert all(item["rerun"] == [] and item["reuse"] for item in plan)
    assert [len(item["reuse"]) for item in plan] == [3, 3, 4, 3, 3, 3]  # one per agent

    # ... and the resume keeps that promise: no backend call at all
    counter.live.clear()
    assert await shell.execute(f"/spec-auto {DEMO} --resume") == 0, output.errors
    assert counter.live == []
    assert len(counter.cached) == 19
    # a replayed recorded answer is still a recorded one, and the documents are the same
    assert all(r.recorded for r in counter.cached)
    assert "(recorded, cached)" in output.text
    for stage in STAGES:
        assert strip_meta((demo / "docs" / DEMO / f"{stage}.md").read_text()) == docs[stage]


async def test_cancelled_spec_auto_says_where_and_how_to_continue(
    make_shell: Any,
    output: Any,
    demo: Path,
    openai_server: OpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,openai,resume")
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    def responder(request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply:
        stage, agent = stage_of(request), headers["x-agent-name"]
        if stage == "tasks":
            loop.call_soon_threadsafe(started.set)
            return ScriptedReply(content=recorded(stage, agent), delay_s=30)
        return answer_recorded(request, headers)

    openai_server.set_responder(responder)
    config = QUIET + openai_agents(openai_server) + '[plugins.resume]\npath = "resume.sqlite3"\n'
    shell = await make_shell(config=config)
    task = asyncio.create_task(shell.execute(f"/spec-auto {DEMO}"))
    await asyncio.wait_for(started.wait(), 30)  # a bound for a hang, not a timing check
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert f"cancelled at tasks; continue with: /spec-auto {DEMO} --resume" in output.text
    clear(output)
    assert await shell.execute(f"/history {DEMO} --json") == 0
    assert [r["status"] for r in json_out(output)["runs"]] == ["cancelled"]


async def test_a_halted_run_reads_well_in_its_lines_status_history_and_branches(
    make_shell: Any, output: Any, demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,replay,resume")
    shell = await make_shell(config=FAST)
    assert await shell.execute("/spec-auto SPEC-KIT-CONFLICT") == 3
    text = output.text
    assert "✗ audit: conflict" in text and "1 agreement," in text and "agreement(s)" not in text
    assert re.search(r"\d,\d{3} tok", text)
    run_id = re.search(r"^run (\w+) · branch", text, re.MULTILINE)
    assert run_id is not None and len(run_id.group(1)) == 8

    clear(output)
    assert await shell.execute("/spec-status") == 0
    table = output.text
    assert all(len(line) <= 80 for line in table.splitlines()), table
    times = re.findall(r"\d{4}-\d\d-\d\d[ T][\d:]+\S*", table)
    assert times and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", t) for t in times)
    assert re.search(r"\d{1,3},\d{3}", table)

    clear(output)
    assert await shell.execute("/history SPEC-KIT-CONFLICT") == 0
    assert run_id.group(1) in output.text
    assert "run(s)" not in output.text and "1 run" in output.text

    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from agentshell import CommandCompleter

    completer = CommandCompleter(shell)
    typed = "/branches SPEC-KIT-CONFLICT "
    offered = [c.text for c in completer.get_completions(Document(typed), CompleteEvent())]
    assert "prune" in offered
    for line in ("/branches SPEC-KIT-CONFLICT explode", "/branches SPEC-KIT-CONFLICT prune"):
        clear(output)
        assert await shell.execute(line) == 1
        assert "usage: /branches <SPEC-ID> [prune --keep N]" in output.errors
