"""One sink at work: its bounded queue and the daemon thread that drains it in
batches, isolating the sink (slow: delays only itself; failing: reported once, then
counted). :class:`SinkStats` is what ``/telemetry`` shows of it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..redact import redact
from .events import Event


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
    # once the sink is closed: what it lost for good, in words ("3 event(s) not
    # written"), or None when it lost nothing (see SinkWorker.lost)
    lost: str | None = None


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


STOP = object()
_BATCH = 1024


class SinkWorker:
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
                if item is STOP:
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
        self.last_error = shorten(redact(describe_error(exc)))
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
            self.control(STOP)
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

    def lost(self) -> str | None:
        """What this sink lost for good, in words, or None when nothing: events dropped
        (queue full), events its ``handle()`` raised on, events still queued when it was
        closed, and what its own pipeline lost (an optional ``lost`` attribute, e.g.
        otlp's "26 span(s) not exported"; else its ``export_failed`` count). Final only
        once the sink is closed: before, queued events may still be written."""
        parts = []
        if self.dropped:
            parts.append(f"{self.dropped:,} event(s) dropped (queue full)")
        if self.failed:
            parts.append(f"{self.failed:,} event(s) not written")
        queued = sum(1 for item in list(self.items) if isinstance(item, Event))
        if queued:
            parts.append(f"{queued:,} event(s) still queued when it was closed")
        own = _attribute(self.sink, "lost", _ABSENT)
        if own is not _ABSENT:  # the sink says it itself (None: nothing lost)
            if own:
                parts.append(redact(str(own)))
        elif export_failed(self.sink):
            parts.append(f"{export_failed(self.sink):,} export(s) failed")
        return ", ".join(parts) or None

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
            self.lost() if self.stopped_at is not None else None,
        )


def describe_error(exc: BaseException) -> str:
    """A sink's failure for the user, without an exception class name where the error
    speaks for itself: a file problem names the file (``cannot write PATH: No space left
    on device``), a network one its cause."""
    if isinstance(exc, OSError) and exc.strerror:  # a real system error (errno)
        what = exc.strerror
        return f"cannot write {exc.filename}: {what}" if exc.filename else what
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_ABSENT = object()


def _attribute(sink: object, name: str, default: object = None) -> object:
    """An optional attribute or property of a sink; None when reading it raises."""
    try:
        return getattr(sink, name, default)
    except Exception:
        return None


def export_failed(sink: object) -> int:
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


__all__ = [
    "STOP",
    "SinkStats",
    "SinkWorker",
    "TelemetrySink",
    "describe_error",
    "export_failed",
    "shorten",
    "sink_target",
]
