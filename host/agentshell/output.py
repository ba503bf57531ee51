"""Everything the shell and its plugins print goes through :class:`Output`.

Messages are one line each and redacted; tables and other rich renderables use a
lazily created ``rich`` console (rich is not imported until something needs it).
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Sequence
from typing import IO, Any

from .redact import redact, redact_tree


class Output:
    def __init__(self, stream: IO[str] | None = None, err: IO[str] | None = None) -> None:
        self._stream = stream
        self._err = err
        self._console: Any = None
        self._lock = threading.RLock()
        self._once: set[str] = set()
        self.closed = False  # the reader of stdout went away (``agentshell run ... | head``)

    @property
    def stream(self) -> IO[str]:
        # resolved at use: the REPL swaps sys.stdout while a prompt is shown
        return self._stream or sys.stdout

    @property
    def err(self) -> IO[str]:
        return self._err or sys.stderr

    @property
    def console(self) -> Any:
        """A ``rich.console.Console`` writing to this output."""
        from rich.console import Console

        if self._console is None or self._console.file is not self.stream:
            self._console = Console(file=self.stream, highlight=False, soft_wrap=False)
        return self._console

    def _write(self, text: str, stream: IO[str], *, scrub: bool = True) -> None:
        with self._lock:
            if self.closed and stream is self.stream:
                return
            try:
                stream.write((redact(text) if scrub else text) + "\n")
                stream.flush()
            except BrokenPipeError:
                self._pipe_closed(stream)

    def _pipe_closed(self, stream: IO[str]) -> None:
        """Like well-behaved CLIs, stop writing quietly when the reader has gone: point
        the descriptor at /dev/null so the final flush at exit does not fail either
        (the Python docs' "Note on SIGPIPE")."""
        import os

        self.closed = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)

    def print(self, text: str = "") -> None:
        self._write(text, self.stream)

    def info(self, message: str) -> None:
        self._write(message, self.stream)

    def success(self, message: str) -> None:
        self._write(f"✓ {message}", self.stream)

    def warn(self, message: str) -> None:
        self._write(f"warning: {message}", self.err)

    def warn_once(self, key: str, message: str) -> None:
        if key not in self._once:
            self._once.add(key)
            self.warn(message)

    def error(self, message: str) -> None:
        self._write(f"error: {message}", self.err)

    def json(self, value: Any) -> None:
        """Print ``value`` as JSON. Strings are redacted one by one, so the output stays
        valid JSON (redacting the finished text could swallow a closing quote)."""
        text = json.dumps(redact_tree(value), indent=2, default=lambda v: redact(str(v)))
        self._write(text, self.stream, scrub=False)

    def table(
        self, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None
    ) -> None:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, title_justify="left", header_style="bold")
        for column in columns:
            table.add_column(column)
        for row in rows:
            # cells are plain text: "[plugins.x]" in a value is not rich markup
            table.add_row(*(Text(redact("" if cell is None else str(cell))) for cell in row))
        if _isatty(self.stream):
            self.render(table)
            return
        # not a terminal (CI logs, pipes): nothing cut to 80 columns, no trailing spaces,
        # unless COLUMNS asks for a width (``COLUMNS=100 agentshell run ... > log``)
        from rich.console import Console

        wide = Console(
            width=_columns() or 10_000, highlight=False, soft_wrap=False, color_system=None
        )
        with wide.capture() as captured:
            wide.print(table)
        text = "\n".join(line.rstrip() for line in captured.get().splitlines())
        self._write(text, self.stream, scrub=False)

    def render(self, renderable: Any) -> None:
        with self._lock:
            if self.closed:
                return
            try:
                self.console.print(renderable)
            except BrokenPipeError:
                self._pipe_closed(self.stream)


def _columns() -> int | None:
    import os

    value = os.environ.get("COLUMNS", "").strip()
    return int(value) if value.isdigit() and int(value) >= 20 else None


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (ValueError, AttributeError):
        return False


__all__ = ["Output"]
