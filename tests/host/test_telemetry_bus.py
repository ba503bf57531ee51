"""The telemetry bus: typed events, isolation of slow and failing sinks, drops, swaps
without loss, bounded close, and the redaction layer sinks share."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agentshell.agents import TokenUsage
from agentshell.redact import register_secret
from agentshell.telemetry import (
    EVENT_TYPES,
    AgentCallFailed,
    AgentCallFinished,
    AgentCallRetry,
    AgentCallStarted,
    Event,
    PluginErrorEvent,
    SessionStarted,
    TelemetryBus,
    redact_events,
)
from speckit_device_login.events import AuthEvent
from tests.helpers.paths import REPO
from tests.telemetry_helpers import EXAMPLES


class Recorder:
    """A sink that keeps what it gets and can wake a waiter at a given count."""

    def __init__(self, expect: int = 0) -> None:
        self.events: list[Event] = []
        self.closed = False
        self.expect = expect
        self.done = threading.Event()

    def handle(self, event: Event) -> None:
        self.events.append(event)
        if self.expect and len(self.events) >= self.expect:
            self.done.set()

    def close(self) -> None:
        self.closed = True


class Raising:
    def __init__(self) -> None:
        self.calls = 0

    def handle(self, event: Event) -> None:
        self.calls += 1
        raise RuntimeError("sink is broken")

    def close(self) -> None:
        pass


class Gate:
    """A sink that blocks in handle() until released (a sink stuck on slow I/O)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.events: list[Event] = []

    def handle(self, event: Event) -> None:
        self.entered.set()
        self.release.wait(60)  # a bound for a test that never releases it
        self.events.append(event)

    def close(self) -> None:
        pass


class Sleeper(Recorder):
    def handle(self, event: Event) -> None:
        time.sleep(0.002)
        super().handle(event)


def started(i: int = 0) -> AgentCallStarted:
    return AgentCallStarted(call_id=f"c{i}", agent="claude", backend="openai", model="gpt-4o")


def test_every_event_type_has_an_example_that_round_trips() -> None:
    assert set(EXAMPLES) == set(EVENT_TYPES)
    for type_name, event in EXAMPLES.items():
        assert event.type == type_name
        data = json.loads(event.model_dump_json())
        assert data["type"] == type_name and data["schema_version"] >= 1
        again = EVENT_TYPES[type_name].model_validate(data)
        assert again == event


def test_events_reject_unknown_fields() -> None:
    with pytest.raises(ValueError):
        AgentCallStarted(call_id="c", agent="a", backend="b", api_key="x")  # type: ignore[call-arg]


def test_emit_stamps_session_and_never_raises() -> None:
    bus = TelemetryBus(session_id="sess1")
    rec = Recorder(expect=1)
    bus.add_sink("rec", rec)
    bus.emit(None)  # type: ignore[arg-type]  # a caller bug must not raise into it
    bus.emit(started())
    assert bus.flush(30)
    assert [e.session_id for e in rec.events] == ["sess1"]
    bus.close()
    assert rec.closed


def test_content_is_dropped_unless_capture_is_on() -> None:
    for capture in (False, True):
        bus = TelemetryBus(capture_content=capture)
        rec = Recorder()
        bus.add_sink("rec", rec)
        bus.emit(AgentCallFinished(call_id="c", agent="a", backend="b", content="the answer"))
        bus.close()
        assert isinstance(rec.events[0], AgentCallFinished)
        assert rec.events[0].content == ("the answer" if capture else None)


def test_failing_and_slow_sinks_do_not_hold_up_the_others() -> None:
    errors: list[tuple[str, str]] = []
    bus = TelemetryBus(on_sink_error=lambda name, exc: errors.append((name, str(exc))))
    n = 300
    good, gate, sleeper, raising = Recorder(expect=n), Gate(), Sleeper(expect=n), Raising()
    bus.add_sink("raising", raising)
    bus.add_sink("gate", gate)
    bus.add_sink("sleeper", sleeper)
    bus.add_sink("good", good)
    for i in range(n):
        bus.emit(started(i))
    # the gate sink is stuck on its first event; the good one still gets everything
    assert good.done.wait(30), len(good.events)
    assert gate.entered.wait(30) and gate.events == []  # still stuck on event 0
    assert [e.call_id for e in good.events] == [f"c{i}" for i in range(n)]  # type: ignore[attr-defined]
    assert sleeper.done.wait(60)
    gate.release.set()
    assert bus.flush(30)
    stats = {s.name: s for s in bus.stats()}
    assert errors == [("raising", "sink is broken")]  # reported once, not 300 times
    assert stats["raising"].failed == n and stats["raising"].delivered == 0
    assert stats["raising"].last_error == "RuntimeError: sink is broken"
    assert stats["good"].delivered == n and stats["good"].failed == 0
    assert len(gate.events) == n and len(sleeper.events) == n
    bus.close()


def test_a_full_queue_drops_and_counts() -> None:
    bus = TelemetryBus(queue_size=10)
    gate = Gate()
    bus.add_sink("gate", gate)
    bus.emit(started(0))
    assert gate.entered.wait(30)  # the worker holds event 0; its queue is empty again
    for i in range(1, 100):
        bus.emit(started(i))
    stats = {s.name: s for s in bus.stats()}
    assert stats["gate"].dropped == 89 and stats["gate"].queued == 10
    assert bus.dropped == 89
    gate.release.set()
    assert bus.flush(30)
    assert len(gate.events) == 11
    bus.close()
    assert bus.emitted == 100 and bus.dropped == 89


