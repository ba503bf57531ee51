"""The spans an otlp sink keeps open, by key, and the span operations events declare
(:mod:`agentshell.telemetry.spans`) applied to them.

This is all the otlp sink knows of a plugin's events: ``StartSpan`` opens a span under
an open parent (else as the root of a new trace), ``EndSpan`` closes it (and its open
descendants), ``SetAttributes``/``AddSpanEvent`` annotate it. Which events exist and
what their attributes are called is the plugins' business.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from agentshell.telemetry import (
    AddSpanEvent,
    EndSpan,
    SetAttributes,
    SpanOp,
    StartSpan,
    shorten,
)

MAX_OPEN_SPANS = 256  # past this the oldest open span (and its descendants) is ended

Primitive = str | bool | int | float


def ns(seconds: float) -> int:
    return int(seconds * 1e9)


def clean_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """What OpenTelemetry accepts: primitives and homogeneous lists of them; ``None``
    is left out, anything else becomes its text (a plugin's mistake must not lose the
    span: the SDK drops invalid values with a warning)."""
    clean: dict[str, Any] = {}
    for name, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, Primitive):
            clean[name] = value
        elif isinstance(value, list | tuple) and all(isinstance(v, Primitive) for v in value):
            kinds = {type(v) for v in value}
            clean[name] = list(value) if len(kinds) <= 1 else [str(v) for v in value]
        else:
            clean[name] = str(value)
    return clean


class SpanTree:
    """Open spans by key, each with its parent's key; ``on_end`` counts each span ended."""

    def __init__(self, tracer: Any, on_end: Callable[[], None]) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

        self._tracer = tracer
        self._on_end = on_end
        self._kinds = {kind.name.lower(): kind for kind in SpanKind}
        self._Status, self._ERROR = Status, StatusCode.ERROR
        self._in_context = set_span_in_context
        self._open: dict[str, tuple[Any, str | None]] = {}  # key -> (span, parent key)

    def __len__(self) -> int:
        return len(self._open)

    def context(self, key: str | None) -> Any:
        """The OpenTelemetry context that makes a new span a child of ``key``'s span;
        None (a root span) when ``key`` is not open."""
        entry = self._open.get(key) if key else None
        return self._in_context(entry[0]) if entry is not None else None

    def apply(self, op: SpanOp, ts: float) -> None:
        if isinstance(op, StartSpan):
            self.start(op, ts)
        elif isinstance(op, EndSpan):
            self.end(op.key, op.end if op.end is not None else ts, op.attributes, op.error)
        elif isinstance(op, SetAttributes):
            entry = self._open.get(op.key)
            if entry is not None:
                entry[0].set_attributes(clean_attributes(op.attributes))
        elif isinstance(op, AddSpanEvent):
            entry = self._open.get(op.key)
            if entry is not None:
                at = op.at if op.at is not None else ts
                entry[0].add_event(op.name, clean_attributes(op.attributes), timestamp=ns(at))

    def start(self, op: StartSpan, ts: float) -> None:
        attributes = clean_attributes(op.attributes)
        existing = self._open.get(op.key)
        if existing is not None:  # opened twice: the second only adds attributes
            existing[0].set_attributes(attributes)
            return
        if len(self._open) >= MAX_OPEN_SPANS:
            self.end(next(iter(self._open)), ts)
        parent = op.parent if op.parent in self._open else None
        span = self._tracer.start_span(
            op.name,
            context=self.context(parent),
            kind=self._kinds.get(op.kind, self._kinds["internal"]),
            start_time=ns(op.start if op.start is not None else ts),
            attributes=attributes,
        )
        self._open[op.key] = (span, parent)

    def end(
        self,
        key: str,
        at: float | None = None,
        attributes: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """End ``key``'s span (and first its open descendants, at the same time)."""
        entry = self._open.pop(key, None)
        if entry is None:
            return
        for child in [k for k, (_, parent) in self._open.items() if parent == key]:
            self.end(child, at)
        span = entry[0]
        if attributes:
            span.set_attributes(clean_attributes(attributes))
        if error is not None:
            span.set_status(self._Status(self._ERROR, shorten(error, 200)))
        span.end(end_time=ns(at) if at is not None else None)
        self._on_end()

    def end_all(self) -> None:
        """At close: end every open span, now (roots first take their trees along)."""
        while self._open:
            key = next((k for k, (_, p) in self._open.items() if p is None), None)
            self.end(key if key is not None else next(iter(self._open)))


__all__ = ["MAX_OPEN_SPANS", "SpanTree", "clean_attributes", "ns"]
