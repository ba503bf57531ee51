"""The ``otlp`` telemetry sink: OpenTelemetry traces and metrics over OTLP/HTTP.

Agent calls become CLIENT spans named and attributed after the GenAI semantic
conventions (``chat gpt-4o``, ``gen_ai.*`` attributes); the calls of one consensus
stage run share a ``trace_parent`` and hang under one ``invoke_agent <stage>`` span,
which ends when the stage's ``consensus.synthesized`` event arrives. Token usage and
call duration feed the ``gen_ai.client.token.usage`` and
``gen_ai.client.operation.duration`` histograms.

OpenTelemetry is imported only inside the factory: the shell never pays for it unless
this sink is selected. The providers are private to the sink (no global state), so a
swap or a second shell never exports through a stale pipeline.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from agentshell.config import Secret
from agentshell.errors import ConfigError
from agentshell.plugins import hookimpl
from agentshell.redact import redact
from agentshell.telemetry import (
    AgentCallFailed,
    AgentCallFinished,
    AgentCallRetry,
    AgentCallStarted,
    ConsensusSynthesized,
    Event,
    redact_events,
    shorten,
)

if TYPE_CHECKING:
    from agentshell.hookspecs import Register

# GenAI semantic-convention names, spelt out: the constants in
# opentelemetry-semantic-conventions are deprecated (moved between modules).
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
AGENT_NAME = "gen_ai.agent.name"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
TOKEN_TYPE = "gen_ai.token.type"
ERROR_TYPE = "error.type"
TOKEN_USAGE = "gen_ai.client.token.usage"
OPERATION_DURATION = "gen_ai.client.operation.duration"
# semconv's advised bucket boundaries for the two histograms
TOKEN_BUCKETS = [4**i for i in range(14)]
DURATION_BUCKETS = [0.01 * 2**i for i in range(14)]

MAX_OPEN_STAGES = 256  # stage spans whose synthesis never came are ended past this


class OtlpSettings(BaseModel):
    """``[telemetry.otlp]``."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str = "http://localhost:4318"  # base URL; /v1/traces and /v1/metrics appended
    protocol: str = "http/protobuf"
    headers: dict[str, Secret] = Field(default_factory=dict)
    timeout: float = Field(default=10.0, gt=0)  # seconds per export request
    service_name: str = "agentshell"
    providers: dict[str, str] = Field(default_factory=dict)  # agent -> gen_ai.provider.name
    export_interval_s: float = Field(default=60.0, gt=0)  # metrics; also flushed at close
    close_timeout_s: float = Field(default=5.0, ge=0)

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, value: str) -> str:
        if value != "http/protobuf":
            raise PydanticCustomError(
                "otlp_protocol",
                "unsupported protocol '{value}': only 'http/protobuf' is supported",
                {"value": value},
            )
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise PydanticCustomError(
                "otlp_endpoint",
                "endpoint must be an http:// or https:// URL, not '{value}'",
                {"value": value},
            )
        return value.rstrip("/")


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


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


class _ExportStats:
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

    def fail(self, kind: str, n: int, endpoint: str, cause: str | None = None) -> None:
        with self._lock:
            if kind == "spans":
                self.spans_failed += n
                what = f"{n} span(s)"
            else:
                self.metrics_failed += 1
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
        self.listeners: list[_ExportStats] = []
        self._saved_propagate = True

    def emit(self, record: logging.LogRecord) -> None:
        for listener in list(self.listeners):
            with contextlib.suppress(Exception):
                listener.note(record)

    def attach(self, listener: _ExportStats) -> None:
        with _ROUTE_LOCK:
            logger = logging.getLogger("opentelemetry")
            if not self.listeners:
                self._saved_propagate = logger.propagate
                logger.addHandler(self)
                logger.propagate = False
            self.listeners.append(listener)

    def detach(self, listener: _ExportStats) -> None:
        with _ROUTE_LOCK:
            if listener not in self.listeners:
                return
            self.listeners.remove(listener)
            if not self.listeners:
                logger = logging.getLogger("opentelemetry")
                logger.removeHandler(self)
                logger.propagate = self._saved_propagate


_ROUTE_LOCK = threading.Lock()
_ROUTE = _LogRoute()


def _note_causes(inner: Any, stats: _ExportStats, kind: str) -> None:
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


