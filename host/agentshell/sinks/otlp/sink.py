"""The otlp sink itself: builds its private OpenTelemetry pipelines (traces and metrics
over OTLP/HTTP), feeds them from events on the bus's thread, reports what was exported,
and closes within a bounded time.

Agent calls become GenAI spans and histogram points (:mod:`.genai`); every other event
contributes the span operations it declares (:meth:`Event.span_ops`, applied by
:mod:`.tree`). The providers are private to the sink (no global state), so a swap or a
second shell never exports through a stale pipeline.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from agentshell.errors import ConfigError
from agentshell.redact import redact
from agentshell.telemetry import (
    AgentCallFailed,
    AgentCallFinished,
    AgentCallRetry,
    AgentCallStarted,
    Event,
    redact_events,
    shorten,
)

from .export import ROUTE, ExportStats, wrap_metric_exporter, wrap_span_exporter
from .genai import AgentCallMapper
from .settings import OtlpSettings
from .tree import SpanTree


class OtlpSink:
    """Maps events to spans and metric points. Runs on the bus's sink thread."""

    def __init__(
        self,
        settings: OtlpSettings,
        provider_of: Callable[[str], str | None],
        report: Callable[[str], None] | None = None,
        flush_timeout_s: float = 2.0,
    ) -> None:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.settings = settings
        self._report = report or (lambda message: None)
        # the whole close (flush + shutdown of both pipelines) fits in this budget
        self.close_budget_s = min(settings.close_timeout_s, flush_timeout_s)
        # one export request, retries included (the HTTP client retries with backoff up
        # to this deadline), must fit in the close budget too
        timeout = max(min(settings.timeout, self.close_budget_s), 0.1)
        headers = {}
        for name, secret in settings.headers.items():
            value = secret.get()
            if value is None:
                raise ConfigError(f"telemetry.otlp.headers.{name}: {secret.describe()} is not set")
            headers[name] = value
        self.export_stats = ExportStats(self._report)
        traces_url = f"{settings.endpoint}/v1/traces"
        metrics_url = f"{settings.endpoint}/v1/metrics"
        self._span_exporter = wrap_span_exporter(
            OTLPSpanExporter(endpoint=traces_url, headers=headers, timeout=timeout),
            self.export_stats,
            traces_url,
        )
        self._metric_exporter = wrap_metric_exporter(
            OTLPMetricExporter(endpoint=metrics_url, headers=headers, timeout=timeout),
            self.export_stats,
            metrics_url,
        )
        resource = Resource.create({"service.name": settings.service_name})
        # shutdown_on_exit=False: close() shuts them down, once and within its budget;
        # the SDK's own atexit hook would shut them down again, unbounded, at exit
        self.tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        self.tracer_provider.add_span_processor(BatchSpanProcessor(self._span_exporter))
        reader = PeriodicExportingMetricReader(
            self._metric_exporter,
            export_interval_millis=settings.export_interval_s * 1000,
            export_timeout_millis=timeout * 1000,
        )
        self.meter_provider = MeterProvider(
            resource=resource, metric_readers=[reader], shutdown_on_exit=False
        )
        ROUTE.attach(self.export_stats)  # last: a failed constructor leaves no handler
        tracer = self.tracer_provider.get_tracer("agentshell")
        self._tree = SpanTree(tracer, self._span_ended)
        meter = self.meter_provider.get_meter("agentshell")
        self._calls = AgentCallMapper(tracer, meter, self._tree, provider_of, self._span_ended)
        self.mapping_failed = 0  # events whose span operations raised or were invalid
        self._lost: int | None = None  # set by close(): spans it could not export

    def _span_ended(self) -> None:
        self.export_stats.spans_ended += 1

    # -- events ---------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        self.handle_batch([event])

    def handle_batch(self, events: list[Event]) -> None:
        for event in redact_events(events):
            if isinstance(event, AgentCallFinished | AgentCallFailed):
                self._calls.ended(event)
            elif isinstance(event, AgentCallRetry):
                self._calls.retry(event)
            elif not isinstance(event, AgentCallStarted):  # a call's span is made at its end
                self._apply(event)

    def _apply(self, event: Event) -> None:
        """The span operations ``event`` declares; a plugin's broken mapping costs its
        own spans only (reported once, counted), never the batch."""
        try:
            for op in event.span_ops():
                self._tree.apply(op, event.ts)
        except Exception as exc:
            self.mapping_failed += 1
            if self.mapping_failed == 1:
                with contextlib.suppress(Exception):
                    why = redact(f"{type(exc).__name__}: {exc}")
                    self._report(shorten(f"the span mapping of {event.type!r} failed: {why}"))

    # -- counters (read by /telemetry through SinkStats) ------------------------------

    @property
    def target(self) -> str:
        return self.settings.endpoint

    @property
    def last_error(self) -> str | None:
        return self.export_stats.last_error

    @property
    def exported(self) -> int:
        """Spans and metric export requests the collector accepted."""
        stats = self.export_stats
        return stats.spans_exported + stats.metrics_exported

    @property
    def export_failed(self) -> int:
        stats = self.export_stats
        return stats.spans_failed + stats.metrics_failed

    @property
    def export_detail(self) -> str:
        s = self.export_stats
        waiting = max(s.spans_ended - s.spans_exported - s.spans_failed, 0)
        text = (
            f"spans {s.spans_exported} exported, {s.spans_failed} failed, {waiting} waiting; "
            f"metric exports {s.metrics_exported} ok, {s.metrics_failed} failed"
        )
        return text

    @property
    def pending(self) -> str | None:
        """Spans not exported yet (``/telemetry flush``), or after close the spans that
        never will be; None when there are none."""
        s = self.export_stats
        if self._lost is not None:
            cause = f": {s.last_cause}" if s.last_cause else ""
            return f"{self._lost} span(s) not exported{cause}" if self._lost else None
        waiting = max(s.spans_ended - s.spans_exported - s.spans_failed, 0)
        return f"{waiting} span(s) not yet exported" if waiting else None

    @property
    def lost(self) -> str | None:
        """What never left the process, for the shell's end-of-session report: spans
        whose export failed, plus (once closed) those still waiting, and the metrics
        when the last export of them failed (they are cumulative); None when nothing."""
        s = self.export_stats
        spans = s.spans_failed
        if self._lost is not None:  # closed: what is still waiting never will be sent
            spans += max(s.spans_ended - s.spans_exported - s.spans_failed, 0)
        parts = [f"{spans:,} span(s)"] if spans else []
        if s.metrics_last_failed:
            parts.append("the last metrics export")
        return f"{' and '.join(parts)} not exported" if parts else None

    def flush(self) -> bool:
        """Send the spans the batch processor holds (``/telemetry flush``), within the
        export timeout; metrics go out at their interval and at close. False when the
        collector did not take them in time."""
        return bool(self.tracer_provider.force_flush(int(self.close_budget_s * 1000)))

    # -- shutdown -------------------------------------------------------------------

    def close(self) -> None:
        """End the spans still open, export what is pending and shut both pipelines down,
        once, within ``close_budget_s`` overall (an unreachable collector must not hold
        up the exit). Traces and metrics shut down in parallel; past the budget the
        exporters are aborted (their retry wait ends) and the threads abandoned."""
        stats = self.export_stats
        with stats._lock:
            # the bus reports what close loses, in one line (TelemetryBus._retire): a
            # request that fails later, past the budget, must not print another
            failed_before, stats._reported = stats.spans_failed, True
        self._tree.end_all()
        budget = self.close_budget_s
        budget_ms = int(budget * 1000)
        threads = [
            threading.Thread(target=target, name=f"telemetry-otlp-close-{kind}", daemon=True)
            for kind, target in (
                # shutdown exports what is queued (the span processor drains, the metric
                # reader collects once more): no force_flush first, which would send
                # every cumulative metric point twice
                ("traces", self.tracer_provider.shutdown),
                ("metrics", lambda: self.meter_provider.shutdown(timeout_millis=budget_ms)),
            )
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + budget
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        if any(thread.is_alive() for thread in threads):
            for exporter in (self._span_exporter, self._metric_exporter):
                exporter.aborted = True  # no new request ...
                exporter.shutdown()  # ... and the one in its retry wait gives up
            for thread in threads:
                thread.join(0.2)
        waiting = max(stats.spans_ended - stats.spans_exported - stats.spans_failed, 0)
        self._lost = waiting + stats.spans_failed - failed_before
        if not any(thread.is_alive() for thread in threads):
            ROUTE.detach(self.export_stats)
        else:  # a request still in flight: keep its log lines off the terminal until done
            threading.Thread(
                target=self._detach_after,
                args=(threads,),
                name="telemetry-otlp-detach",
                daemon=True,
            ).start()

    def _detach_after(self, threads: list[threading.Thread]) -> None:
        for thread in threads:
            thread.join(30)
        ROUTE.detach(self.export_stats)


__all__ = ["OtlpSink"]
