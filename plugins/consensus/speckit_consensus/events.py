"""The consensus plugin's telemetry events, and what each means for a trace.

One ``/spec-auto`` (or ``/spec-<stage>``) run is one trace::

    invoke_workflow spec-auto          pipeline.run_started ... pipeline.run_finished
    ├── invoke_agent plan              pipeline.stage_started ... consensus.synthesized
    │   ├── chat gpt-4o                agent.call.* whose context trace_parent is the
    │   └── chat gemini-2.5            stage's (the host maps those)
    └── invoke_agent tasks ...

The ``spec_kit.*`` attribute names are this plugin's; the host's otlp sink applies the
span operations without knowing them (:mod:`agentshell.telemetry.spans`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from agentshell.telemetry import (
    AddSpanEvent,
    AttributeValue,
    EndSpan,
    Event,
    SpanOp,
    StartSpan,
)

SPEC_ID = "spec_kit.spec_id"
STAGE = "spec_kit.stage"
RUN_ID = "spec_kit.run_id"
BRANCH_ID = "spec_kit.branch_id"


def run_key(run_id: str) -> str:
    """The span key of a run (stage spans hang under it)."""
    return f"spec_kit.run:{run_id}"


def call_labels(spec_id: str, stage: str) -> dict[str, str | int | float | bool]:
    """The labels of a stage's agent calls (``AgentRequest.labels``): in every
    ``agent.call.*`` event and on each call's span."""
    return {SPEC_ID: spec_id, STAGE: stage}


class PipelineRunStarted(Event):
    type: Literal["pipeline.run_started"] = "pipeline.run_started"
    spec_id: str
    command: str  # "spec-auto", "spec-plan", ...
    stages: list[str] = Field(default_factory=list)  # the stages it will run, in order
    run_id: str
    branch_id: str

    def span_ops(self) -> Sequence[SpanOp]:
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "invoke_workflow",
            SPEC_ID: self.spec_id,
            RUN_ID: self.run_id,
            BRANCH_ID: self.branch_id,
            "spec_kit.command": self.command,
            "spec_kit.stages": self.stages,
        }
        name = f"invoke_workflow {self.command}"
        return (StartSpan(key=run_key(self.run_id), name=name, attributes=attributes),)


class PipelineRunFinished(Event):
    type: Literal["pipeline.run_finished"] = "pipeline.run_finished"
    spec_id: str
    run_id: str
    branch_id: str
    status: Literal["ok", "halted", "cancelled", "failed"]
    duration_s: float = 0.0

    def span_ops(self) -> Sequence[SpanOp]:
        error = "the run failed" if self.status == "failed" else None
        attributes = {"spec_kit.run.status": self.status}
        return (EndSpan(key=run_key(self.run_id), attributes=attributes, error=error),)


class PipelineStageStarted(Event):
    type: Literal["pipeline.stage_started"] = "pipeline.stage_started"
    spec_id: str
    stage: str
    run_id: str
    branch_id: str
    trace_parent: str  # the agent calls' context trace_parent: this stage run's span

    def span_ops(self) -> Sequence[SpanOp]:
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": self.stage,
            SPEC_ID: self.spec_id,
            STAGE: self.stage,
            RUN_ID: self.run_id,
            BRANCH_ID: self.branch_id,
        }
        span = StartSpan(
            key=self.trace_parent,
            name=f"invoke_agent {self.stage}",
            parent=run_key(self.run_id),
            attributes=attributes,
        )
        return (span,)


class ConsensusSynthesized(Event):
    type: Literal["consensus.synthesized"] = "consensus.synthesized"
    spec_id: str
    stage: str
    status: Literal["ok", "degraded", "conflict", "failed"]
    agreements: int = 0
    conflicts: int = 0
    agents: list[str] = Field(default_factory=list)
    missing_agents: list[str] = Field(default_factory=list)
    total_tokens: int = 0
    total_latency_ms: float = 0.0
    total_cost_usd: float | None = None
    synthesis_path: str | None = None
    trace_parent: str | None = None

    def span_ops(self) -> Sequence[SpanOp]:
        if not self.trace_parent:
            return ()
        attributes: dict[str, AttributeValue] = {
            "spec_kit.consensus.status": self.status,
            "spec_kit.consensus.agreements": self.agreements,
            "spec_kit.consensus.conflicts": self.conflicts,
            "spec_kit.consensus.agents": self.agents,
            "spec_kit.consensus.total_tokens": self.total_tokens,
        }
        error = "quorum not met" if self.status == "failed" else None
        return (EndSpan(key=self.trace_parent, attributes=attributes, error=error),)


class PipelineStageCompleted(Event):
    type: Literal["pipeline.stage_completed"] = "pipeline.stage_completed"
    spec_id: str
    stage: str
    status: str
    run_id: str | None = None
    branch_id: str | None = None
    duration_s: float = 0.0


class PipelineHalted(Event):
    type: Literal["pipeline.halted"] = "pipeline.halted"
    spec_id: str
    stage: str
    status: str
    reason: str = ""
    resume_command: str = ""
    run_id: str | None = None
    branch_id: str | None = None

    def span_ops(self) -> Sequence[SpanOp]:
        if not self.run_id:
            return ()
        attributes: dict[str, AttributeValue] = {
            STAGE: self.stage,
            "spec_kit.consensus.status": self.status,
            "spec_kit.halt.reason": self.reason,
            "spec_kit.halt.resume_command": self.resume_command,
        }
        return (AddSpanEvent(key=run_key(self.run_id), name="halted", attributes=attributes),)


__all__ = [
    "ConsensusSynthesized",
    "PipelineHalted",
    "PipelineRunFinished",
    "PipelineRunStarted",
    "PipelineStageCompleted",
    "PipelineStageStarted",
    "call_labels",
    "run_key",
]
