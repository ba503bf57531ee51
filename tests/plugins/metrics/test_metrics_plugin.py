"""The metrics plugin in a real shell, against the loopback OpenAI-protocol server:
per-agent cost from each call's own model, a retried call charged once, cached replays
free, budget alerts once each, halting, /metrics, the status segment and events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage, calc_price

from agentshell import (
    AgentCall,
    AgentCallFinished,
    AgentCallRetry,
    AgentRequest,
    AgentResponse,
    FatalAgentError,
    TokenUsage,
    hookimpl,
)
from speckit_metrics.events import BudgetAlert, MetricsTokens
from tests.helpers.events import ListSinkPlugin
from tests.servers.openai_server import OpenAIServer, ScriptedReply, make_usage

pytestmark = pytest.mark.e2e


class CachePlugin:
    """Answers calls of agent "cached" from a cache, as the resume plugin does."""

    __name__ = "test_cache"

    @hookimpl
    def before_agent_call(self, call: AgentCall) -> AgentResponse | None:
        if call.agent.name != "cached":
            return None
        usage = TokenUsage(input_tokens=5000, output_tokens=500, total_tokens=5500)
        return AgentResponse(agent="cached", content="{}", usage=usage, model="gpt-4o")


def config(server: OpenAIServer, extra: str = "") -> str:
    agents = "".join(
        f"""
[agents.{name}]
backend = "openai"
model = "{model}"
base_url = "{server.base_url}"
"""
        for name, model in (("big", "gpt-4o"), ("small", "gpt-4o-mini"), ("cached", "gpt-4o"))
    )
    return f"""
[retry]
attempts = 5
base_delay_s = 0.01
rate_limit_jitter_s = 0

[telemetry]
sinks = ["list"]
{agents}
{extra}
"""


async def metrics_json(shell: Any, output: Any) -> dict[str, Any]:
    """Run /metrics --json and parse what it printed (other lines came before it)."""
    start = len(output.text)
    assert await shell.execute("/metrics --json") == 0
    report: dict[str, Any] = json.loads(output.text[start:])
    return report


def price(model: str, inp: int, cached: int, out: int) -> float:
    usage = Usage(input_tokens=inp, cache_read_tokens=cached, output_tokens=out)
    return float(calc_price(usage, model_ref=model).total_price)


async def test_fan_out_costs_each_agent_by_its_own_model_and_charges_a_retry_once(
    make_shell: Any, openai_server: OpenAIServer, output: Any
) -> None:
    openai_server.script(
        "big", [ScriptedReply(content="A", usage=make_usage(12_000, 800, cached_tokens=2_000))]
    )
    openai_server.script(
        "small",
        [
            ScriptedReply(status=429, error_message="slow down", headers={"Retry-After": "0"}),
            ScriptedReply(content="B", usage=make_usage(30_000, 4_000, reasoning_tokens=100)),
        ],
    )
    sinks = ListSinkPlugin()
    shell = await make_shell(plugins=[sinks], config=config(openai_server))
    agents = [shell.agents["big"], shell.agents["small"]]
    outcomes = await shell.runner.run_many(
        agents, AgentRequest(prompt="plan it"), {"spec_id": "SPEC-1", "stage": "plan"}
    )
    assert all(o.ok for o in outcomes), [str(o.error) for o in outcomes]
    big_cost = price("gpt-4o", 12_000, 2_000, 800)
    small_cost = price("gpt-4o-mini", 30_000, 0, 4_000)
    by_agent = {o.agent.name: o.response for o in outcomes}
    assert by_agent["big"] is not None and by_agent["small"] is not None
    assert by_agent["big"].cost_usd == pytest.approx(big_cost)
    assert by_agent["small"].cost_usd == pytest.approx(small_cost)
    assert by_agent["small"].attempts == 2
    assert openai_server.count_for("small") == 2  # the server saw the retry...

    report = await metrics_json(shell, output)
    agents_report = report["agents"]
    assert agents_report["big"]["cost_usd"] == pytest.approx(big_cost)
    assert agents_report["small"]["cost_usd"] == pytest.approx(small_cost)
    assert agents_report["small"]["calls"] == 1  # ...and it was charged once
    assert report["session"]["cost_usd"] == pytest.approx(big_cost + small_cost)
    assert report["session"]["turn_count"] == 2
    assert report["session"]["estimated_next_prompt_tokens"] == (10_000 + 30_000) // 2
    stage = report["stages"][0]
    assert (stage["spec_id"], stage["stage"]) == ("SPEC-1", "plan")
    assert stage["cost_usd"] == pytest.approx(big_cost + small_cost)
    assert agents_report["big"]["context_utilisation"] == pytest.approx(10_800 / 128_000)

    assert shell.telemetry.flush(30)  # returns once every sink has caught up
    finished = {e.agent: e for e in sinks.sink.of(AgentCallFinished)}
    assert finished["small"].cost_usd == pytest.approx(small_cost)
    assert finished["big"].cost_usd == pytest.approx(big_cost)
    assert [e.agent for e in sinks.sink.of(AgentCallRetry)] == ["small"]

    status = shell.status_text()
    assert f"${big_cost + small_cost:.4f}" in status and "tokens 46.8k" in status


async def test_unknown_model_shows_price_unknown_and_override_prices_it(
    make_shell: Any, openai_server: OpenAIServer, output: Any
) -> None:
    openai_server.default = ScriptedReply(usage=make_usage(1_000_000, 1_000_000))
    extra = """