def _wrap_span_exporter(inner: Any, stats: _ExportStats, endpoint: str) -> Any:
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


def _wrap_metric_exporter(inner: Any, stats: _ExportStats, endpoint: str) -> Any:
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
        from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

        self._SpanKind, self._Status, self._StatusCode = SpanKind, Status, StatusCode
        self._in_context = set_span_in_context
        self.settings = settings
        self.provider_of = provider_of
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
        self.export_stats = _ExportStats(report or (lambda message: None))
        traces_url = f"{settings.endpoint}/v1/traces"
        metrics_url = f"{settings.endpoint}/v1/metrics"
        self._span_exporter = _wrap_span_exporter(
            OTLPSpanExporter(endpoint=traces_url, headers=headers, timeout=timeout),
            self.export_stats,
            traces_url,
        )
        self._metric_exporter = _wrap_metric_exporter(
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
        _ROUTE.attach(self.export_stats)  # last: a failed constructor leaves no handler
        self.tracer = self.tracer_provider.get_tracer("agentshell")
        meter = self.meter_provider.get_meter("agentshell")
        self.token_usage = meter.create_histogram(
            TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.duration = meter.create_histogram(
            OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._stages: dict[str, Any] = {}  # trace_parent -> open stage span
        self._retries: dict[str, list[AgentCallRetry]] = {}  # call_id -> retries so far
        self._lost: int | None = None  # set by close(): spans it could not export

    # -- events ---------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        self.handle_batch([event])

    def handle_batch(self, events: list[Event]) -> None:
        for event in redact_events(events):
            if isinstance(event, AgentCallFinished | AgentCallFailed):
                self._call(event)
            elif isinstance(event, AgentCallRetry):
                retries = self._retries.setdefault(event.call_id, [])
                if len(retries) < 32 and len(self._retries) < 4096:
                    retries.append(event)
            elif isinstance(event, AgentCallStarted):
                if event.trace_parent:
                    self._stage_span(event.trace_parent, event.stage, event.spec_id, event.ts)
            elif isinstance(event, ConsensusSynthesized):
                self._end_stage(event)

    def _stage_span(
        self, trace_parent: str, stage: str | None, spec_id: str | None, start: float
    ) -> Any:
        span = self._stages.get(trace_parent)
        if span is None:
            if len(self._stages) >= MAX_OPEN_STAGES:
                oldest = next(iter(self._stages))
                self._stages.pop(oldest).end()
                self.export_stats.spans_ended += 1
            label = stage or "stage"
            attributes = {OPERATION: "invoke_agent", AGENT_NAME: label}
            if spec_id:
                attributes["spec_kit.spec_id"] = spec_id
            if stage:
                attributes["spec_kit.stage"] = stage
            span = self.tracer.start_span(
                f"invoke_agent {label}",
                kind=self._SpanKind.INTERNAL,
                start_time=_ns(start),
                attributes=attributes,
            )
            self._stages[trace_parent] = span
        return span

    def _end_stage(self, event: ConsensusSynthesized) -> None:
        if not event.trace_parent:
            return
        span = self._stages.pop(event.trace_parent, None)
        if span is None:  # no agent call was seen (all cached upstream): still show the stage
            start = event.ts - event.total_latency_ms / 1000
            span = self._stage_span(event.trace_parent, event.stage, event.spec_id, start)
            self._stages.pop(event.trace_parent, None)
        span.set_attributes(
            {
                "spec_kit.consensus.status": event.status,
                "spec_kit.consensus.agreements": event.agreements,
                "spec_kit.consensus.conflicts": event.conflicts,
                "spec_kit.consensus.agents": event.agents,
                "spec_kit.consensus.total_tokens": event.total_tokens,
            }
        )
        if event.status == "failed":
            span.set_status(self._Status(self._StatusCode.ERROR, "quorum not met"))
        span.end(end_time=_ns(event.ts))
        self.export_stats.spans_ended += 1

    def _call(self, event: AgentCallFinished | AgentCallFailed) -> None:
        end = event.ts
        start = end - event.latency_ms / 1000
        provider = self.provider_of(event.agent) or event.backend
        common = {OPERATION: "chat", PROVIDER: provider, REQUEST_MODEL: event.model}
        attributes: dict[str, Any] = {**common, AGENT_NAME: event.agent}
        attributes["gen_ai.request.attempts"] = event.attempts
        if event.stage:
            attributes["spec_kit.stage"] = event.stage
        if event.spec_id:
            attributes["spec_kit.spec_id"] = event.spec_id
        failed = isinstance(event, AgentCallFailed)
        if isinstance(event, AgentCallFinished):
            usage = event.usage
            common[RESPONSE_MODEL] = event.response_model or event.model
            attributes[RESPONSE_MODEL] = common[RESPONSE_MODEL]
            attributes[INPUT_TOKENS] = usage.input_tokens
            attributes[OUTPUT_TOKENS] = usage.output_tokens
            attributes[CACHE_READ_TOKENS] = usage.cached_input_tokens
            attributes[REASONING_TOKENS] = usage.reasoning_output_tokens
            if event.cost_usd is not None:
                attributes["agentshell.cost_usd"] = event.cost_usd
            if event.cached:
                attributes["agentshell.cached"] = True
        else:
            attributes[ERROR_TYPE] = event.error_type
            common[ERROR_TYPE] = event.error_type
        context = None
        if event.trace_parent:
            parent = self._stage_span(event.trace_parent, event.stage, event.spec_id, start)
            context = self._in_context(parent)
        span = self.tracer.start_span(
            f"chat {event.model}".rstrip(),
            context=context,
            kind=self._SpanKind.CLIENT,
            start_time=_ns(start),
            attributes=attributes,
        )
        for retry in self._retries.pop(event.call_id, ()):
            span.add_event(
                "retry",
                {
                    "attempt": retry.attempt,
                    "delay_s": retry.delay_s,
                    ERROR_TYPE: retry.error_type,
                },
                timestamp=_ns(retry.ts),
            )
        if failed:
            assert isinstance(event, AgentCallFailed)
            span.set_status(self._Status(self._StatusCode.ERROR, shorten(event.error, 200)))
        span.end(end_time=_ns(end))
        self.export_stats.spans_ended += 1
        self.duration.record(event.latency_ms / 1000, common)
        if isinstance(event, AgentCallFinished):
            self.token_usage.record(event.usage.input_tokens, {**common, TOKEN_TYPE: "input"})
            self.token_usage.record(event.usage.output_tokens, {**common, TOKEN_TYPE: "output"})

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

    def flush(self) -> bool:
        """Send the spans the batch processor holds (``/telemetry flush``), within the
        export timeout; metrics go out at their interval and at close. False when the
        collector did not take them in time."""
        return bool(self.tracer_provider.force_flush(int(self.close_budget_s * 1000)))

    # -- shutdown -------------------------------------------------------------------

    def close(self) -> None:
        """End open stage spans, export what is pending and shut both pipelines down,
        once, within ``close_budget_s`` overall (an unreachable collector must not hold
        up the exit). Traces and metrics shut down in parallel; past the budget the
        exporters are aborted (their retry wait ends) and the threads abandoned."""
        stats = self.export_stats
        with stats._lock:
            # the bus reports what close loses, in one line (TelemetryBus._retire): a
            # request that fails later, past the budget, must not print another
            failed_before, stats._reported = stats.spans_failed, True
        for span in self._stages.values():
            span.end()
            stats.spans_ended += 1
        self._stages.clear()
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
            _ROUTE.detach(self.export_stats)
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
        _ROUTE.detach(self.export_stats)


def _factory(shell: Any, settings: OtlpSettings) -> OtlpSink:
    def provider_of(agent: str) -> str | None:
        # gen_ai.provider.name: [telemetry.otlp.providers], then the agent's
        # options.provider, else (in _call) the backend name. Looked up per event:
        # agents are (re)built after the sinks start and on /config reload.
        if agent in settings.providers:
            return settings.providers[agent]
        spec = (getattr(shell, "agents", None) or {}).get(agent)
        provider = (getattr(spec, "options", None) or {}).get("provider")
        return provider if isinstance(provider, str) and provider else None

    def report(message: str) -> None:
        shell.output.warn(
            f"telemetry sink otlp: {message} (reported once; /telemetry shows the counts)"
        )

    telemetry = getattr(getattr(shell, "config", None), "telemetry", None)
    flush_timeout = getattr(telemetry, "flush_timeout_s", 2.0)
    return OtlpSink(settings, provider_of, report, flush_timeout)


@hookimpl
def register_telemetry_sinks(register: Register) -> None:
    register("otlp", _factory, OtlpSettings)
