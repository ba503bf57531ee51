"""The ``console`` telemetry sink: one human-readable line per event, for debugging.

``[telemetry] agent.call.finished claude gpt-4o 812ms in=1200 out=300 $0.004``
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentshell.plugins import hookimpl
from agentshell.redact import redact
from agentshell.telemetry import (
    AgentCallFailed,
    AgentCallFinished,
    AgentCallRetry,
    AgentCallStarted,
    Event,
    redact_events,
)

if TYPE_CHECKING:
    from agentshell.hookspecs import Register

_SKIP = {"type", "schema_version", "ts", "session_id"}


class ConsoleSettings(BaseModel):
    """``[telemetry.console]``."""

    model_config = ConfigDict(extra="forbid")

    stream: Literal["stderr", "stdout"] = "stderr"
    types: list[str] = Field(default_factory=list)  # type prefixes to show; empty: all


def _where(e: AgentCallStarted | AgentCallFinished | AgentCallFailed) -> str:
    return f" [{e.spec_id or ''}/{e.stage}]" if e.stage else ""


def format_event(event: Event) -> str:
    """The one-line form of ``event`` (without the ``[telemetry]`` prefix)."""
    if isinstance(event, AgentCallFinished):
        u = event.usage
        text = f"{event.agent} {event.response_model or event.model} {event.latency_ms:.0f}ms"
        text += f" in={u.input_tokens} out={u.output_tokens}"
        if u.cached_input_tokens:
            text += f" cached={u.cached_input_tokens}"
        if event.cost_usd is not None:
            text += f" ${event.cost_usd:.4g}"
        if event.attempts > 1:
            text += f" attempts={event.attempts}"
        if event.cached:
            text += " (cached)"
        return text + _where(event)
    if isinstance(event, AgentCallFailed):
        return (
            f"{event.agent} {event.model} {event.error_type} after {event.attempts} attempt(s)"
            f" {event.latency_ms:.0f}ms: {event.error}{_where(event)}"
        )
    if isinstance(event, AgentCallRetry):
        return (
            f"{event.agent} attempt {event.attempt} {event.error_type}; "
            f"retry in {event.delay_s:g}s: {event.error}"
        )
    if isinstance(event, AgentCallStarted):
        return f"{event.agent} {event.backend} {event.model}{_where(event)}"
    parts = []
    for name, value in event.__dict__.items():
        if name in _SKIP or value is None or value == [] or value == "":
            continue
        if isinstance(value, BaseModel):
            value = ",".join(f"{k}={v}" for k, v in value.__dict__.items() if v)
        parts.append(f"{name}={value}")
    return " ".join(parts)


class ConsoleSink:
    def __init__(self, write: Callable[[str], Any], types: list[str] | None = None) -> None:
        self._write = write
        self._types = tuple(types or ())

    def handle(self, event: Event) -> None:
        self.handle_batch([event])

    def handle_batch(self, events: list[Event]) -> None:
        lines = [
            f"[telemetry] {e.type} {format_event(e)}".rstrip()
            for e in redact_events(events)
            if not self._types or e.type.startswith(self._types)
        ]
        if lines:
            self._write(redact("\n".join(lines)) + "\n")

    def close(self) -> None:
        pass


def _factory(shell: Any, settings: ConsoleSettings) -> ConsoleSink:
    output = shell.output

    def write(text: str) -> None:
        # resolved per write: the REPL swaps the streams while a prompt is shown
        stream = output.err if settings.stream == "stderr" else output.stream
        stream.write(text)
        stream.flush()

    return ConsoleSink(write, settings.types)


@hookimpl
def register_telemetry_sinks(register: Register) -> None:
    register("console", _factory, ConsoleSettings)
