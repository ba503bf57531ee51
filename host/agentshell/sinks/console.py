"""The ``console`` telemetry sink: one human-readable line per event, for debugging.

``[telemetry] agent.call.finished claude gpt-4o 812ms in=1,200 out=300 cached=0 $0.0040``
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentshell.agents import TokenUsage
from agentshell.money import format_usd
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
    """The caller's labels, values only, in its order: ``[SPEC-KIT-DEMO/plan]``."""
    return f" [{'/'.join(str(v) for v in e.labels.values())}]" if e.labels else ""


def _usage(u: TokenUsage) -> str:
    text = f"in={u.input_tokens:,} out={u.output_tokens:,} cached={u.cached_input_tokens:,}"
    if u.reasoning_output_tokens:
        text += f" reasoning={u.reasoning_output_tokens:,}"
    return text


def _value(name: str, value: object) -> str:
    """A field value, rounded for reading: ms as integers, seconds to 2 decimals, money
    to 4; token usage compact; counts with thousands separators."""
    if isinstance(value, TokenUsage):
        return f"({_usage(value)})"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}" if name.endswith(("tokens", "_count")) else str(value)
    if isinstance(value, float):
        if name.endswith("_ms"):
            return f"{value:,.0f}"
        if name.endswith("_s"):
            return f"{value:.2f}"
        if "cost" in name or name.endswith("_usd"):
            return f"{value:.4f}"
        return f"{value:.4g}"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    text = str(value)
    return f'"{text}"' if " " in text else text  # reason="a b" stays one field


def format_event(event: Event) -> str:
    """The one-line form of ``event`` (without the ``[telemetry]`` prefix)."""
    if isinstance(event, AgentCallFinished):
        u = event.usage
        text = f"{event.agent} {event.response_model or event.model} {event.latency_ms:,.0f}ms "
        text += _usage(u)
        if event.cost_usd is not None:
            text += f" {format_usd(event.cost_usd)}"  # as /metrics shows it
        if event.attempts > 1:
            text += f" attempts={event.attempts}"
        if event.cached:
            text += " (cached)"
        text += _where(event)
    elif isinstance(event, AgentCallFailed):
        text = (
            f"{event.agent} {event.model} {event.error_type} after {event.attempts} attempt(s)"
            f" {event.latency_ms:,.0f}ms: {event.error}{_where(event)}"
        )
    elif isinstance(event, AgentCallRetry):
        text = (
            f"{event.agent} attempt {event.attempt} {event.error_type}; "
            f"retry in {event.delay_s:.2f}s: {event.error}"
        )
    elif isinstance(event, AgentCallStarted):
        text = f"{event.agent} {event.backend} {event.model}{_where(event)}"
    else:
        parts = []
        for name, value in event.__dict__.items():
            if name in _SKIP or value is None or value == [] or value == "":
                continue
            if isinstance(value, BaseModel) and not isinstance(value, TokenUsage):
                value = " ".join(f"{k}={_value(k, v)}" for k, v in value.__dict__.items() if v)
                parts.append(f"{name}=({value})")
                continue
            parts.append(f"{name}={_value(name, value)}")
        text = " ".join(parts)
    return " ".join(text.split())  # one line per event, whatever an error message holds


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
