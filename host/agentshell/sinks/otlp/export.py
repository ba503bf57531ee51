"""Export plumbing of the otlp sink: what actually left the process, and why not.

The OTLP exporters are wrapped to count what they really exported (and to stop at the
close budget); the cause of each failure is taken from the exporter's HTTP client or
the SDK's log records, which are routed here while a sink is open instead of reaching
the terminal raw. OpenTelemetry is imported inside the wrappers only.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from agentshell.redact import redact
from agentshell.telemetry import shorten


def _reason(value: object) -> str:
    """A short cause for an export failure: "Connection refused", not the three-line
    urllib3 repr around it."""
    text = str(value)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno:
        return errno.group(1).strip()
    if "timed out" in text.lower():
        return "timed out"
    if isinstance(value, BaseException):
        text = f"{type(value).__name__}: {text}"
    return shorten(redact(text), 200)


class ExportStats:
    """What actually left the process, counted by the exporter wrappers (on the SDK's
    threads), plus the cause of the last failure taken from the SDK's log records."""

    def __init__(self, report: Callable[[str], None]) -> None:
        self._lock = threading.Lock()
        self._report = report
        self.spans_ended = 0
        self.spans_exported = 0
        self.spans_failed = 0
        self.metrics_exported = 0  # metric export requests (each carries every series)
        self.metrics_failed = 0
        # metric points are cumulative: a failed export is made good by a later one, so
        # only a failure of the last export loses metrics
        self.metrics_last_failed = False
        self.last_error: str | None = None
        self.last_cause: str | None = None
        # the cause of the failure being reported, per kind ("spans", "metrics") from the
        # exporter's HTTP client, or ("log") from the SDK's log; consumed by fail()
        self._causes: dict[str, str] = {}
        self._reported = False

    def ok(self, kind: str, n: int) -> None:
        with self._lock:
            if kind == "spans":
                self.spans_exported += n
            else:
                self.metrics_exported += 1
                self.metrics_last_failed = False

    def fail(self, kind: str, n: int, endpoint: str, cause: str | None = None) -> None:
        with self._lock:
            if kind == "spans":
                self.spans_failed += n
                what = f"{n} span(s)"
            else:
                self.metrics_failed += 1
                self.metrics_last_failed = True
                what = "metrics"
            cause = cause or self._causes.pop(kind, None) or self._causes.pop("log", None)
            cause = cause or "export failed"
            self.last_cause = cause
            self.last_error = shorten(f"{what} not exported to {endpoint}: {cause}")
            first, self._reported = not self._reported, True
        if first:  # once per sink; /telemetry shows the counts and the latest cause
            self._report(self.last_error)

    def note(self, record: logging.LogRecord) -> None:
        """An SDK log record: keep its cause for the failure it precedes."""
        args = record.args if isinstance(record.args, tuple) else ()
        error = next((a for a in args if isinstance(a, BaseException)), None)
        if error is not None:
            cause = _reason(error)
        elif str(record.msg).startswith("Transient error") and args:
            cause = _reason(args[0])
        elif "code: %s" in str(record.msg) and len(args) > 2 and args[1] is not None:
            cause = shorten(f"HTTP {args[1]} {args[2] or ''}".strip(), 200)
        elif "log" not in self._causes:
            cause = _reason(record.getMessage())
        else:
            return
        self.cause("log", cause)

    def cause(self, kind: str, cause: str) -> None:
        with self._lock:
            self._causes[kind] = cause


