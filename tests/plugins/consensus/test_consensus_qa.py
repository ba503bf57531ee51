"""Regressions from the QA pass over /spec-auto, /resume, /spec-status and /branches:
each test failed before its fix. Real parts only: the replay backend with the recorded
demo answers, the loopback OpenAI server, the real SQLite resume store."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from agentshell.agents import AgentCall, AgentResponse
from agentshell.plugins import hookimpl
from speckit_consensus.markdown import strip_meta
from speckit_consensus.stages import STAGES
from tests.helpers.paths import REPO
from tests.helpers.recordings import DEMO, recorded, stage_of
from tests.servers.openai_server import OpenAIServer, ScriptedReply, make_usage

QUIET = "[telemetry]\nsinks = []\n\n[retry]\nattempts = 1\n\n"  # no sinks, no retries
FAST = (
    QUIET + '[plugins.resume]\npath = "resume.sqlite3"\n\n'
    "[plugins.consensus]\ndemo_latency_scale = 0\n"
)


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
        shutil.copytree(REPO / "docs" / spec, isolated_env / "docs" / spec)
    return isolated_env


def answer_recorded(request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply:
    """A responder: each agent gives its recorded answer for the stage asked."""
    return ScriptedReply(content=recorded(stage_of(request), headers["x-agent-name"]))


def clear(output: Any) -> None:
    for buffer in (output.out_buffer, output.err_buffer):
        buffer.seek(0)
        buffer.truncate()


def _json_out(output: Any) -> Any:
    text = output.text
    return json.loads(text[text.index("{") :])


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
    plan = _json_out(output)["stages"]
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


def _openai_agents(server: OpenAIServer, roles: bool = True) -> str:
    names = {"gemini": "researcher", "claude": "synthesizer", "gpt_pro": "aggregator"}
    return "".join(
        f'[agents.{name}]\nbackend = "openai"\nbase_url = "{server.base_url}"\n'
        f'model = "{name}-model"\n' + (f'role = "{role}"\n' if roles else "") + "\n"
        for name, role in names.items()
    )


async def test_a_failed_stage_always_halts_even_when_halt_on_is_empty(
    make_shell: Any,
    output: Any,
    demo: Path,
    openai_server: OpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,openai,metrics")
    openai_server.set_responder(
        lambda request, headers: ScriptedReply(
            content=recorded(stage_of(request), headers["x-agent-name"]),
            usage=make_usage(1000, 1000),
        )
    )
    prices = "".join(
        f'"{n}-model" = {{input_per_mtok = 10, output_per_mtok = 10}}\n'
        for n in ("gemini", "claude", "gpt_pro")
    )
    config = (
        QUIET
        + _openai_agents(openai_server)
        + "[plugins.consensus]\nhalt_on = []\n\n"
        + "[plugins.metrics]\nbudget_usd = 0.05\nhalt_on_budget = true\n\n"
        + f"[plugins.metrics.prices]\n{prices}"
    )
    shell = await make_shell(config=config)
    # plan spends $0.06 (3 calls x 2,000 tokens at $10/Mtok), over the $0.05 budget:
    # every call of tasks is refused
    assert await shell.execute(f"/spec-auto {DEMO}") == 3
    text = output.text
    assert "✓ plan: ok" in text
    assert "✗ tasks: failed — 0/3 agents valid" in text
    assert "halted at tasks: consensus failed" in text
    assert "resume with: /spec-auto SPEC-KIT-DEMO --from tasks" in text
    assert "▶ implement" not in text and "reached consensus" not in text
    assert openai_server.call_count == 3  # nothing reached the server after the refusal


async def test_halt_on_empty_summary_names_the_stages_that_were_not_ok(
    make_shell: Any,
    output: Any,
    demo: Path,
    openai_server: OpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,openai")

    def responder(request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply:
        stage, agent = stage_of(request), headers["x-agent-name"]
        if stage == "validate" and agent == "gemini":
            return ScriptedReply(content="not json")
        return answer_recorded(request, headers)

    openai_server.set_responder(responder)
    config = (
        QUIET
        + _openai_agents(openai_server)
        + '[plugins.consensus]\nhalt_on = []\nagents = ["gemini", "claude", "gpt_pro"]\n'
    )
    shell = await make_shell(config=config)
    assert await shell.execute(f"/spec-auto {DEMO} --from validate") == 0
    assert "! validate: degraded" in output.text
    assert "all stages" not in output.text
    assert "! SPEC-KIT-DEMO: finished without full consensus (validate degraded" in output.text


async def test_a_user_agent_replacing_a_demo_agent_keeps_its_role(
    make_shell: Any,
    output: Any,
    demo: Path,
    openai_server: OpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,openai,replay,agents")
    openai_server.set_responder(answer_recorded)
    config = (
        QUIET + f'[agents.gpt_pro]\nbackend = "openai"\nbase_url = "{openai_server.base_url}"\n'
        'model = "gpt-5"\n\n[plugins.consensus]\ndemo_latency_scale = 0\n'
    )
    shell = await make_shell(config=config)
    assert shell.agents["gpt_pro"].role == "aggregator"
    assert shell.agents["gpt_pro"].backend == "openai"
    assert await shell.execute(f"/spec-plan {DEMO}") == 0, output.errors
    assert "✓ plan: ok — 3/3 agents valid" in output.text
    assert "no aggregator" not in output.text
    assert [c.agent for c in openai_server.calls] == ["gpt_pro"]
    await shell.reload_config()  # /config reload rebuilds the agents: the role stays
    assert shell.agents["gpt_pro"].role == "aggregator"
    assert await shell.execute("/agents") == 0, output.errors
    assert re.search(r"gpt_pro .*openai .*aggregator", output.text)
    # a role the user sets wins over the default's
    shell2 = await make_shell(config=config.replace('model = "gpt-5"\n', 'role = "coder"\n'))
    assert shell2.agents["gpt_pro"].role == "coder"


async def test_spec_status_of_a_missing_spec_is_an_error_listing_the_specs(
    make_shell: Any, output: Any, demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,replay")
    shell = await make_shell(config=FAST)
    assert await shell.execute("/spec-status NOPE") == 1
    assert "no spec 'NOPE'" in output.errors
    assert "available: SPEC-KIT-CONFLICT, SPEC-KIT-DEMO" in output.errors
    assert "—" not in output.text
    assert await shell.execute("/spec-auto NOPE") == 1
    assert output.errors.count("available: SPEC-KIT-CONFLICT, SPEC-KIT-DEMO") == 2


async def test_one_readable_retry_line_per_retry(
    make_shell: Any,
    output: Any,
    demo: Path,
    openai_server: OpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,openai")
    seen: dict[str, int] = {}

    def responder(request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply:
        agent = headers["x-agent-name"]
        seen[agent] = seen.get(agent, 0) + 1
        if agent == "claude" and seen[agent] == 1:
            return ScriptedReply(status=500, error_message="upstream reset")
        return answer_recorded(request, headers)

    openai_server.set_responder(responder)
    config = (
        "[telemetry]\nsinks = []\n\n[retry]\nattempts = 4\nbase_delay_s = 0\nmax_delay_s = 0\n\n"
        + _openai_agents(openai_server)
    )
    shell = await make_shell(config=config)
    assert await shell.execute(f"/spec-plan {DEMO}") == 0, output.errors
    everything = output.text + output.errors
    lines = [line for line in everything.splitlines() if "retrying" in line]
    assert len(lines) == 1, lines
    assert re.fullmatch(
        r"  plan · claude \(synthesizer\) retrying in \d+\.\ds \(attempt 2/4\): .*upstream reset.*",
        lines[0],
    ), lines[0]
    assert "after" not in lines[0]


async def test_polish_markers_plurals_status_table_and_branches(
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

    from agentshell.repl import CommandCompleter

    completer = CommandCompleter(shell)
    typed = "/branches SPEC-KIT-CONFLICT "
    offered = [c.text for c in completer.get_completions(Document(typed), CompleteEvent())]
    assert "prune" in offered
    for line in ("/branches SPEC-KIT-CONFLICT explode", "/branches SPEC-KIT-CONFLICT prune"):
        clear(output)
        assert await shell.execute(line) == 1
        assert "usage: /branches <SPEC-ID> [prune --keep N]" in output.errors


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
    config = QUIET + _openai_agents(openai_server) + '[plugins.resume]\npath = "resume.sqlite3"\n'
    shell = await make_shell(config=config)
    task = asyncio.create_task(shell.execute(f"/spec-auto {DEMO}"))
    await asyncio.wait_for(started.wait(), 30)  # a bound for a hang, not a timing check
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert f"cancelled at tasks; continue with: /spec-auto {DEMO} --resume" in output.text
    clear(output)
    assert await shell.execute(f"/history {DEMO} --json") == 0
    assert [r["status"] for r in _json_out(output)["runs"]] == ["cancelled"]
