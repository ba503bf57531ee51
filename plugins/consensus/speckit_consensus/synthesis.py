"""Consensus status, computed from what the agents actually answered — never assumed.

Pure: no I/O. Rules, in order:

* ``failed``   — fewer valid answers than the quorum (the aggregator counts as an agent);
* ``conflict`` — the aggregator reported conflicts, or valid answers carry different
  values of the stage's decision field (audit ``recommendation``, unlock ``unlock_decision``);
* ``degraded`` — quorum met but an agent is missing (failed, invalid, or never asked) or
  there is no valid aggregator answer;
* ``ok``       — every configured agent answered valid JSON, the aggregator included,
  and nobody disagrees.

A failed agent is *missing* with its reason, never a conflict.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from agentshell.agents import TokenUsage

from .config import Status
from .schemas import DECISION_FIELDS, AgentOutput, Role
from .stages import Stage

AgentState = Literal["valid", "invalid", "failed", "skipped"]


class AgentResult(BaseModel):
    """One agent's part in a stage: its answer (validated) or why it has none."""

    agent: str
    role: Role
    state: AgentState
    output: dict[str, Any] | None = None
    reason: str | None = None
    model: str = ""
    recorded: bool = False
    cached: bool = False
    usage: TokenUsage = Field(default_factory=TokenUsage)
    latency_ms: float = 0.0
    cost_usd: float | None = None
    attempts: int = 0
    prompt_hash: str = ""
    content: str = ""

    @property
    def valid(self) -> bool:
        return self.state == "valid"


class Synthesis(BaseModel):
    stage: Stage
    status: Status
    agreements: list[str] = Field(default_factory=list)
    conflicts: list[str] = Field(default_factory=list)
    missing_agents: list[str] = Field(default_factory=list)
    missing_reasons: dict[str, str] = Field(default_factory=dict)
    reasons: list[str] = Field(default_factory=list)  # why this status, in words
    aggregator: str | None = None
    quorum: int = 1
    valid_agents: list[str] = Field(default_factory=list)
    decision: str | None = None  # the agreed decision value, when the stage has one
    result: Any | None = None  # the aggregator's merged stage result


def default_quorum(configured: int) -> int:
    """A majority of the configured agents (aggregator included)."""
    return configured // 2 + 1


def decision_conflicts(stage: Stage, results: list[AgentResult]) -> tuple[list[str], str | None]:
    """Conflicts from differing decision values, and the decision when they agree."""
    field = DECISION_FIELDS.get(stage)
    if field is None:
        return [], None
    values = {
        r.agent: str(r.output[field]) for r in results if r.valid and r.output and field in r.output
    }
    if len(set(values.values())) > 1:
        detail = ", ".join(f"{agent}={value}" for agent, value in sorted(values.items()))
        return [f"{field} differs between agents: {detail}"], None
    return [], next(iter(values.values()), None)


def merged_result(output: dict[str, Any]) -> dict[str, Any]:
    """The aggregator's answer without the bookkeeping fields and the consensus."""
    base = set(AgentOutput.model_fields) | {"consensus"}
    return {k: v for k, v in output.items() if k not in base}


def synthesize(
    stage: Stage, results: list[AgentResult], *, aggregator: str | None, quorum: int
) -> Synthesis:
    """The stage's consensus from every configured agent's result (aggregator included)."""
    valid = [r for r in results if r.valid]
    missing = [r for r in results if not r.valid]
    reasons: list[str] = []
    agg = next((r for r in results if r.agent == aggregator), None)
    agreements: list[str] = []
    conflicts: list[str] = []
    result: Any = None
    if agg is not None and agg.valid and agg.output is not None:
        consensus = agg.output.get("consensus") or {}
        agreements = [str(a) for a in consensus.get("agreements", [])]
        conflicts = [str(c) for c in consensus.get("conflicts", [])]
        result = merged_result(agg.output)
        if conflicts:
            reasons.append(f"aggregator {aggregator} reported {len(conflicts)} conflict(s)")
    found, decision = decision_conflicts(stage, results)
    if found:
        reasons.append("agents' decisions contradict each other")
    conflicts += [c for c in found if c not in conflicts]
    for r in missing:
        reasons.append(f"{r.agent} missing ({r.state}): {r.reason or 'no answer'}")
    if aggregator is None:
        reasons.append("no aggregator configured for this stage")
    elif agg is None or not agg.valid:
        reasons.append(f"no valid answer from the aggregator {aggregator}")
    if len(valid) < quorum:
        status: Status = "failed"
        reasons.insert(0, f"quorum not met: {len(valid)} valid of {quorum} required")
    elif conflicts:
        status = "conflict"
    elif missing or agg is None or not agg.valid:
        status = "degraded"
    else:
        status = "ok"
    return Synthesis(
        stage=stage,
        status=status,
        agreements=agreements,
        conflicts=conflicts,
        missing_agents=[r.agent for r in missing],
        missing_reasons={r.agent: r.reason or r.state for r in missing},
        reasons=reasons,
        aggregator=aggregator,
        quorum=quorum,
        valid_agents=[r.agent for r in valid],
        decision=decision,
        result=result,
    )