class _LogRoute(logging.Handler):
    """Routes the ``opentelemetry`` loggers into the active otlp sinks' error reporting
    while at least one is open: without it Python's last-resort handler prints every SDK
    warning ("Transient error ... retrying", "shutdown can only be called once") raw on
    stderr, mid-prompt. Installed with propagate=False and removed with the last sink."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.listeners: list[ExportStats] = []
        self._saved_propagate = True

    def emit(self, record: logging.LogRecord) -> None:
        for listener in list(self.listeners):
            with contextlib.suppress(Exception):
                listener.note(record)

    def attach(self, listener: ExportStats) -> None:
        with ROUTE_LOCK:
            logger = logging.getLogger("opentelemetry")
            if not self.listeners:
                self._saved_propagate = logger.propagate
                logger.addHandler(self)
                logger.propagate = False
            self.listeners.append(listener)

    def detach(self, listener: ExportStats) -> None:
        with ROUTE_LOCK:
            if listener not in self.listeners:
                return
            self.listeners.remove(listener)
            if not self.listeners:
                logger = logging.getLogger("opentelemetry")
                logger.removeHandler(self)
                logger.propagate = self._saved_propagate


ROUTE_LOCK = threading.Lock()
ROUTE = _LogRoute()


def _note_causes(inner: Any, stats: ExportStats, kind: str) -> None:
    """Keep the cause of each failed request. The SDK logs it only for retried errors
    (a refused connection with a short timeout ends in a bare "Failed to export ...
    due to timeout"), so the exporter's HTTP client is wrapped, if it has the shape it
    has had since 1.3x (``_client.export`` returning success/status_code/reason/error);
    otherwise the log records remain the source."""
    client = getattr(inner, "_client", None)
    export = getattr(client, "export", None)
    if client is None or export is None:
        return

    def export_and_note(data: bytes) -> Any:
        result = export(data)
        if getattr(result, "success", True) is False:
            code, reason = getattr(result, "status_code", None), getattr(result, "reason", None)
            error = getattr(result, "error", None)
            if code:
                stats.cause(kind, shorten(f"HTTP {code} {reason or ''}".strip(), 200))
            elif error is not None:
                stats.cause(kind, _reason(error))
        return result

    client.export = export_and_note


def wrap_span_exporter(inner: Any, stats: ExportStats, endpoint: str) -> Any:
    """The OTLP span exporter, counting what it really exported (SpanExportResult)."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    _note_causes(inner, stats, "spans")

    class CountingSpanExporter(SpanExporter):
        def __init__(self) -> None:
            self.aborted = False
            self._shut = False

        def export(self, spans: Any) -> SpanExportResult:
            n = len(spans)
            if self.aborted:  # past the close budget: do not start another request
                stats.fail("spans", n, endpoint, "not sent: the close time budget ran out")
                return SpanExportResult.FAILURE
            try:
                result = inner.export(spans)
            except Exception as exc:
                stats.fail("spans", n, endpoint, _reason(exc))
                return SpanExportResult.FAILURE
            if result is SpanExportResult.SUCCESS:
                stats.ok("spans", n)
            else:
                stats.fail("spans", n, endpoint)
            return result  # type: ignore[no-any-return]

        def shutdown(self) -> None:
            if not self._shut:  # exactly once: a second call only logs a warning
                self._shut = True
                inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return bool(inner.force_flush(timeout_millis))

    return CountingSpanExporter()


def wrap_metric_exporter(inner: Any, stats: ExportStats, endpoint: str) -> Any:
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult

    _note_causes(inner, stats, "metrics")

    class CountingMetricExporter(MetricExporter):
        def __init__(self) -> None:
            super().__init__(
                preferred_temporality=inner._preferred_temporality,
                preferred_aggregation=inner._preferred_aggregation,
            )
            self.aborted = False
            self._shut = False

        def export(
            self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any
        ) -> MetricExportResult:
            if self.aborted:
                stats.fail("metrics", 1, endpoint, "not sent: the close time budget ran out")
                return MetricExportResult.FAILURE
            try:
                result = inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            except Exception as exc:
                stats.fail("metrics", 1, endpoint, _reason(exc))
                return MetricExportResult.FAILURE
            if result is MetricExportResult.SUCCESS:
                stats.ok("metrics", 1)
            else:
                stats.fail("metrics", 1, endpoint)
            return result  # type: ignore[no-any-return]

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            if not self._shut:
                self._shut = True
                inner.shutdown()

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return bool(inner.force_flush(timeout_millis=timeout_millis))

    return CountingMetricExporter()


__all__ = ["ROUTE", "ExportStats", "wrap_metric_exporter", "wrap_span_exporter"]
