"""Telemetry: typed events, what they mean for a trace, and the bus that delivers them
to sinks.

- :mod:`.events` — the :class:`Event` base (subclasses register themselves in
  :data:`EVENT_TYPES`) and the host's own events: session, agent calls, plugin errors.
  Plugins define their events in their own packages.
- :mod:`.spans` — the span vocabulary an event's :meth:`Event.span_ops` returns
  (open, annotate, close spans) and tracing sinks apply.
- :mod:`.screening` — :func:`redact_events`, the scrubbing every sink applies.
- :mod:`.worker` — one sink's queue and thread; :class:`SinkStats`.
- :mod:`.bus` — :class:`TelemetryBus`: ``emit()`` never blocks and never raises.
"""

from __future__ import annotations

from .bus import Flush, SinkLoss, TelemetryBus
from .events import (
    EVENT_TYPES,
    SCHEMA_VERSION,
    AgentCallFailed,
    AgentCallFinished,
    AgentCallRetry,
    AgentCallStarted,
    Event,
    Label,
    PluginErrorEvent,
    SessionStarted,
    SessionStopped,
)
from .screening import redact_events
from .spans import (
    AddSpanEvent,
    Attributes,
    AttributeValue,
    EndSpan,
    SetAttributes,
    SpanKind,
    SpanOp,
    StartSpan,
)
from .worker import SinkStats, TelemetrySink, shorten, sink_target

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "AddSpanEvent",
    "AgentCallFailed",
    "AgentCallFinished",
    "AgentCallRetry",
    "AgentCallStarted",
    "AttributeValue",
    "Attributes",
    "EndSpan",
    "Event",
    "Flush",
    "Label",
    "PluginErrorEvent",
    "SessionStarted",
    "SessionStopped",
    "SetAttributes",
    "SinkLoss",
    "SinkStats",
    "SpanKind",
    "SpanOp",
    "StartSpan",
    "TelemetryBus",
    "TelemetrySink",
    "redact_events",
    "shorten",
    "sink_target",
]
