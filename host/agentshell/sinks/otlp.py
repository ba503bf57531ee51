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

import logging
import threading
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


class _ExportLog(logging.Handler):
    """Takes the SDK's export warnings ("Transient error ... retrying", "Failed to export")
    off the terminal: the first is reported once through ``report``, the rest counted.
    Without a handler Python would print every one of them to stderr, mid-prompt."""

    def __init__(self, report: Callable[[str], None]) -> None:
        super().__init__(logging.WARNING)
        self.report = report
        self.count = 0
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.last = redact(record.getMessage())[:300]
        except Exception:
            return
        self.count += 1
        if self.count == 1:
            self.report(self.last)


class OtlpSink:
    """Maps events to spans and metric points. Runs on the bus's sink thread."""

    def __init__(
        self,
        settings: OtlpSettings,
        provider_of: Callable[[str], str | None],
        report: Callable[[str], None] | None = None,
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
        self.export_log = _ExportLog(report or (lambda message: None))
        logging.getLogger("opentelemetry").addHandler(self.export_log)
        self._in_context = set_span_in_context
        self.settings = settings
        self.provider_of = provider_of
        headers = {}
        for name, secret in settings.headers.items():
            value = secret.get()
            if value is None:
                raise ConfigError(f"telemetry.otlp.headers.{name}: {secret.describe()} is not set")
            headers[name] = value
        resource = Resource.create({"service.name": settings.service_name})
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(
                    endpoint=f"{settings.endpoint}/v1/traces",
                    headers=headers,
                    timeout=settings.timeout,
                )
            )
        )
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(
                endpoint=f"{settings.endpoint}/v1/metrics",
                headers=headers,
                timeout=settings.timeout,
            ),
            export_interval_millis=settings.export_interval_s * 1000,
        )
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
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
            span.set_status(self._Status(self._StatusCode.ERROR, event.error[:200]))
        span.end(end_time=_ns(end))
        self.duration.record(event.latency_ms / 1000, common)
        if isinstance(event, AgentCallFinished):
            self.token_usage.record(event.usage.input_tokens, {**common, TOKEN_TYPE: "input"})
            self.token_usage.record(event.usage.output_tokens, {**common, TOKEN_TYPE: "output"})

    @property
    def last_error(self) -> str | None:
        """Export failures (they happen on the SDK's threads); shown by /telemetry."""
        log = self.export_log
        return f"{log.last} ({log.count}x)" if log.last else None

    # -- shutdown -------------------------------------------------------------------

    def close(self) -> None:
        """End open stage spans, export what is pending, shut the pipelines down: all
        within ``close_timeout_s`` (an unreachable collector must not hang the exit)."""
        for span in self._stages.values():
            span.end()
        self._stages.clear()
        budget_ms = int(self.settings.close_timeout_s * 1000)

        def shutdown() -> None:
            self.tracer_provider.force_flush(budget_ms)
            self.tracer_provider.shutdown()
            # shutdown collects and exports once more: a force_flush first would send
            # every cumulative point twice
            self.meter_provider.shutdown(timeout_millis=budget_ms)

        thread = threading.Thread(target=shutdown, name="telemetry-otlp-close", daemon=True)
        thread.start()
        thread.join(self.settings.close_timeout_s + 0.5)
        logging.getLogger("opentelemetry").removeHandler(self.export_log)


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
            f"telemetry sink otlp: {message} (reported once; check [telemetry.otlp] endpoint)"
        )

    return OtlpSink(settings, provider_of, report)


@hookimpl
def register_telemetry_sinks(register: Register) -> None:
    register("otlp", _factory, OtlpSettings)
