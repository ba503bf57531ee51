"""The telemetry bus: fans events out to sinks without blocking the caller.

``emit()`` is cheap and never raises: it appends the event to one bounded queue per
sink and returns (a few microseconds). Each sink is drained by its own daemon thread in
batches (:mod:`.worker`), so a slow sink delays only itself and a failing sink is
reported once (then counted) while the others go on. When a sink's queue is full the
event is dropped for that sink and counted. Queued events are flushed at close and at
interpreter exit, within a bounded time.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .events import AgentCallFinished, Event
from .worker import STOP, SinkStats, SinkWorker, TelemetrySink, export_failed


@dataclass(frozen=True)
class SinkLoss:
    """A sink that lost events for good this session (:meth:`TelemetryBus.losses`)."""

    name: str
    target: str | None  # where it wrote; None for a sink that never started
    lost: str  # what, in words: "3 event(s) not written", "26 span(s) not exported"
    why: str | None  # "last error: ...", or "it did not start: ..."

    def __str__(self) -> str:
        where = f" ({self.target})" if self.target else ""
        why = f"; {self.why}" if self.why else ""
        return f"telemetry: {self.name}{where}: {self.lost}{why}"


@dataclass
class _Unavailable:
    """A configured sink that could not be started: it misses every event from then on,
    until a swap chooses the sinks again or the session closes."""

    name: str
    reason: str
    emitted_before: int


class Flush:
    """A flush in progress (:meth:`TelemetryBus.start_flush`)."""

    def __init__(self, markers: list[tuple[SinkWorker, threading.Event]]) -> None:
        self._markers = markers
        # a sink that sends on (otlp) may "finish" by failing: compare its failures
        self._failed = [export_failed(w.sink) for w, _ in markers]

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
            if export_failed(worker.sink) > before:
                error = getattr(worker.sink, "last_error", None) or "export failed"
                lines.append(f"{worker.name}: {error}")
        return lines


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
        self._workers: tuple[SinkWorker, ...] = ()
        # held by emit() for a few hundred ns and by a swap for a tuple assignment: an
        # event is queued to exactly the sinks active when it was counted, so a swap
        # never loses one (the old sinks are stopped only after the swap)
        self._lock = threading.Lock()
        self._swap_lock = threading.Lock()
        self.emitted = 0
        self._retired: list[SinkStats] = []
        self._unavailable: list[_Unavailable] = []
        self._missed: list[SinkLoss] = []  # unavailable sinks, once the set changed
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

    def _start(self, name: str, sink: TelemetrySink) -> SinkWorker:
        return SinkWorker(name, sink, self.queue_size, self._on_sink_error)

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
        self,
        sinks: Iterable[tuple[str, TelemetrySink]],
        timeout: float = 2.0,
        *,
        unavailable: Mapping[str, str] | None = None,
    ) -> None:
        """Swap the active sinks. Every event emitted before the swap reaches the old
        sinks (they are drained and closed), every event after it the new ones.
        ``unavailable`` names the sinks that were wanted but could not be started (and
        why): every event from now until the next swap is counted as lost to them."""
        with self._swap_lock:
            workers = tuple(self._start(name, sink) for name, sink in sinks)
            with self._lock:
                old, self._workers = self._workers, workers
                self._settle_unavailable()
                self._unavailable = [
                    _Unavailable(name, reason, self.emitted)
                    for name, reason in (unavailable or {}).items()
                ]
        self._retire(list(old), timeout)

    def _settle_unavailable(self) -> None:
        # called under self._lock: the events emitted while each was wanted are lost
        for entry in self._unavailable:
            missed = self.emitted - entry.emitted_before
            if missed:
                lost, why = f"all {missed:,} event(s) lost", f"it did not start: {entry.reason}"
                self._missed.append(SinkLoss(entry.name, None, lost, why))
        self._unavailable = []

    def not_started(self) -> list[tuple[str, str, int]]:
        """The configured sinks that could not be started and are still wanted: name,
        why, and how many events they have missed so far (``/telemetry`` shows them)."""
        with self._lock:
            return [(u.name, u.reason, self.emitted - u.emitted_before) for u in self._unavailable]

    def losses(self) -> list[SinkLoss]:
        """Every sink that lost events for good this session, closed ones only (an
        active sink may still write what it holds): the sinks that could not start, and
        those that dropped events, failed to write or export them, or were closed with
        events unwritten."""
        with self._lock:
            missed = list(self._missed)
        closed = [
            SinkLoss(s.name, s.target, s.lost, s.last_error and f"last error: {s.last_error}")
            for s in self._retired
            if s.lost
        ]
        return missed + closed

    def _retire(self, workers: list[SinkWorker], timeout: float, *, report: bool = True) -> None:
        deadline = time.monotonic() + timeout
        for worker in workers:  # all drain in parallel; then wait for each
            worker.stopping = True
            worker.control(STOP)
        for worker in workers:
            finished = worker.stop(deadline - time.monotonic())
            worker.stopped_at = time.time()
            stats = worker.stats()
            if not finished:  # stuck in the sink's own code: what it held is lost too
                pending = None
                with contextlib.suppress(Exception):  # a sink's property: never fails a close
                    pending = getattr(worker.sink, "pending", None)
                pending = pending or "what it was still writing"
                stuck = f"{pending}; gave up after {timeout:g} s, they are lost"
                stats.lost = f"{stats.lost}, {stuck}" if stats.lost else stuck
            self._retired.append(stats)
            lost = worker.unfinished()
            if report and (lost or not finished):
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

    def close(self, timeout: float = 2.0, *, report: bool = True) -> None:
        """Flush and close every sink, within ``timeout`` seconds in total. With
        ``report=False`` what the sinks could not write is not warned about: the caller
        reports :meth:`losses` itself (the shell, in one line per sink)."""
        with self._swap_lock, self._lock:
            workers, self._workers = self._workers, ()
            self._settle_unavailable()
        self._retire(list(workers), timeout, report=report)
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


__all__ = ["Flush", "SinkLoss", "TelemetryBus"]
