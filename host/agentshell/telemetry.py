"""Telemetry: typed events and the bus that delivers them to sinks.

``emit()`` is cheap and never raises: it puts the event on one bounded queue per
sink and returns. Each sink is drained by its own daemon thread, so a slow sink delays
only itself and a failing sink is reported once (then counted) while the others go on.
When a sink's queue is full the event is dropped for that sink and counted.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from .agents import TokenUsage

SCHEMA_VERSION = 1

EVENT_TYPES: dict[str, type[Event]] = {}


class Event(BaseModel):
    """Base of every telemetry event: a ``type``, a schema version and a timestamp."""

    model_config = ConfigDict(extra="forbid")

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


class SessionStarted(Event):
    type: Literal["session.started"] = "session.started"
    version: str
    plugins: list[str] = Field(default_factory=list)
    mode: Literal["repl", "run"] = "repl"


class SessionStopped(Event):
    type: Literal["session.stopped"] = "session.stopped"
    duration_s: float = 0.0
    dropped_events: int = 0


class _AgentLabels(Event):
    call_id: str
    agent: str
    backend: str
    model: str = ""
    role: str | None = None
    spec_id: str | None = None
    stage: str | None = None
    trace_parent: str | None = None  # groups a stage's calls (OTLP: parent span)


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


class ConsensusSynthesized(Event):
    type: Literal["consensus.synthesized"] = "consensus.synthesized"
    spec_id: str
    stage: str
    status: Literal["ok", "degraded", "conflict", "failed"]
    agreements: int = 0
    conflicts: int = 0
    agents: list[str] = Field(default_factory=list)
    missing_agents: list[str] = Field(default_factory=list)
    total_tokens: int = 0
    total_latency_ms: float = 0.0
    total_cost_usd: float | None = None
    synthesis_path: str | None = None
    trace_parent: str | None = None


class PipelineStageCompleted(Event):
    type: Literal["pipeline.stage_completed"] = "pipeline.stage_completed"
    spec_id: str
    stage: str
    status: str
    run_id: str | None = None
    branch_id: str | None = None
    duration_s: float = 0.0


class PipelineHalted(Event):
    type: Literal["pipeline.halted"] = "pipeline.halted"
    spec_id: str
    stage: str
    status: str
    reason: str = ""
    resume_command: str = ""
    run_id: str | None = None
    branch_id: str | None = None


class MetricsTokens(Event):
    type: Literal["metrics.tokens"] = "metrics.tokens"
    spec_id: str | None = None
    stage: str | None = None
    total: TokenUsage = Field(default_factory=TokenUsage)
    last_turn: TokenUsage = Field(default_factory=TokenUsage)
    turn_count: int = 0
    estimated_next_prompt_tokens: int = 0
    cost_usd: float | None = None


class AuthEvent(Event):
    type: Literal["auth.login", "auth.refresh", "auth.logout"]
    provider: str
    outcome: str  # "ok", "denied", "expired", "error", "cancelled", ...


class PluginErrorEvent(Event):
    type: Literal["plugin.error"] = "plugin.error"
    plugin: str
    hook: str | None = None
    error: str = ""


class BudgetAlert(Event):
    type: Literal["metrics.budget_alert"] = "metrics.budget_alert"
    threshold_pct: int
    spent_usd: float
    budget_usd: float


# AuthEvent has no single default type; register its three names explicitly
for _name in ("auth.login", "auth.refresh", "auth.logout"):
    EVENT_TYPES[_name] = AuthEvent


class TelemetrySink(Protocol):
    """What ``register_telemetry_sinks`` factories return. Called on the sink's own
    thread; may also define ``handle_batch(events)`` to receive several at once."""

    def handle(self, event: Event) -> None: ...

    def close(self) -> None: ...


@dataclass
class SinkStats:
    name: str
    delivered: int
    dropped: int
    failed: int
    queued: int
    last_error: str | None


_STOP = object()


class _SinkWorker:
    def __init__(
        self, name: str, sink: TelemetrySink, maxsize: int, on_error: Callable[[str, BaseException], None]
    ) -> None:
        self.name = name
        self.sink = sink
        self.queue: queue.Queue[Any] = queue.Queue(maxsize)
        self.delivered = 0
        self.dropped = 0
        self.failed = 0
        self.last_error: str | None = None
        self._reported = False
        self._on_error = on_error
        self._batch = getattr(sink, "handle_batch", None)
        self.thread = threading.Thread(target=self._loop, name=f"telemetry-{name}", daemon=True)
        self.thread.start()

    def put(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1

    def _loop(self) -> None:
        get = self.queue.get
        while True:
            items = [get()]
            with contextlib.suppress(queue.Empty):
                while len(items) < 512:
                    items.append(self.queue.get_nowait())
            stop = False
            events: list[Event] = []
            for item in items:
                if item is _STOP:
                    stop = True
                elif isinstance(item, threading.Event):
                    self._deliver(events)
                    events = []
                    item.set()
                else:
                    events.append(item)
            self._deliver(events)
            if stop:
                return

    def _deliver(self, events: list[Event]) -> None:
        if not events:
            return
        try:
            if self._batch is not None:
                self._batch(events)
            else:
                for event in events:
                    self.sink.handle(event)
            self.delivered += len(events)
        except Exception as exc:
            self.failed += len(events)
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            if not self._reported:
                self._reported = True
                with contextlib.suppress(Exception):
                    self._on_error(self.name, exc)

    def flush(self, timeout: float) -> bool:
        marker = threading.Event()
        try:
            self.queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        return marker.wait(timeout)

    def stop(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):
            self.queue.put(_STOP, timeout=max(timeout, 0.01))
        self.thread.join(max(deadline - time.monotonic(), 0.01))
        with contextlib.suppress(Exception):
            self.sink.close()

    def stats(self) -> SinkStats:
        return SinkStats(
            self.name, self.delivered, self.dropped, self.failed, self.queue.qsize(), self.last_error
        )


class TelemetryBus:
    """Fan events out to sinks without blocking the caller."""

    def __init__(
        self,
        *,
        session_id: str = "",
        queue_size: int = 10_000,
        capture_content: bool = False,
        on_sink_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.session_id = session_id
        self.queue_size = queue_size
        self.capture_content = capture_content
        self._on_sink_error = on_sink_error or (lambda name, exc: None)
        self._workers: tuple[_SinkWorker, ...] = ()
        self._lock = threading.Lock()
        self.emitted = 0
        self._retired: list[SinkStats] = []

    def emit(self, event: Event) -> None:
        """Queue ``event`` for every active sink. Never blocks, never raises."""
        try:
            if not event.session_id:
                event.session_id = self.session_id
            self.emitted += 1
            for worker in self._workers:
                worker.put(event)
        except Exception:
            pass

    @property
    def sink_names(self) -> list[str]:
        return [w.name for w in self._workers]

    def add_sink(self, name: str, sink: TelemetrySink) -> None:
        with self._lock:
            if name in self.sink_names:
                raise ValueError(f"telemetry sink {name!r} is already active")
            worker = _SinkWorker(name, sink, self.queue_size, self._on_sink_error)
            self._workers = (*self._workers, worker)

    def remove_sink(self, name: str, timeout: float = 2.0) -> bool:
        """Deliver what the sink has queued, close it, and stop sending it events."""
        with self._lock:
            worker = next((w for w in self._workers if w.name == name), None)
            if worker is None:
                return False
            self._workers = tuple(w for w in self._workers if w is not worker)
        worker.stop(timeout)
        self._retired.append(worker.stats())
        return True

    def replace_sinks(self, sinks: Iterable[tuple[str, TelemetrySink]], timeout: float = 2.0) -> None:
        """Swap the active sinks. New sinks start before old ones stop, so an event
        emitted during the swap reaches at least one of them."""
        new = list(sinks)
        with self._lock:
            old = self._workers
            workers = [
                _SinkWorker(name, sink, self.queue_size, self._on_sink_error) for name, sink in new
            ]
            self._workers = tuple(workers)
        for worker in old:
            worker.stop(timeout)
            self._retired.append(worker.stats())

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until every sink has handled what was emitted before; False on time-out."""
        deadline = time.monotonic() + timeout
        return all(w.flush(max(deadline - time.monotonic(), 0.01)) for w in self._workers)

    def close(self, timeout: float = 2.0) -> None:
        """Flush and close every sink, within ``timeout`` seconds in total."""
        deadline = time.monotonic() + timeout
        with self._lock:
            workers, self._workers = self._workers, ()
        for worker in workers:
            worker.stop(max(deadline - time.monotonic(), 0.01))
            self._retired.append(worker.stats())

    def stats(self) -> list[SinkStats]:
        return [w.stats() for w in self._workers]

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self.stats()) + sum(s.dropped for s in self._retired)


__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "AgentCallFailed",
    "AgentCallFinished",
    "AgentCallRetry",
    "AgentCallStarted",
    "AuthEvent",
    "BudgetAlert",
    "ConsensusSynthesized",
    "Event",
    "FaultInjected",
    "MetricsTokens",
    "PipelineHalted",
    "PipelineStageCompleted",
    "PluginErrorEvent",
    "SessionStarted",
    "SessionStopped",
    "SinkStats",
    "TelemetryBus",
    "TelemetrySink",
]
