"""The faults plugin's telemetry event: a fault injected before the backend.

On a trace it is a ``fault.injected`` span event on the span the call hangs under (the
call context's ``trace_parent``: a consensus stage's span), when there is one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from agentshell.telemetry import AddSpanEvent, AttributeValue, Event, SpanOp


class FaultInjected(Event):
    type: Literal["fault.injected"] = "fault.injected"
    fault: Literal["disconnect", "rate_limit", "timeout"]
    agent: str
    stage: str | None = None
    spec_id: str | None = None
    attempt: int = 1
    remaining: int = 0
    reset_at: str | None = None
    timeout_ms: int | None = None
    trace_parent: str | None = None  # the faulted call's context trace_parent

    def span_ops(self) -> Sequence[SpanOp]:
        if not self.trace_parent:
            return ()
        attributes: dict[str, AttributeValue] = {
            "spec_kit.fault": self.fault,
            "gen_ai.agent.name": self.agent,
            "spec_kit.fault.attempt": self.attempt,
        }
        return (AddSpanEvent(key=self.trace_parent, name="fault.injected", attributes=attributes),)


__all__ = ["FaultInjected"]