[agents.house]
backend = "openai"
model = "house-model-1"
base_url = "BASE"

[agents.odd]
backend = "openai"
model = "odd-model-2"
base_url = "BASE"

[plugins.metrics.prices.house-model-1]
input_per_mtok = 1.5
output_per_mtok = 2.5
""".replace("BASE", openai_server.base_url)
    shell = await make_shell(plugins=[ListSinkPlugin()], config=config(openai_server, extra))
    outcomes = await shell.runner.run_many(
        [shell.agents["house"], shell.agents["odd"]], AgentRequest(prompt="x")
    )
    responses = {o.agent.name: o.response for o in outcomes}
    assert responses["house"] is not None and responses["odd"] is not None
    assert responses["house"].cost_usd == pytest.approx(4.0)
    assert responses["odd"].cost_usd is None
    assert await shell.execute("/metrics") == 0
    assert "price unknown" in output.text
    assert "price unknown" in shell.status_text()


async def test_cached_replays_cost_nothing_and_count_as_replays(
    make_shell: Any, openai_server: OpenAIServer, output: Any
) -> None:
    sinks = ListSinkPlugin()
    shell = await make_shell(plugins=[sinks, CachePlugin()], config=config(openai_server))
    response = await shell.runner.run(shell.agents["cached"], AgentRequest(prompt="x"))
    assert response.cached and response.cost_usd == 0.0
    assert openai_server.call_count == 0
    report = await metrics_json(shell, output)
    assert report["agents"]["cached"]["replays"] == 1
    assert report["agents"]["cached"]["calls"] == 0
    assert report["session"]["replay_updates"] == 1
    assert report["session"]["turn_count"] == 0
    assert report["budget"]["spent_usd"] == 0


async def test_budget_alerts_once_each_and_halt(
    make_shell: Any, openai_server: OpenAIServer, output: Any
) -> None:
    openai_server.default = ScriptedReply(usage=make_usage(100_000, 10_000))
    one_call = price("gpt-4o", 100_000, 0, 10_000)  # 0.35 USD
    extra = f"""
