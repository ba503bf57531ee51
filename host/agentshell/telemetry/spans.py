"""The span vocabulary: how an event says what it means for a trace.

An event class (the host's or a plugin's) overrides :meth:`Event.span_ops` to return a
few of these operations; a tracing sink (the ``otlp`` sink) applies them, in the order
events were emitted, to the spans it keeps open. The host never needs to know the
event's schema: a plugin's events open, annotate and close their own spans.

Spans are named by a ``key`` the plugin chooses (unique per span: a run id, a stage run
id). An agent call hangs under the span whose key is the call context's
``trace_parent``. Keys live in one namespace per sink, so prefix them with something
of your own (``"myplugin.job:" + job_id``).

Attribute values are what OpenTelemetry accepts: str, bool, int, float, or a list of
one of those; ``None`` values are left out. Times are Unix seconds; ``None`` means the
event's ``ts``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

AttributeValue: TypeAlias = (
    str | bool | int | float | Sequence[str] | Sequence[bool] | Sequence[int] | Sequence[float]
)
Attributes: TypeAlias = Mapping[str, AttributeValue | None]
SpanKind: TypeAlias = Literal["internal", "client", "server", "producer", "consumer"]


@dataclass(frozen=True, slots=True)
class StartSpan:
    """Open the span ``key``, named ``name``, as a child of the open span ``parent``
    (no parent, or one that is not open: the root of a new trace). Opening a key that
    is already open only adds ``attributes`` to it."""

    key: str
    name: str
    parent: str | None = None
    attributes: Attributes = field(default_factory=dict)
    kind: SpanKind = "internal"
    start: float | None = None


@dataclass(frozen=True, slots=True)
class EndSpan:
    """Close the span ``key`` with ``attributes``; ``error`` sets an ERROR status with
    that description. Its open descendants are closed first, at the same time, so a
    trace is never left with dangling children. A key that is not open is ignored."""

    key: str
    attributes: Attributes = field(default_factory=dict)
    error: str | None = None
    end: float | None = None


@dataclass(frozen=True, slots=True)
class SetAttributes:
    """Add ``attributes`` to the open span ``key`` (ignored when it is not open)."""

    key: str
    attributes: Attributes


@dataclass(frozen=True, slots=True)
class AddSpanEvent:
    """Record a point-in-time span event ``name`` on the open span ``key``."""

    key: str
    name: str
    attributes: Attributes = field(default_factory=dict)
    at: float | None = None


SpanOp: TypeAlias = StartSpan | EndSpan | SetAttributes | AddSpanEvent

__all__ = [
    "AddSpanEvent",
    "AttributeValue",
    "Attributes",
    "EndSpan",
    "SetAttributes",
    "SpanKind",
    "SpanOp",
    "StartSpan",
]
