"""Telemetry benchmark: what emit() costs the caller, and what the jsonl sink sustains.

    a  emit() on the caller's thread with the jsonl sink active: median and p99 over
       single calls, in bursts of 1000 (the REPL's situation) and back to back while
       the sink thread writes flat out (it competes for the GIL)
    b  sustained events/s into jsonl with 1 and 4 producer threads emitting as fast
       as they can (prebuilt events: measures the bus and the sink, not pydantic's
       constructor); the clock stops when the sink has written the last line
    c  the same with each producer building its events (a realistic end-to-end figure)

Targets: emit() p99 < 20 us; jsonl >= 100,000 events/s; nothing lost: lines written ==
events emitted (the queue is sized so it never fills). Prints the figures and whether
each target is met; exits 1 when one is missed and --check is given.
Run: ``python bench/telemetry.py [-n 200000]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from agentshell.agents import TokenUsage
from agentshell.sinks.jsonl import JsonlSink
from agentshell.telemetry import AgentCallFinished, TelemetryBus

USAGE = TokenUsage(input_tokens=1200, output_tokens=300, total_tokens=1500)


def make_event(i: int) -> AgentCallFinished:
    return AgentCallFinished(
        call_id=f"c{i}", agent="claude", backend="openai", model="gpt-4o",
        response_model="gpt-4o-2024-08-06", usage=USAGE, latency_ms=812.0, cost_usd=0.004,
        labels={"spec_kit.spec_id": "SPEC-KIT-DEMO", "spec_kit.stage": "plan"},
        trace_parent="tp-1",
    )  # fmt: skip


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def emit_latency(folder: Path, n: int, paced: bool) -> tuple[float, float, int, int]:
    bus = TelemetryBus(session_id="bench", queue_size=n + 1)
    path = folder / f"latency-{paced}.jsonl"
    bus.add_sink("jsonl", JsonlSink(path, max_bytes=0))
    events = [make_event(i) for i in range(1000)]
    clock = time.perf_counter_ns
    samples = []
    for i in range(n):
        event = events[i % 1000]
        start = clock()
        bus.emit(event)
        samples.append(clock() - start)
        if paced and i % 1000 == 999:
            bus.flush(10)  # the REPL emits in bursts far below the sink's rate
    bus.close(30)
    samples.sort()
    median = statistics.median(samples) / 1000
    p99 = samples[int(len(samples) * 0.99)] / 1000
    return median, p99, bus.emitted, count_lines(path)


def throughput(folder: Path, n: int, producers: int, prebuilt: bool) -> tuple[float, int, int, int]:
    path = folder / f"throughput-{producers}-{prebuilt}.jsonl"
    bus = TelemetryBus(session_id="bench", queue_size=n + 1)  # never full: nothing may drop
    bus.add_sink("jsonl", JsonlSink(path, max_bytes=0))
    pool = [make_event(i) for i in range(1000)]
    share = n // producers

    def produce() -> None:
        emit = bus.emit
        if prebuilt:
            for i in range(share):
                emit(pool[i % 1000])
        else:
            for i in range(share):
                emit(make_event(i))

    threads = [threading.Thread(target=produce) for _ in range(producers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bus.flush(120)
    elapsed = time.perf_counter() - start
    bus.close(30)
    return share * producers / elapsed, bus.emitted, count_lines(path), bus.dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200_000, help="events per throughput run")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    missed = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for paced, label in ((True, "bursts of 1000"), (False, "sink busy throughout")):
            median, p99, emitted, written = emit_latency(folder, min(args.n, 100_000), paced)
            ok = p99 < 20
            print(f"emit() with jsonl active ({label}): median {median:.2f} us, p99 {p99:.2f} us "
                  f"(target p99 < 20 us: {'met' if ok else 'MISSED'}); "
                  f"written {written} == emitted {emitted}: {written == emitted}")  # fmt: skip
            if not ok or written != emitted:
                missed.append(f"emit ({label})")
        for prebuilt in (True, False):
            for producers in (1, 4):
                rate, emitted, written, dropped = throughput(folder, args.n, producers, prebuilt)
                label = "prebuilt events" if prebuilt else "events built by producers"
                target = " (target >= 100,000/s: " + ("met" if rate >= 100_000 else "MISSED") + ")"
                print(f"jsonl, {producers} producer(s), {label}: {rate:,.0f} events/s"
                      f"{target if prebuilt else ''}; written {written} == emitted {emitted}: "
                      f"{written == emitted} (dropped {dropped})")  # fmt: skip
                if written != emitted or (prebuilt and rate < 100_000):
                    missed.append(f"jsonl-{producers}")
    if missed:
        print("targets missed: " + ", ".join(missed))
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
