"""The console sink's lines read well: compact token usage, rounded numbers, one line
per event (never ``total=input_tokens=...`` or ``duration_s=0.4540701920000174``)."""

from __future__ import annotations

from agentshell.agents import TokenUsage
from agentshell.sinks.console import ConsoleSink, format_event
from agentshell.telemetry import AgentCallFailed, SessionStopped
from speckit_consensus.events import PipelineStageCompleted
from speckit_metrics.events import BudgetAlert, MetricsTokens
from tests.telemetry_helpers import EXAMPLES


def test_token_usage_is_compact() -> None:
    event = MetricsTokens(
        spec_id="S",
        stage="plan",
        total=TokenUsage(input_tokens=8000, output_tokens=1100, total_tokens=9100),
        last_turn=TokenUsage(input_tokens=1200, output_tokens=300, cached_input_tokens=64),
        turn_count=3,
        estimated_next_prompt_tokens=9400,
        cost_usd=0.0312345,
    )
    line = format_event(event)
    assert "total=(in=8,000 out=1,100 cached=0)" in line
    assert "last_turn=(in=1,200 out=300 cached=64)" in line
    assert "estimated_next_prompt_tokens=9,400" in line
    assert "cost_usd=0.0312" in line
    assert "input_tokens" not in line


def test_floats_are_rounded_by_unit() -> None:
    assert format_event(PipelineStageCompleted(
        spec_id="S", stage="plan", status="ok", duration_s=0.4540701920000174
    )).endswith("duration_s=0.45")  # fmt: skip
    assert "duration_s=812.40" in format_event(SessionStopped(duration_s=812.4))
    line = format_event(BudgetAlert(threshold_pct=80, spent_usd=1.623456789, budget_usd=2.0))
    assert line == "threshold_pct=80 spent_usd=1.6235 budget_usd=2.0000"
    synth = format_event(EXAMPLES["consensus.synthesized"])
    assert "total_latency_ms=20,511 " in synth and "total_cost_usd=0.0310 " in synth
    failed = format_event(
        AgentCallFailed(
            call_id="c", agent="a", backend="openai", error_type="timeout", latency_ms=1234.567
        )
    )
    assert "1,235ms" in failed


def test_one_line_per_event_even_with_newlines_in_errors() -> None:
    written: list[str] = []
    sink = ConsoleSink(written.append)
    event = AgentCallFailed(
        call_id="c", agent="a", backend="openai", error_type="http", error="line one\nline two"
    )
    sink.handle_batch([event, *EXAMPLES.values()])
    lines = written[0].splitlines()
    assert len(lines) == 1 + len(EXAMPLES)
    assert lines[0].endswith("line one line two")
    assert all(line.startswith("[telemetry] ") for line in lines)
    # a text value with spaces stays one field
    halted = next(line for line in lines if "pipeline.halted" in line)
    assert 'reason="claude and gpt_pro disagree on 2 items"' in halted


def test_agent_call_lines_end_with_the_callers_labels() -> None:
    assert format_event(EXAMPLES["agent.call.started"]) == (
        "claude openai gpt-4o [SPEC-KIT-DEMO/plan]"
    )
    unlabelled = AgentCallFailed(call_id="c", agent="a", backend="b", error_type="t")
    assert "[" not in format_event(unlabelled)
