"""How /spec-auto and the stage commands report a run: a failed stage always halts (even
with ``halt_on = []``), a run without full consensus names the stages that were not ok,
a user's agent replacing a demo agent keeps its role, an unknown spec lists the known
ones, and each retry is one readable line. Real parts only: the replay backend with the
recorded demo answers and the loopback OpenAI server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.recordings import DEMO, recorded, stage_of
from tests.helpers.speckit import QUIET, STORE_AT_SCALE, answer_recorded, copy_spec, openai_agents
from tests.servers.openai_server import OpenAIServer, ScriptedReply, make_usage

FAST = STORE_AT_SCALE.format(scale=0)


@pytest.fixture
def demo(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for spec in (DEMO, "SPEC-KIT-CONFLICT"):
        copy_spec(isolated_env, spec)
    return isolated_env


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
        + openai_agents(openai_server)
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
        + openai_agents(openai_server)
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
        + openai_agents(openai_server)
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
