"""A third-party telemetry sink, written as docs/plugins.md shows: ``linefile`` appends
each event's type to ``[telemetry.linefile] path``, one per line. Its settings model
declares only ``path`` (extra keys forbidden): whether it may lose events is the host's
``[telemetry] optional``, not a setting of its own.

Load it with ``agentshell -p tests.helpers.line_sink`` (repo root on PYTHONPATH).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from agentshell.plugins import hookimpl
from agentshell.telemetry import Event

if TYPE_CHECKING:
    from agentshell.hookspecs import Register


class LineFileSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str


class LineFileSink:
    def __init__(self, path: Path) -> None:
        self.target = str(path)
        self._file = path.open("a", encoding="utf-8")  # OSError: the sink does not start

    def handle(self, event: Event) -> None:
        self._file.write(event.type + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _factory(shell: Any, settings: LineFileSettings) -> LineFileSink:
    return LineFileSink(Path(shell.cwd) / settings.path)


@hookimpl
def register_telemetry_sinks(register: Register) -> None:
    register("linefile", _factory, LineFileSettings)