def test_close_is_bounded_when_a_sink_hangs() -> None:
    bus = TelemetryBus()
    gate = Gate()
    bus.add_sink("gate", gate)
    bus.emit(started())
    assert gate.entered.wait(30)
    bus.close(timeout=0.1)  # returns although the sink never finishes
    assert bus.sink_names == []
    assert [s.name for s in bus.retired] == ["gate"]
    gate.release.set()


def test_swapping_sinks_under_load_loses_nothing() -> None:
    bus = TelemetryBus(queue_size=1_000_000)
    sinks = [Recorder()]
    bus.replace_sinks([("r0", sinks[0])])
    stop = threading.Event()
    sent = 0

    def produce() -> None:
        nonlocal sent
        while not stop.is_set():
            bus.emit(started(sent))
            sent += 1

    producer = threading.Thread(target=produce)
    producer.start()
    for i in range(1, 30):
        sinks.append(Recorder())
        bus.replace_sinks([(f"r{i}", sinks[-1])])
        time.sleep(0.002)
    stop.set()
    producer.join()
    bus.close()
    got = [e.call_id for s in sinks for e in s.events]  # type: ignore[attr-defined]
    assert len(got) == sent == bus.emitted
    assert sorted(got, key=lambda c: int(c[1:])) == [f"c{i}" for i in range(sent)]
    assert all(s.closed for s in sinks)


def test_add_and_remove_sink() -> None:
    bus = TelemetryBus()
    rec = Recorder()
    bus.add_sink("rec", rec)
    with pytest.raises(ValueError, match="already active"):
        bus.add_sink("rec", Recorder())
    bus.emit(started())
    assert bus.remove_sink("rec")
    assert rec.closed and len(rec.events) == 1
    assert not bus.remove_sink("rec")
    bus.emit(started())
    assert bus.emitted == 2 and len(rec.events) == 1


def test_redact_events_masks_string_fields_and_keeps_clean_batches() -> None:
    secret = "zz-registered-secret-9f8e7d"
    register_secret(secret)
    clean = [started(1), AgentCallFinished(call_id="c", agent="a", backend="b")]
    assert redact_events(clean) is clean  # the fast path copies nothing
    dirty = [
        started(2),
        PluginErrorEvent(plugin="p", error=f"failed with {secret}"),
        AgentCallRetry(
            call_id="c",
            agent="a",
            backend="b",
            attempt=1,
            next_attempt=2,
            delay_s=1,
            error_type="x",
            error="server said password=hunter2hunter2",
        ),
        SessionStarted(version="1", plugins=["ok", secret]),
        AuthEvent(type="auth.login", provider="device_login", outcome="ok"),
    ]
    out = redact_events(dirty)
    text = "".join(e.model_dump_json() for e in out)
    assert secret not in text and "hunter2hunter2" not in text
    assert out[0] is dirty[0] and out[4] is dirty[4]  # unchanged events are not copied
    assert secret in dirty[1].error  # type: ignore[attr-defined]  # originals untouched
    assert isinstance(out[2], AgentCallRetry) and out[2].error.startswith("server said password=")


def test_redact_events_covers_a_third_party_event_with_a_mapping() -> None:
    class Custom(Event):
        type: str = "thirdparty.custom"
        attributes: dict[str, str] = {}
        note: str | None = None

    try:
        assert EVENT_TYPES["thirdparty.custom"] is Custom  # subclasses register themselves
        event = Custom(attributes={"header": "Bearer abcdef123456"}, note="fine")
        (out,) = redact_events([event])
        assert isinstance(out, Custom)
        assert out.attributes == {"header": "Bearer ****"} and out.note == "fine"
    finally:
        EVENT_TYPES.pop("thirdparty.custom", None)


def test_queued_events_are_written_at_interpreter_exit(tmp_path: Path) -> None:
    """A session that never calls close() still gets its events out (atexit)."""
    out = tmp_path / "t.jsonl"
    code = f"""
from pathlib import Path
from agentshell.telemetry import TelemetryBus, AgentCallFailed
from agentshell.sinks.jsonl import JsonlSink
bus = TelemetryBus()
bus.add_sink("jsonl", JsonlSink(Path({str(out)!r})))
for i in range(5000):
    bus.emit(AgentCallFailed(call_id=str(i), agent="a", backend="b", error_type="timeout"))
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    lines = out.read_text().splitlines()
    assert len(lines) == 5000
    assert json.loads(lines[-1])["call_id"] == "4999"


def test_failed_and_finished_carry_usage_and_error_type() -> None:
    bus = TelemetryBus()
    rec = Recorder()
    bus.add_sink("rec", rec)
    bus.emit(
        AgentCallFinished(
            call_id="1", agent="a", backend="b", usage=TokenUsage(input_tokens=3, output_tokens=4)
        )
    )
    bus.emit(AgentCallFailed(call_id="2", agent="a", backend="b", error_type="timeout"))
    bus.close()
    dumped: list[dict[str, Any]] = [json.loads(e.model_dump_json()) for e in rec.events]
    assert dumped[0]["usage"]["input_tokens"] == 3
    assert dumped[1]["error_type"] == "timeout"


def test_docs_show_every_event_type_with_a_valid_example() -> None:
    text = (REPO / "docs" / "telemetry.md").read_text()
    blocks = [json.loads(b.split("```", 1)[0]) for b in text.split("```json")[1:]]
    shown = {}
    for block in (b for b in blocks if "type" in b):
        shown[block["type"]] = EVENT_TYPES[block["type"]].model_validate(block)
    assert set(shown) == set(EVENT_TYPES)
    assert shown == EXAMPLES
