"""The otlp sink against a real OTLP/HTTP receiver on loopback (tests/servers): GenAI
span names and attributes, a consensus stage as the parent of its agent calls, the two
GenAI histograms, headers, and opentelemetry staying unimported until the sink is used."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from agentshell.agents import AgentRequest, TokenUsage
from agentshell.errors import ConfigError
from agentshell.telemetry import (
    AgentCallFailed,
    AgentCallFinished,
    AgentCallRetry,
    AgentCallStarted,
    ConsensusSynthesized,
)
from tests.conftest import ShellFactory
from tests.servers.openai_server import OpenAIServer, ScriptedReply, make_usage
from tests.servers.otlp_receiver import OTLPReceiver


def otlp_config(receiver: OTLPReceiver, extra: str = "") -> str:
    return (
        '[telemetry]\nsinks = ["otlp"]\n'
        f'[telemetry.otlp]\nendpoint = "{receiver.endpoint}"\nservice_name = "agentshell-test"\n'
        + extra
    )


def stage_events() -> list[Any]:
    labels: dict[str, Any] = {
        "backend": "openai", "spec_id": "SPEC-1", "stage": "plan", "trace_parent": "tp-1",
    }  # fmt: skip
    return [
        AgentCallStarted(call_id="c1", agent="claude", model="gpt-4o", ts=1000.0, **labels),
        AgentCallStarted(call_id="c2", agent="gemini", model="gemini-2.5", ts=1000.0, **labels),
        AgentCallRetry(
            call_id="c1",
            agent="claude",
            model="gpt-4o",
            ts=1000.5,
            attempt=1,
            next_attempt=2,
            delay_s=0.5,
            error_type="rate_limited",
            **labels,
        ),
        AgentCallFinished(
            call_id="c1",
            agent="claude",
            model="gpt-4o",
            response_model="gpt-4o-2024-08-06",
            ts=1002.0,
            latency_ms=2000.0,
            attempts=2,
            cost_usd=0.004,
            usage=TokenUsage(
                input_tokens=1200,
                cached_input_tokens=200,
                output_tokens=300,
                reasoning_output_tokens=50,
                total_tokens=1500,
            ),
            **labels,
        ),
        AgentCallFailed(
            call_id="c2",
            agent="gemini",
            model="gemini-2.5",
            ts=1003.0,
            latency_ms=3000.0,
            error_type="timeout",
            error="no answer within 3s",
            attempts=3,
            **labels,
        ),
        ConsensusSynthesized(
            spec_id="SPEC-1",
            stage="plan",
            status="degraded",
            agreements=3,
            conflicts=0,
            agents=["claude"],
            missing_agents=["gemini"],
            total_tokens=1500,
            ts=1004.0,
            trace_parent="tp-1",
        ),
    ]


def test_importing_the_sink_does_not_import_opentelemetry() -> None:
    code = (
        "import sys, agentshell.sinks.otlp, agentshell.sinks.jsonl, agentshell.telemetry;"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_stage_and_agent_spans_and_metrics_arrive(
    make_shell: ShellFactory, otlp_receiver: OTLPReceiver
) -> None:
    shell = await make_shell(
        config=otlp_config(otlp_receiver, '[telemetry.otlp.providers]\nclaude = "anthropic"\n')
    )
    assert "opentelemetry.sdk.trace" in sys.modules
    for event in stage_events():
        shell.telemetry.emit(event)
    assert await shell.execute("/telemetry off") == 0  # closes the sink: flushes and exports
    spans = {s["name"]: s for s in otlp_receiver.wait_for_spans(3)}
    assert set(spans) == {"invoke_agent plan", "chat gpt-4o", "chat gemini-2.5"}
    stage, ok, failed = spans["invoke_agent plan"], spans["chat gpt-4o"], spans["chat gemini-2.5"]

    # the stage is the parent of both calls, in one trace
    assert stage["parent_span_id"] is None
    assert ok["parent_span_id"] == failed["parent_span_id"] == stage["span_id"]
    assert ok["trace_id"] == failed["trace_id"] == stage["trace_id"]
    assert stage["attributes"]["spec_kit.consensus.status"] == "degraded"
    assert stage["start_time_unix_nano"] == 1000 * 10**9
    assert stage["end_time_unix_nano"] == 1004 * 10**9

    assert ok["kind"] == "CLIENT" and ok["status"]["code"] == "UNSET"
    assert ok["resource"]["service.name"] == "agentshell-test"
    assert (ok["start_time_unix_nano"], ok["end_time_unix_nano"]) == (1000 * 10**9, 1002 * 10**9)
    attrs = ok["attributes"]
    assert {k: attrs[k] for k in attrs if k.startswith("gen_ai.")} == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.agent.name": "claude",
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 300,
        "gen_ai.usage.cache_read.input_tokens": 200,
        "gen_ai.usage.reasoning.output_tokens": 50,
        "gen_ai.request.attempts": 2,
    }
    assert [e["name"] for e in ok["events"]] == ["retry"]
    assert ok["events"][0]["attributes"]["error.type"] == "rate_limited"

    assert failed["status"]["code"] == "ERROR"
    assert failed["attributes"]["error.type"] == "timeout"
    assert failed["attributes"]["gen_ai.provider.name"] == "openai"  # the backend by default

    tokens = otlp_receiver.wait_for_metric("gen_ai.client.token.usage")
    assert {p["unit"] for p in tokens} == {"{token}"}
    by_type = {p["attributes"]["gen_ai.token.type"]: p for p in tokens}
    assert by_type["input"]["sum"] == 1200 and by_type["output"]["sum"] == 300
    assert by_type["input"]["attributes"]["gen_ai.request.model"] == "gpt-4o"
    durations = otlp_receiver.wait_for_metric("gen_ai.client.operation.duration")
    assert {p["unit"] for p in durations} == {"s"}
    assert sorted(p["sum"] for p in durations) == [2.0, 3.0]
    assert {p["attributes"].get("error.type") for p in durations} == {None, "timeout"}


async def test_real_agent_calls_become_spans(
    make_shell: ShellFactory, otlp_receiver: OTLPReceiver, openai_server: OpenAIServer
) -> None:
    openai_server.script("gpt-test", [ScriptedReply(content="hi", usage=make_usage(11, 7))])
    config = otlp_config(otlp_receiver) + (
        '[agents.a]\nbackend = "openai"\nmodel = "gpt-test"\n'
        f'base_url = "{openai_server.base_url}"\n'
    )
    shell = await make_shell(config=config)
    context = {"spec_id": "S", "stage": "tasks", "trace_parent": "run-1"}
    await shell.runner.run(shell.agents["a"], AgentRequest(prompt="hello"), context)
    shell.telemetry.emit(
        ConsensusSynthesized(spec_id="S", stage="tasks", status="ok", trace_parent="run-1")
    )
    shell.telemetry.remove_sink("otlp", timeout=10)
    spans = {s["name"]: s for s in otlp_receiver.wait_for_spans(2)}
    assert spans["chat gpt-test"]["parent_span_id"] == spans["invoke_agent tasks"]["span_id"]
    attrs = spans["chat gpt-test"]["attributes"]
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)
    assert attrs["gen_ai.agent.name"] == "a"


async def test_headers_are_sent_from_secrets(
    make_shell: ShellFactory, otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTLP_TEST_TOKEN", "tok-5c1b0e")
    shell = await make_shell(
        config=otlp_config(
            otlp_receiver, '[telemetry.otlp.headers]\nauthorization = { env = "OTLP_TEST_TOKEN" }\n'
        )
    )
    shell.telemetry.emit(stage_events()[3])
    shell.telemetry.remove_sink("otlp", timeout=10)
    otlp_receiver.wait_for_spans(1)
    headers = [{k.lower(): v for k, v in h.items()} for _, _, h in otlp_receiver.requests]
    assert headers and all(h.get("authorization") == "tok-5c1b0e" for h in headers)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('protocol = "grpc"', "only 'http/protobuf' is supported"),
        ('endpoint = "localhost:4318"', "endpoint must be an http"),
        ('headers = { x = { env = "UNSET_VAR_FOR_TEST" } }', "UNSET_VAR_FOR_TEST"),
    ],
)
async def test_bad_settings_are_clear_errors(
    make_shell: ShellFactory, setting: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        await make_shell(config=f'[telemetry]\nsinks = ["otlp"]\n[telemetry.otlp]\n{setting}\n')


async def test_unreachable_collector_is_reported_once_and_does_not_hang_close(
    make_shell: ShellFactory, output: Any
) -> None:
    shell = await make_shell(
        config='[telemetry]\nsinks = ["otlp"]\n[telemetry.otlp]\n'
        'endpoint = "http://127.0.0.1:9"\ntimeout = 0.5\nclose_timeout_s = 0.5\n'
    )
    for event in stage_events():
        shell.telemetry.emit(event)
    sink = shell.telemetry._workers[0].sink
    shell.telemetry.close(timeout=3)
    assert shell.telemetry.sink_names == []
    assert sink.export_log.count >= 1  # the SDK did try, and failed
    assert output.errors.count("telemetry sink otlp: ") == 1
    assert "Failed to export" in (shell.telemetry.retired[0].last_error or "")
