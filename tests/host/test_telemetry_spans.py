"""The otlp sink's span tree applies the span vocabulary events declare: nesting,
closing descendants with their parent, a bounded number of open spans, attribute
values OpenTelemetry accepts. Real OpenTelemetry SDK spans, kept in its in-memory
exporter (the collector round trip is test_telemetry_otlp's subject)."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentshell.sinks.otlp.tree import MAX_OPEN_SPANS, SpanTree, clean_attributes
from agentshell.telemetry import AddSpanEvent, EndSpan, SetAttributes, StartSpan


class Tree:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.ended = 0
        self.tree = SpanTree(provider.get_tracer("test"), self.count)

    def count(self) -> None:
        self.ended += 1

    def finished(self) -> dict[str, Any]:
        return {s.name: s for s in self.exporter.get_finished_spans()}


def test_children_nest_and_close_with_their_parent() -> None:
    t = Tree()
    t.tree.apply(StartSpan(key="run", name="run"), 10.0)
    t.tree.apply(StartSpan(key="a", name="a", parent="run", kind="client"), 11.0)
    t.tree.apply(StartSpan(key="a.1", name="a.1", parent="a"), 12.0)
    t.tree.apply(StartSpan(key="run", name="ignored", attributes={"again": True}), 13.0)
    t.tree.apply(SetAttributes(key="a", attributes={"n": 1}), 13.0)
    t.tree.apply(AddSpanEvent(key="a", name="mark", attributes={"x": "y"}), 13.5)
    t.tree.apply(EndSpan(key="run", attributes={"status": "ok"}, error="broke"), 14.0)
    spans = t.finished()
    assert set(spans) == {"run", "a", "a.1"} and t.ended == 3 and len(t.tree) == 0
    run, a, a1 = spans["run"], spans["a"], spans["a.1"]
    assert run.parent is None and a.parent.span_id == run.context.span_id
    assert a1.parent.span_id == a.context.span_id
    assert {s.context.trace_id for s in spans.values()} == {run.context.trace_id}
    assert dict(run.attributes) == {"again": True, "status": "ok"}
    assert run.status.status_code.name == "ERROR" and run.status.description == "broke"
    assert a.kind.name == "CLIENT" and dict(a.attributes) == {"n": 1}
    assert [(e.name, dict(e.attributes)) for e in a.events] == [("mark", {"x": "y"})]
    # descendants end with their parent, at its time
    assert a.end_time == a1.end_time == run.end_time == 14 * 10**9
    assert (run.start_time, a.start_time) == (10 * 10**9, 11 * 10**9)


def test_unknown_keys_are_ignored_and_an_unknown_parent_makes_a_root() -> None:
    t = Tree()
    t.tree.apply(EndSpan(key="never-opened"), 1.0)
    t.tree.apply(SetAttributes(key="never-opened", attributes={"a": 1}), 1.0)
    t.tree.apply(StartSpan(key="x", name="x", parent="never-opened"), 1.0)
    assert t.tree.context("never-opened") is None and t.tree.context("x") is not None
    t.tree.end_all()
    assert t.finished()["x"].parent is None and t.ended == 1


def test_open_spans_are_bounded_oldest_first() -> None:
    t = Tree()
    t.tree.apply(StartSpan(key="first", name="first"), 1.0)
    t.tree.apply(StartSpan(key="child", name="child", parent="first"), 1.0)
    for i in range(MAX_OPEN_SPANS - 1):
        t.tree.apply(StartSpan(key=f"k{i}", name=f"k{i}"), 2.0)
    assert set(t.finished()) == {"first", "child"}  # the oldest, with its descendant
    assert len(t.tree) == MAX_OPEN_SPANS - 1


def test_attribute_values_are_what_opentelemetry_accepts() -> None:
    assert clean_attributes(
        {"s": "a", "n": 1, "f": 0.5, "b": False, "none": None, "l": ["a", "b"],
         "t": (1, 2), "mixed": [1, "a"], "d": {"k": "v"}}
    ) == {
        "s": "a", "n": 1, "f": 0.5, "b": False, "l": ["a", "b"], "t": [1, 2],
        "mixed": ["1", "a"], "d": "{'k': 'v'}",
    }  # fmt: skip
