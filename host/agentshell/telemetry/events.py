"""The event base class and the host's own events.

Every event is a pydantic model with a ``type`` literal, a schema version, a timestamp
and the session id. Subclasses register themselves in :data:`EVENT_TYPES` by their
``type`` default, wherever they are defined: a plugin defines its events in its own
package (an ``events.py`` beside its code, say) and says what they mean for a trace by
overriding :meth:`Event.span_ops` (see :mod:`agentshell.telemetry.spans`).
The host defines only what the host itself emits: the session, agent calls, plugin
errors.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..agents import TokenUsage
from .spans import SpanOp

SCHEMA_VERSION = 1

EVENT_TYPES: dict[str, type[Event]] = {}


class Event(BaseModel):
    """Base of every telemetry event: a ``type``, a schema version and a timestamp."""

    model_config = ConfigDict(extra="forbid", defer_build=True)  # built on first use: start-up

    type: str
    schema_version: int = SCHEMA_VERSION
    ts: float = Field(default_factory=time.time)
    session_id: str = ""

    event_type: ClassVar[str] = ""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        field = cls.model_fields.get("type")
        default = field.default if field is not None else None
        if isinstance(default, str) and default:
            cls.event_type = default
            EVENT_TYPES[default] = cls

    def span_ops(self) -> Sequence[SpanOp]:
        """What this event does to a trace (open, annotate or close spans); nothing by
        default. Called by tracing sinks on their own thread, with the redacted event."""
        return ()


class SessionStarted(Event):
    type: Literal["session.started"] = "session.started"
    version: str
    plugins: list[str] = Field(default_factory=list)
    mode: Literal["repl", "run"] = "repl"


class SessionStopped(Event):
    type: Literal["session.stopped"] = "session.stopped"
    duration_s: float = 0.0
    dropped_events: int = 0


Label = str | int | float | bool


class _AgentLabels(Event):
    call_id: str
    agent: str
    backend: str
    model: str = ""
    role: str | None = None
    # the caller's AgentRequest.labels: what the call is for, in the caller's terms
    # (the otlp sink puts them on the call's span as attributes, names unchanged)
    labels: dict[str, Label] = Field(default_factory=dict)
    # the key of the span the call hangs under (the call context's "trace_parent")
    trace_parent: str | None = None


class AgentCallStarted(_AgentLabels):
    type: Literal["agent.call.started"] = "agent.call.started"


class AgentCallRetry(_AgentLabels):
    type: Literal["agent.call.retry"] = "agent.call.retry"
    attempt: int
    next_attempt: int
    delay_s: float
    error_type: str
    error: str = ""


class AgentCallFinished(_AgentLabels):
    type: Literal["agent.call.finished"] = "agent.call.finished"
    response_model: str = ""
    usage: TokenUsage = Field(default_factory=TokenUsage)
    latency_ms: float = 0.0
    attempts: int = 1
    cached: bool = False
    recorded: bool = False
    cost_usd: float | None = None
    content: str | None = None  # only when [telemetry] capture_content = true


class AgentCallFailed(_AgentLabels):
    type: Literal["agent.call.failed"] = "agent.call.failed"
    error_type: str
    error: str = ""
    attempts: int = 1
    latency_ms: float = 0.0


class PluginErrorEvent(Event):
    type: Literal["plugin.error"] = "plugin.error"
    plugin: str
    hook: str | None = None
    error: str = ""


__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "AgentCallFailed",
    "AgentCallFinished",
    "AgentCallRetry",
    "AgentCallStarted",
    "Event",
    "Label",
    "PluginErrorEvent",
    "SessionStarted",
    "SessionStopped",
]
