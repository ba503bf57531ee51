"""Telemetry captured in-process: a sink that keeps every event, and a test plugin that
registers one as the telemetry sink named "list"."""

from __future__ import annotations

from typing import Any

from agentshell.plugins import hookimpl
from agentshell.telemetry import Event


class ListSink:
    """Keeps every event it receives (on the bus's thread: read after ``flush``)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def handle(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


class ListSinkPlugin:
    """Registers :attr:`sink` as the telemetry sink named "list"."""

    __name__ = "list_sink"

    def __init__(self) -> None:
        self.sink = ListSink()

    @property
    def events(self) -> list[Event]:
        return self.sink.events

    def of(self, kind: type[Event]) -> list[Any]:
        return self.sink.of(kind)

    @hookimpl
    def register_telemetry_sinks(self, register: Any) -> None:
        register("list", lambda shell, settings: self.sink)
