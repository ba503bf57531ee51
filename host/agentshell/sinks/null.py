"""The ``null`` telemetry sink: accepts every event and keeps none."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentshell.plugins import hookimpl

if TYPE_CHECKING:
    from agentshell.hookspecs import Register
    from agentshell.telemetry import Event


class NullSink:
    def handle(self, event: Event) -> None:
        pass

    def handle_batch(self, events: list[Event]) -> None:
        pass

    def close(self) -> None:
        pass


def _factory(shell: Any, settings: Any) -> NullSink:
    return NullSink()


@hookimpl
def register_telemetry_sinks(register: Register) -> None:
    register("null", _factory)
