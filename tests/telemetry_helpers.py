"""One example of every telemetry event type (docs/telemetry.md shows these), and
small helpers shared by the telemetry tests."""

from __future__ import annotations

from agentshell.agents import TokenUsage
from agentshell.telemetry import (
    AgentCallFailed,
    AgentCallFinished,
    AgentCallRetry,
    AgentCallStarted,
    Event,
    PluginErrorEvent,
    SessionStarted,
    SessionStopped,
)
from agentshell_chat.events import (
    ChatTurnFinished,
    ChatTurnStarted,
    ConversationEnded,
    ConversationStarted,
)
from speckit_consensus.events import (
    ConsensusSynthesized,
    PipelineHalted,
    PipelineRunFinished,
    PipelineRunStarted,
    PipelineStageCompleted,
    PipelineStageStarted,
)
from speckit_device_login.events import AuthEvent
from speckit_faults.events import FaultInjected
from speckit_metrics.events import BudgetAlert, MetricsTokens

TS = 1767225600.0  # 2026-01-01T00:00:00Z
SESSION = "3f2a9c1d7e4b"
CALL = {
    "call_id": "a1b2c3d4",
    "agent": "claude",
    "backend": "openai",
    "model": "gpt-4o",
    "role": "synthesizer",
    "labels": {"spec_kit.spec_id": "SPEC-KIT-DEMO", "spec_kit.stage": "plan"},
    "trace_parent": "5b0e9a2c7d414f3e9c1a8b6d2e4f7a90",
}
_E = {"ts": TS, "session_id": SESSION}

EXAMPLES: dict[str, Event] = {
    e.type: e
    for e in [
        SessionStarted(**_E, version="0.1.0", plugins=["builtins", "openai", "jsonl"], mode="repl"),
        SessionStopped(**_E, duration_s=812.4, dropped_events=0),
        AgentCallStarted(**_E, **CALL),
        AgentCallRetry(
            **_E,
            **CALL,
            attempt=1,
            next_attempt=2,
            delay_s=1.7,
            error_type="rate_limited",
            error="429 Too Many Requests: retry after 1.5s",
        ),
        AgentCallFinished(
            **_E,
            **CALL,
            response_model="gpt-4o-2024-08-06",
            usage=TokenUsage(
                input_tokens=1200,
                cached_input_tokens=200,
                output_tokens=300,
                reasoning_output_tokens=0,
                total_tokens=1500,
            ),
            latency_ms=812.0,
            attempts=2,
            cost_usd=0.004,
        ),
        AgentCallFailed(
            **_E,
            **CALL,
            error_type="timeout",
            error="no answer within 120s",
            attempts=3,
            latency_ms=360512.0,
        ),
        FaultInjected(
            **_E,
            fault="rate_limit",
            agent="gemini",
            stage="plan",
            spec_id="SPEC-KIT-DEMO",
            attempt=1,
            remaining=1,
            reset_at="2026-01-01T00:00:02Z",
            trace_parent="5b0e9a2c7d414f3e9c1a8b6d2e4f7a90",
        ),
        PipelineRunStarted(
            **_E,
            spec_id="SPEC-KIT-DEMO",
            command="spec-auto",
            stages=["plan", "tasks", "implement", "validate", "audit", "unlock"],
            run_id="r-18",
            branch_id="SPEC-KIT-DEMO-20260101000000-1a2b3c4d",
        ),
        PipelineStageStarted(
            **_E,
            spec_id="SPEC-KIT-DEMO",
            stage="plan",
            run_id="r-18",
            branch_id="SPEC-KIT-DEMO-20260101000000-1a2b3c4d",
            trace_parent="5b0e9a2c7d414f3e9c1a8b6d2e4f7a90",
        ),
        ConsensusSynthesized(
            **_E,
            spec_id="SPEC-KIT-DEMO",
            stage="plan",
            status="ok",
            agreements=7,
            conflicts=0,
            agents=["gemini", "claude", "gpt_pro"],
            total_tokens=9100,
            total_latency_ms=20511.0,
            total_cost_usd=0.031,
            synthesis_path="evidence/consensus/SPEC-KIT-DEMO/spec-plan_20260101T000000Z_synthesis.json",
            trace_parent="5b0e9a2c7d414f3e9c1a8b6d2e4f7a90",
        ),
        PipelineStageCompleted(
            **_E,
            spec_id="SPEC-KIT-DEMO",
            stage="plan",
            status="ok",
            run_id="r-18",
            branch_id="SPEC-KIT-DEMO-20260101000000-1a2b3c4d",
            duration_s=20.9,
        ),
        PipelineHalted(
            **_E,
            spec_id="SPEC-KIT-DEMO",
            stage="tasks",
            status="conflict",
            reason="claude and gpt_pro disagree on 2 items",
            resume_command="/spec-auto SPEC-KIT-DEMO --from tasks",
            branch_id="SPEC-KIT-DEMO-20260101000000-1a2b3c4d",
        ),
        PipelineRunFinished(
            **_E,
            spec_id="SPEC-KIT-DEMO",
            run_id="r-18",
            branch_id="SPEC-KIT-DEMO-20260101000000-1a2b3c4d",
            status="halted",
            duration_s=62.7,
        ),
        MetricsTokens(
            **_E,
            spec_id="SPEC-KIT-DEMO",
            stage="plan",
            total=TokenUsage(input_tokens=8000, output_tokens=1100, total_tokens=9100),
            last_turn=TokenUsage(input_tokens=1200, output_tokens=300, total_tokens=1500),
            turn_count=3,
            estimated_next_prompt_tokens=9400,
            cost_usd=0.031,
        ),
        BudgetAlert(**_E, threshold_pct=80, spent_usd=1.62, budget_usd=2.0),
        ConversationStarted(**_E, conversation_id="9d17f539482c", agent="gpt"),
        ChatTurnStarted(
            **_E,
            conversation_id="9d17f539482c",
            branch_id="2c207672c55e",
            turn=3,
            agent="gpt",
            model="gpt-4o-mini",
            key="chat.turn:9d17f539482c:3:a1b2c3",
        ),
        ChatTurnFinished(
            **_E,
            conversation_id="9d17f539482c",
            turn=3,
            key="chat.turn:9d17f539482c:3:a1b2c3",
            status="ok",
            usage=TokenUsage(input_tokens=812, output_tokens=96, total_tokens=908),
            response_model="gpt-4o-mini-2024-07-18",
            cost_usd=0.00018,
        ),
        ConversationEnded(**_E, conversation_id="9d17f539482c", turns=3),
        AuthEvent(**_E, type="auth.login", provider="device_login", outcome="ok"),
        AuthEvent(**_E, type="auth.refresh", provider="device_login", outcome="ok"),
        AuthEvent(**_E, type="auth.logout", provider="device_login", outcome="ok"),
        PluginErrorEvent(
            **_E, plugin="metrics", hook="after_agent_call", error="KeyError: 'usage'"
        ),
    ]
}