[plugins.metrics]
budget_usd = {one_call * 2.1}
halt_on_budget = true
"""
    sinks = ListSinkPlugin()
    shell = await make_shell(plugins=[sinks], config=config(openai_server, extra))
    big = shell.agents["big"]
    await shell.runner.run(big, AgentRequest(prompt="1"))
    await shell.runner.run(big, AgentRequest(prompt="2"))  # 95 %: 80 and 90 are crossed
    # one call crossing two thresholds: one warning (the highest), both events
    assert output.errors.count("budget 80%") == 0 and output.errors.count("budget 90%") == 1
    assert "budget 100%" not in output.errors
    await shell.runner.run(big, AgentRequest(prompt="3"))  # over: 100 fires once
    assert output.errors.count("budget 100%") == 1
    with pytest.raises(FatalAgentError, match="budget exceeded"):
        await shell.runner.run(big, AgentRequest(prompt="4"))
    assert openai_server.call_count == 3  # the refused call never reached the server
    assert output.errors.count("budget 80%") == 0
    assert output.errors.count("budget 90%") == 1
    assert shell.telemetry.flush(30)  # returns once every sink has caught up
    assert [e.threshold_pct for e in sinks.sink.of(BudgetAlert)] == [80, 90, 100]


async def test_metrics_tokens_after_every_stage(
    make_shell: Any, openai_server: OpenAIServer
) -> None:
    openai_server.default = ScriptedReply(usage=make_usage(1000, 100))
    sinks = ListSinkPlugin()
    shell = await make_shell(plugins=[sinks], config=config(openai_server))
    agents = [shell.agents["big"], shell.agents["small"]]
    for stage in ("plan", "tasks"):
        ctx = {"spec_id": "SPEC-9", "stage": stage, "trace_parent": f"tp-{stage}"}
        await shell.runner.run_many(agents, AgentRequest(prompt=stage), ctx)
    assert shell.telemetry.flush(30)  # returns once every sink has caught up
    first = sinks.sink.of(MetricsTokens)
    assert [(e.spec_id, e.stage, e.turn_count) for e in first] == [("SPEC-9", "plan", 2)]
    await shell.stop()  # the last stage's event is sent when the shell stops
    events = sinks.sink.of(MetricsTokens)
    assert [(e.stage, e.turn_count) for e in events] == [("plan", 2), ("tasks", 4)]
    last = events[-1]
    assert last.total.input_tokens == 4000 and last.last_turn.input_tokens == 1000
    assert last.estimated_next_prompt_tokens == 1000
    assert last.cost_usd == pytest.approx(
        2 * price("gpt-4o", 1000, 0, 100) + 2 * price("gpt-4o-mini", 1000, 0, 100)
    )


async def test_metrics_table_and_reset(
    make_shell: Any, openai_server: OpenAIServer, output: Any
) -> None:
    openai_server.default = ScriptedReply(usage=make_usage(2000, 100))
    shell = await make_shell(plugins=[ListSinkPlugin()], config=config(openai_server))
    await shell.runner.run(shell.agents["big"], AgentRequest(prompt="x"), {"stage": "plan"})
    assert await shell.execute("/metrics") == 0
    for heading in ("Session", "Per agent", "Per stage", "big", "gpt-4o", "est. next prompt"):
        assert heading in output.text
    assert "4,000 (default)" not in output.text  # a turn was seen: a real estimate
    assert await shell.execute("/metrics reset") == 0
    status = shell.status_text()
    assert "tokens 0 · $0.00" in status and "next ~" not in status  # no made-up 4.0k
    start = len(output.text)
    assert await shell.execute("/metrics") == 0
    assert "4,000 (default)" in output.text[start:]
    assert await shell.execute("/metrics bogus") == 1
    assert "must be one of reset" in output.errors


def write_recording(cwd: Path, agent: str, model: str) -> None:
    """A recorded answer for the real ``replay`` backend (the demo's agents)."""
    target = cwd / ".agentshell" / "recordings" / f"{agent}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    usage = {"prompt_tokens": 3000, "completion_tokens": 300, "total_tokens": 3300}
    recording = {"agent": agent, "model": model, "content": {"ok": True}, "usage": usage}
    target.write_text(json.dumps(recording), encoding="utf-8")


async def test_recorded_answers_show_as_recorded_never_as_zero(
    make_shell: Any, openai_server: OpenAIServer, output: Any
) -> None:
    # gpt-4o has a price: were the recording priced, it would cost something
    write_recording(Path.cwd(), "rec", "gpt-4o")
    openai_server.default = ScriptedReply(usage=make_usage(1000, 100))
    extra = '[agents.rec]\nbackend = "replay"\nmodel = "gpt-4o"\nhonour_latency = false\n'
    sinks = ListSinkPlugin()
    shell = await make_shell(plugins=[sinks], config=config(openai_server, extra))
    assert "next ~" not in shell.status_text()  # no estimate before the first turn
    ctx = {"spec_id": "SPEC-1", "stage": "plan"}
    response = await shell.runner.run(shell.agents["rec"], AgentRequest(prompt="x"), ctx)
    assert response.recorded and response.cost_usd is None  # unknown, not a free call
    assert "$0.00 (+recorded)" in shell.status_text()
    assert "next ~3.0k" in shell.status_text()

    report = await metrics_json(shell, output)
    rec = report["agents"]["rec"]
    assert (rec["recorded_calls"], rec["calls"], rec["cost_usd"]) == (1, 1, None)
    assert rec["usage"]["input_tokens"] == 3000  # its tokens still count
    assert report["session"]["recorded_calls"] == 1 and report["session"]["cost_usd"] is None
    assert report["stages"][0]["recorded_calls"] == 1
    assert report["stages"][0]["agents"]["rec"]["recorded_calls"] == 1
    assert await shell.execute("/metrics") == 0
    rec_row = next(line for line in output.text.splitlines() if "│ rec " in line)
    assert "recorded" in rec_row and "$0" not in rec_row

    live = await shell.runner.run(shell.agents["big"], AgentRequest(prompt="y"), ctx)
    expected = price("gpt-4o", 1000, 0, 100)
    assert live.cost_usd == pytest.approx(expected)
    report = await metrics_json(shell, output)
    assert report["session"]["recorded_calls"] == 1
    assert report["session"]["cost_usd"] == pytest.approx(expected)  # recordings cost 0
    assert f"${expected:.4f} (+recorded)" in shell.status_text()
    assert shell.telemetry.flush(30)  # returns once every sink has caught up
    finished = {e.agent: e.cost_usd for e in sinks.sink.of(AgentCallFinished)}
    assert finished["rec"] is None and finished["big"] == pytest.approx(expected)


async def test_small_budgets_are_not_rounded_to_zero(
    make_shell: Any, openai_server: OpenAIServer, output: Any
) -> None:
    openai_server.default = ScriptedReply(usage=make_usage(1000, 100))
    extra = "[plugins.metrics]\nbudget_usd = 0.001\nhalt_on_budget = true\n"
    shell = await make_shell(plugins=[ListSinkPlugin()], config=config(openai_server, extra))
    await shell.runner.run(shell.agents["big"], AgentRequest(prompt="x"))
    spent = price("gpt-4o", 1000, 0, 100)
    assert f"budget 100%: ${spent:.4f} spent of $0.001 —" in output.errors
    with pytest.raises(FatalAgentError, match=r"spent of \$0\.001 \(raise"):
        await shell.runner.run(shell.agents["big"], AgentRequest(prompt="y"))
    assert await shell.execute("/metrics") == 0
    assert f"${spent:.4f} of $0.001 (" in output.text
