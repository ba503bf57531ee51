"""Everything the shell and its plugins print goes through :class:`Output`.

Messages are one line each and redacted; tables and other rich renderables use a
lazily created ``rich`` console (rich is not imported until something needs it).
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Collection, Sequence
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
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        title: str | None = None,
        keep: Collection[str] = (),
        wrap: Collection[str] = (),
        optional: Sequence[str] = (),
    ) -> None:
        """Print a table. No value is ever cut with an ellipsis: columns in ``keep``
        (ids, numbers, costs, names), and any column whose values are all short (at most
        ``SHORT`` characters) unless it is in ``wrap``, are never wrapped nor shortened;
        the others (free text) wrap, long words folded. When the table is wider than
        the terminal, the columns in ``optional`` are left out (last first, and a note
        says so); if it still does not fit it is printed wider than the terminal
        rather than cut."""
        cells = [[redact("" if cell is None else str(cell)) for cell in row] for row in rows]
        names = list(columns)
        width = self._width()
        dropped: list[str] = []
        while True:
            table, needed = _build(names, cells, title, keep, wrap)
            spare = [c for c in optional if c in names and c not in dropped]
            if needed <= width or not spare:
                break
            index = names.index(spare[-1])
            dropped.insert(0, names.pop(index))
            cells = [row[:index] + row[index + 1 :] for row in cells]
        self._print_table(table, max(width, needed))
        if dropped:
            self.print(f"(left out to fit {width} columns: {', '.join(dropped)})")

    def _width(self) -> int:
        if _isatty(self.stream):
            return int(self.console.width)
        # not a terminal (CI logs, pipes): nothing cut to 80 columns, no trailing spaces,
        # unless COLUMNS asks for a width (``COLUMNS=100 agentshell run ... > log``)
        return _columns() or 10_000

    def _print_table(self, table: Any, width: int) -> None:
        if _isatty(self.stream):
            with self._lock:
                if self.closed:
                    return
                try:
                    self.console.print(table, width=width, crop=False)
                except BrokenPipeError:
                    self._pipe_closed(self.stream)
            return
        from rich.console import Console

        wide = Console(width=width, highlight=False, soft_wrap=False, color_system=None)
        with wide.capture() as captured:
            wide.print(table, crop=False)
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


FOLDED = 12  # the narrowest a free-text column gets before columns are left out
SHORT = 24  # a column whose values are all this short is never wrapped (ids, numbers)


def _build(
    names: list[str],
    cells: list[list[str]],
    title: str | None,
    keep: Collection[str],
    wrap: Collection[str] = (),
) -> tuple[Any, int]:
    """The rich table and the narrowest width it fits in without cutting a value."""
    from rich.cells import cell_len
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", header_style="bold")
    for i, name in enumerate(names):
        values = [row[i] for row in cells if i < len(row)]
        short = name in keep or (
            name not in wrap and all(len(v) <= SHORT and "\n" not in v for v in values)
        )
        if short:
            # the header too: a no_wrap column's header is never wrapped either
            longest = max((cell_len(v) for v in [name, *values]), default=0)
            table.add_column(name, no_wrap=True, overflow="ignore", min_width=longest or None)
        else:
            # measured as if 12 wide: text wraps and long words fold to fit
            table.add_column(name, overflow="fold", max_width=FOLDED)
    for row in cells:
        # cells are plain text: "[plugins.x]" in a value is not rich markup
        table.add_row(*(Text(cell) for cell in row))
    console = Console(width=10_000, color_system=None)
    needed = Measurement.get(console, console.options, table).minimum
    for column in table.columns:
        column.max_width = None
    return table, needed


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
