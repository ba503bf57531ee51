"""Telemetry: typed events and the bus that delivers them to sinks.

``emit()`` is cheap and never raises: it appends the event to one bounded queue per
sink and returns (a few microseconds). Each sink is drained by its own daemon thread in
batches, so a slow sink delays only itself and a failing sink is reported once (then
counted) while the others go on. When a sink's queue is full the event is dropped for
that sink and counted. Queued events are flushed at close and at interpreter exit,
within a bounded time.
"""

from __future__ import annotations

import atexit
import contextlib
import operator
import threading
import time
import types
import typing
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from .agents import TokenUsage
from .redact import contains_registered_secret, redact

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
    thread; may also define ``handle_batch(events)`` to receive several at once, a
    ``target`` (attribute, property or method: where it writes, a path or URL, shown by
    ``/telemetry`` and read through :func:`sink_target`), a ``last_error`` attribute
    (str or None) that ``/telemetry`` shows for failures that happen elsewhere (an
    exporter's background thread), ``exported``/``export_failed`` counts and an
    ``export_detail`` line when it hands events to another pipeline, and ``flush()``,
    called by ``TelemetryBus.flush`` to send what that pipeline buffers."""

    def handle(self, event: Event) -> None: ...

    def close(self) -> None: ...


@dataclass
class SinkStats:
    name: str
    delivered: int  # events the sink's handle() accepted
    dropped: int
    failed: int  # events whose handle() raised
    queued: int
    last_error: str | None
    # sinks that hand events to another pipeline (otlp: the OpenTelemetry SDK) say what
    # actually left the process, through ``exported``/``export_failed``/``export_detail``
    # attributes; None for sinks that write directly (delivered is written)
    exported: int | None = None
    export_failed: int | None = None
    export_detail: str | None = None
    # where the sink writes (a ``target`` attribute: jsonl's path, otlp's endpoint) and
    # when it was active: tells apart the same sink used several times in a session
    target: str | None = None
    started_at: float | None = None
    stopped_at: float | None = None


def shorten(text: str, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters, cut at a word boundary with
    an ellipsis: a message cut mid-word ("retrying i") reads as a bug."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + "…"


# -- redaction -------------------------------------------------------------------------
# Events never carry secrets by construction; sinks still scrub every string field as a
# second line of defence. ``redact()`` costs microseconds per string, so a batch is first
# screened with cheap substring tests and only suspicious batches are scrubbed field by
# field (never the serialized JSON: a mask could swallow its quotes and braces).

_SECRET_HINTS = (
    "key", "token", "secret", "passw", "credential", "auth", "bearer",
    "sk-", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xox",
)  # fmt: skip


_Getter = Callable[[dict[str, Any]], tuple[Any, ...]]
_screens: dict[type[Event], tuple[_Getter, _Getter]] = {}


def _may_hold_text(annotation: Any) -> bool:
    if annotation is None or annotation is type(None):
        return False
    if isinstance(annotation, type):
        if issubclass(annotation, bool | int | float):
            return False
        if issubclass(annotation, BaseModel):
            return any(_may_hold_text(f.annotation) for f in annotation.model_fields.values())
        return True
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return any(_may_hold_text(a) for a in args)
    return True  # list[str], dict[...], anything else


def _screen_for(cls: type[Event]) -> tuple[_Getter, _Getter]:
    """Per event class: getters of its string-typed fields and of its other fields that
    may hold strings (lists, dicts, nested models). ``type`` is left out: its values
    ("metrics.tokens", "auth.login") would trip the screen on every such event."""
    scalars: list[str] = []
    others: list[str] = []
    for name, info in cls.model_fields.items():
        note = repr(info.annotation)
        if name == "type" or "Literal" in note:
            continue
        if info.annotation in (str, str | None):
            scalars.append(name)
        elif _may_hold_text(info.annotation):
            others.append(name)

    def getter(names: list[str]) -> _Getter:
        # itemgetter returns a bare value for one name; always hand back a tuple
        if not names:
            return lambda d: ()
        if len(names) == 1:
            one = names[0]
            return lambda d: (d[one],)
        return operator.itemgetter(*names)

    _screens[cls] = screen = (getter(scalars), getter(others))
    return screen


def _screen_text(events: list[Event]) -> str:
    # the string values of a batch, gathered with C-level getters (this runs for every
    # event a sink writes, so it must cost well under a microsecond per event)
    parts: list[str] = []
    for event in events:
        screen = _screens.get(event.__class__) or _screen_for(event.__class__)
        values = event.__dict__
        parts.extend(filter(None, screen[0](values)))
        for value in screen[1](values):
            if value.__class__ is str:
                parts.append(value)
            elif value:  # lists, dicts, nested models: their text form is enough to screen
                parts.append(str(value))
    return "\x00".join(parts)


def _suspicious(text: str) -> bool:
    low = text.lower()
    if any(hint in low for hint in _SECRET_HINTS):
        return True
    return contains_registered_secret(text)  # the secrets the process has learnt


def _redact_event(event: Event) -> Event:
    update: dict[str, Any] = {}
    for name, value in event.__dict__.items():
        if name == "type":
            continue
        if isinstance(value, str):
            clean = redact(value)
            if clean != value:
                update[name] = clean
        elif isinstance(value, list) and any(isinstance(v, str) for v in value):
            cleaned = [redact(v) if isinstance(v, str) else v for v in value]
            if cleaned != value:
                update[name] = cleaned
        elif isinstance(value, dict):  # a third party's event with a mapping field
            table = {k: redact(v) if isinstance(v, str) else v for k, v in value.items()}
            if table != value:
                update[name] = table
    return event.model_copy(update=update) if update else event


def redact_events(events: list[Event]) -> list[Event]:
    """``events`` with :func:`agentshell.redact.redact` applied to every string field
    (copies only where something changed; the originals are shared with other sinks)."""
    if not _suspicious(_screen_text(events)):
        return events
    return [_redact_event(e) for e in events]


# -- delivery --------------------------------------------------------------------------

_STOP = object()
_BATCH = 1024


class _SinkWorker:
    """One sink, its queue and the daemon thread that drains it.

    The queue is a deque (append/popleft are atomic and ~20x cheaper than
    ``queue.Queue``); the thread sleeps on an Event that producers set only when it
    announced it is idle, so a busy sink costs producers one append.
    """

    def __init__(
        self,
        name: str,
        sink: TelemetrySink,
        maxsize: int,
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        self.name = name
        self.sink = sink
        self.maxsize = maxsize
        self.items: deque[Any] = deque()
        self.delivered = 0
        self.dropped = 0  # only changed under the bus lock
        self.failed = 0
        self.last_error: str | None = None
        self.closed = False
        self.flushed = True  # False when the sink's last flush() said it did not finish
        self.stopping = False
        self._idle = False
        self._wake = threading.Event()
        self._reported = False
        self._on_error = on_error
        self._batch = getattr(sink, "handle_batch", None)
        self.started_at = time.time()
        self.stopped_at: float | None = None
        self.thread = threading.Thread(target=self._loop, name=f"telemetry-{name}", daemon=True)
        self.thread.start()

    def put(self, event: Event) -> None:
        if len(self.items) >= self.maxsize:
            self.dropped += 1
            return
        self.items.append(event)
        if self._idle:  # one wake-up per idle spell, not one per event
            self._idle = False
            self._wake.set()

    def control(self, item: object) -> None:
        self.items.append(item)  # markers are never dropped
        self._wake.set()

    def _loop(self) -> None:
        items = self.items
        while True:
            if not items:
                self._idle = True
                # re-check after announcing idleness: a producer that appended before
                # seeing _idle=True is caught here, one that appended after sets _wake
                if not items:
                    self._wake.wait(1.0)
                self._wake.clear()
                self._idle = False
                continue
            batch = [items.popleft() for _ in range(min(len(items), _BATCH))]
            events: list[Event] = []
            for item in batch:
                if item is _STOP:
                    self._deliver(events)
                    self._close()
                    return
                if isinstance(item, threading.Event):
                    self._deliver(events)
                    events = []
                    self._flush_sink()
                    item.set()
                else:
                    events.append(item)
            self._deliver(events)

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
            self._fail(exc)

    def _flush_sink(self) -> None:
        # a sink that buffers further (otlp: the SDK's batch processor) sends now
        flush = getattr(self.sink, "flush", None)
        if flush is not None:
            try:
                self.flushed = flush() is not False  # False: its pipeline timed out
            except Exception as exc:
                self.flushed = False
                self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        self.last_error = shorten(f"{type(exc).__name__}: {redact(str(exc))}")
        if not self._reported:
            self._reported = True
            with contextlib.suppress(Exception):
                self._on_error(self.name, exc)

    def _close(self) -> None:
        try:
            self.sink.close()
        except Exception as exc:
            self._fail(exc)
        self.closed = True

    def flush(self, timeout: float) -> bool:
        if not self.thread.is_alive():
            return not self.items
        marker = threading.Event()
        self.control(marker)
        return marker.wait(timeout)

    def mark(self) -> threading.Event:
        marker = threading.Event()
        self.control(marker)
        return marker

    def stop(self, timeout: float) -> bool:
        """Deliver what is queued, close the sink (on its own thread); False when that
        did not finish within ``timeout`` (the thread is abandoned: it is a daemon)."""
        if not self.stopping:
            self.stopping = True
            self.control(_STOP)
        self.thread.join(max(timeout, 0.0))
        return self.closed

    def unfinished(self) -> str | None:
        """What this sink has not written yet, in words, or None when nothing: events
        still in its queue and what its own pipeline holds (a ``pending`` attribute)."""
        parts = []
        queued = sum(1 for item in list(self.items) if isinstance(item, Event))
        if queued:
            parts.append(f"{queued:,} event(s) still queued")
        pending = getattr(self.sink, "pending", None)
        if pending:
            parts.append(str(pending))
        if not parts:
            return None
        target = sink_target(self.sink)
        return f"{self.name}{f' ({target})' if target else ''}: {', '.join(parts)}"

    def stats(self) -> SinkStats:
        # a sink may report failures that happen off its handle() path (an exporter's
        # background thread) through a ``last_error`` attribute
        sink = self.sink
        error = self.last_error or getattr(sink, "last_error", None)
        return SinkStats(
            self.name,
            self.delivered,
            self.dropped,
            self.failed,
            len(self.items),
            error,
            getattr(sink, "exported", None),
            getattr(sink, "export_failed", None),
            getattr(sink, "export_detail", None),
            sink_target(sink),
            self.started_at,
            self.stopped_at,
        )


class Flush:
    """A flush in progress (:meth:`TelemetryBus.start_flush`)."""

    def __init__(self, markers: list[tuple[_SinkWorker, threading.Event]]) -> None:
        self._markers = markers
        # a sink that sends on (otlp) may "finish" by failing: compare its failures
        self._failed = [_export_failed(w.sink) for w, _ in markers]

    @property
    def done(self) -> bool:
        return all(marker.is_set() for _, marker in self._markers)

    def wait(self, timeout: float) -> bool:
        """True when every sink handled everything within ``timeout`` seconds (what
        it sends on may still be pending or have failed: :meth:`unfinished` says so)."""
        deadline = time.monotonic() + timeout
        for _, marker in self._markers:
            marker.wait(max(deadline - time.monotonic(), 0.0))
        return self.done

    def unfinished(self) -> list[str]:
        """One line per sink that has not written everything yet (what and how much):
        still being written in the background."""
        lines = []
        for worker, marker in self._markers:
            if marker.is_set() and worker.flushed:
                continue
            lines.append(worker.unfinished() or f"{worker.name}: still writing")
        return lines

    def failed(self) -> list[str]:
        """One line per sink whose exports failed during the flush (given up on)."""
        lines = []
        for (worker, _), before in zip(self._markers, self._failed, strict=True):
            if _export_failed(worker.sink) > before:
                error = getattr(worker.sink, "last_error", None) or "export failed"
                lines.append(f"{worker.name}: {error}")
        return lines


def _export_failed(sink: object) -> int:
    value = getattr(sink, "export_failed", None)
    return value if isinstance(value, int) else 0


def sink_target(sink: object) -> str | None:
    """Where ``sink`` writes, as ``/telemetry`` shows it: its optional ``target`` (an
    attribute or property, or a method called without arguments), redacted; ``None``
    when it has none, it is empty, or reading it raises (a display never fails)."""
    try:
        target = getattr(sink, "target", None)
        if callable(target):  # ``def target(self)``: as good as a property
            target = target()
    except Exception:
        return None
    return redact(str(target)) if target else None


class TelemetryBus:
    """Fan events out to sinks without blocking the caller."""

    def __init__(
        self,
        *,
        session_id: str = "",
        queue_size: int = 10_000,
        capture_content: bool = False,
        on_sink_error: Callable[[str, BaseException], None] | None = None,
        exit_timeout: float = 2.0,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self.session_id = session_id
        # one line per sink that could not write everything before it was closed
        self._on_warning = on_warning or (lambda message: None)
        self.queue_size = queue_size
        self.capture_content = capture_content
        self.exit_timeout = exit_timeout
        self._on_sink_error = on_sink_error or (lambda name, exc: None)
        self._workers: tuple[_SinkWorker, ...] = ()
        # held by emit() for a few hundred ns and by a swap for a tuple assignment: an
        # event is queued to exactly the sinks active when it was counted, so a swap
        # never loses one (the old sinks are stopped only after the swap)
        self._lock = threading.Lock()
        self._swap_lock = threading.Lock()
        self.emitted = 0
        self._retired: list[SinkStats] = []
        _live_buses.add(self)

    def emit(self, event: Event) -> None:
        """Queue ``event`` for every active sink. Never blocks, never raises."""
        try:
            if not event.session_id:
                event.session_id = self.session_id
            if (
                type(event) is AgentCallFinished
                and event.content is not None
                and not self.capture_content
            ):
                event = event.model_copy(update={"content": None})
            with self._lock:
                self.emitted += 1
                for worker in self._workers:
                    worker.put(event)
        except Exception:
            pass

    @property
    def sink_names(self) -> list[str]:
        return [w.name for w in self._workers]

    def _start(self, name: str, sink: TelemetrySink) -> _SinkWorker:
        return _SinkWorker(name, sink, self.queue_size, self._on_sink_error)

    def add_sink(self, name: str, sink: TelemetrySink) -> None:
        with self._swap_lock:
            if name in self.sink_names:
                raise ValueError(f"telemetry sink {name!r} is already active")
            worker = self._start(name, sink)
            with self._lock:
                self._workers = (*self._workers, worker)

    def remove_sink(self, name: str, timeout: float = 2.0) -> bool:
        """Deliver what the sink has queued, close it, and stop sending it events."""
        with self._swap_lock:
            worker = next((w for w in self._workers if w.name == name), None)
            if worker is None:
                return False
            with self._lock:
                self._workers = tuple(w for w in self._workers if w is not worker)
        self._retire([worker], timeout)
        return True

    def replace_sinks(
        self, sinks: Iterable[tuple[str, TelemetrySink]], timeout: float = 2.0
    ) -> None:
        """Swap the active sinks. Every event emitted before the swap reaches the old
        sinks (they are drained and closed), every event after it the new ones."""
        with self._swap_lock:
            workers = tuple(self._start(name, sink) for name, sink in sinks)
            with self._lock:
                old, self._workers = self._workers, workers
        self._retire(list(old), timeout)

    def _retire(self, workers: list[_SinkWorker], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for worker in workers:  # all drain in parallel; then wait for each
            worker.stopping = True
            worker.control(_STOP)
        for worker in workers:
            finished = worker.stop(deadline - time.monotonic())
            worker.stopped_at = time.time()
            self._retired.append(worker.stats())
            lost = worker.unfinished()
            if lost or not finished:
                # one line per sink, at the swap or the exit that lost its events
                waited = "" if finished else f"; gave up after {timeout:g} s, they are lost"
                with contextlib.suppress(Exception):
                    self._on_warning(
                        f"telemetry: {lost or worker.name + ': did not close'}{waited}"
                    )

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until every sink has handled what was emitted before; False on time-out."""
        return self.start_flush().wait(timeout)

    def start_flush(self) -> Flush:
        """Ask every active sink to write what was emitted so far; the returned handle
        waits for it (``/telemetry flush`` polls it so that Ctrl-C interrupts)."""
        return Flush([(w, w.mark()) for w in self._workers])

    def close(self, timeout: float = 2.0) -> None:
        """Flush and close every sink, within ``timeout`` seconds in total."""
        with self._swap_lock, self._lock:
            workers, self._workers = self._workers, ()
        self._retire(list(workers), timeout)
        _live_buses.discard(self)

    def stats(self) -> list[SinkStats]:
        return [w.stats() for w in self._workers]

    @property
    def retired(self) -> list[SinkStats]:
        """Counters of the sinks that were active earlier in this session."""
        return list(self._retired)

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self.stats()) + sum(s.dropped for s in self._retired)


# A session that ends without Shell.stop() (an uncaught error, sys.exit in a plugin)
# still gets its queued events written, within each bus's exit_timeout.
_live_buses: weakref.WeakSet[TelemetryBus] = weakref.WeakSet()


@atexit.register
def _close_live_buses() -> None:
    for bus in list(_live_buses):
        with contextlib.suppress(Exception):
            bus.close(bus.exit_timeout)


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
    "Flush",
    "MetricsTokens",
    "PipelineHalted",
    "PipelineStageCompleted",
    "PluginErrorEvent",
    "SessionStarted",
    "SessionStopped",
    "SinkStats",
    "TelemetryBus",
    "TelemetrySink",
    "redact_events",
    "shorten",
    "sink_target",
]
