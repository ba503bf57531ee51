"""Agent calls as the OpenTelemetry GenAI semantic conventions describe them: one CLIENT
span ``chat <model>`` per call (under the span its context's ``trace_parent`` names,
with the caller's labels as attributes and each retry as a span event), and the
``gen_ai.client.token.usage`` / ``gen_ai.client.operation.duration`` histograms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentshell.telemetry import AgentCallFailed, AgentCallFinished, AgentCallRetry, shorten

from .tree import SpanTree, clean_attributes, ns

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

MAX_RETRIES_KEPT = 32  # per call, and at most 4096 calls with retries pending


class AgentCallMapper:
    """Turns finished and failed calls into spans and histogram points."""

    def __init__(
        self,
        tracer: Any,
        meter: Any,
        tree: SpanTree,
        provider_of: Callable[[str], str | None],
        on_end: Callable[[], None],
    ) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._tracer = tracer
        self._tree = tree
        self._provider_of = provider_of
        self._on_end = on_end
        self._CLIENT = SpanKind.CLIENT
        self._Status, self._ERROR = Status, StatusCode.ERROR
        self._retries: dict[str, list[AgentCallRetry]] = {}  # call_id -> retries so far
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

    def retry(self, event: AgentCallRetry) -> None:
        """Kept until the call ends, then recorded as span events on its span."""
        retries = self._retries.setdefault(event.call_id, [])
        if len(retries) < MAX_RETRIES_KEPT and len(self._retries) < 4096:
            retries.append(event)

    def ended(self, event: AgentCallFinished | AgentCallFailed) -> None:
        end = event.ts
        start = end - event.latency_ms / 1000
        provider = self._provider_of(event.agent) or event.backend
        common = {OPERATION: "chat", PROVIDER: provider, REQUEST_MODEL: event.model}
        # the caller's labels first: the host's own names win over a clash
        attributes: dict[str, Any] = {**clean_attributes(event.labels), **common}
        attributes[AGENT_NAME] = event.agent
        attributes["gen_ai.request.attempts"] = event.attempts
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
        span = self._tracer.start_span(
            f"chat {event.model}".rstrip(),
            context=self._tree.context(event.trace_parent),
            kind=self._CLIENT,
            start_time=ns(start),
            attributes=attributes,
        )
        for retry in self._retries.pop(event.call_id, ()):
            span.add_event(
                "retry",
                {"attempt": retry.attempt, "delay_s": retry.delay_s, ERROR_TYPE: retry.error_type},
                timestamp=ns(retry.ts),
            )
        if isinstance(event, AgentCallFailed):
            span.set_status(self._Status(self._ERROR, shorten(event.error, 200)))
        span.end(end_time=ns(end))
        self._on_end()
        self.duration.record(event.latency_ms / 1000, common)
        if isinstance(event, AgentCallFinished):
            self.token_usage.record(event.usage.input_tokens, {**common, TOKEN_TYPE: "input"})
            self.token_usage.record(event.usage.output_tokens, {**common, TOKEN_TYPE: "output"})


__all__ = ["AgentCallMapper"]
