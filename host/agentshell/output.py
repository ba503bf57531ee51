"""Everything the shell and its plugins print goes through :class:`Output`.

Messages are one line each and redacted; on a terminal they wrap at spaces (never
inside an id or a path) and take the theme's colours (:mod:`agentshell.theme`). Tables
and other rich renderables use a lazily created ``rich`` console (rich is not imported
until something needs it).
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from .redact import redact, redact_tree
from .theme import ColorMode, color_enabled, paint, rich_style, terminal_width, wrap

if TYPE_CHECKING:
    from .answer import AnswerStream

#: hides a Live region while its context is entered (see Output.beside_live)
LivePause = Callable[[], AbstractContextManager[None]]


class Output:
    def __init__(
        self,
        stream: IO[str] | None = None,
        err: IO[str] | None = None,
        *,
        color: ColorMode = "auto",
    ) -> None:
        self._stream = stream
        self._err = err
        self._console: Any = None
        self._lock = threading.RLock()
        self._once: set[str] = set()
        self.closed = False  # the reader of stdout went away (``agentshell run ... | head``)
        self.color: ColorMode = color
        #: table cells equal to one of these words take its style (plugins add their
        #: status words: ``shell.output.words["conflict"] = "conflict"``)
        self.words: dict[str, str] = {}
        self._live: Any = None  # the console of a rich Live region shown meanwhile
        # something already told the user the running command was cancelled (an answer
        # marked "(cancelled)"): the REPL does not say it a second time
        self.cancel_shown = False
        self._live_pause: LivePause | None = None
        self._answer: AnswerStream | None = None  # an answer streaming to the terminal

    @contextlib.contextmanager
    def beside_live(self, console: Any, pause: LivePause | None = None) -> Iterator[None]:
        """Print rich renderables through ``console`` while its Live region is shown.
        A rich console writes past a Live's stdout proxy (to the terminal itself), so
        a table printed any other way would land inside the region. ``pause()`` hides
        the region while its context is entered (an answer streaming, see
        :meth:`stream_answer`)."""
        self._live, self._live_pause = console, pause
        try:
            yield
        finally:
            self._live, self._live_pause = None, None

    def stream_answer(self) -> AnswerStream:
        """An agent's answer shown as it arrives (:class:`agentshell.answer.AnswerStream`):
        ``write`` pieces, ``reset`` on a retry, ``finish`` once; on a terminal the
        finished answer is re-rendered as Markdown. Use it as a context manager to have
        it finished (and marked ``(cancelled)`` on Ctrl-C) whatever happens."""
        from .answer import AnswerStream

        return AnswerStream(self)

    def _aside(self) -> AbstractContextManager[None]:
        """Messages printed while an answer streams go above it."""
        answer = self._answer
        return answer.aside() if answer is not None else contextlib.nullcontext()

    def colored(self, stream: IO[str] | None = None) -> bool:
        """Whether what goes to ``stream`` (default: stdout) is coloured."""
        return color_enabled(stream or self.stream, self.color)

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

        if self._live is not None:
            return self._live
        if self._console is None or self._console.file is not self.stream:
            colored = self.colored()
            self._console = Console(
                file=self.stream,
                highlight=False,
                soft_wrap=False,
                color_system="auto" if colored else None,
                force_terminal=True if colored else None,
                no_color=not colored,
            )
        return self._console

    def _write(
        self,
        text: str,
        stream: IO[str],
        *,
        scrub: bool = True,
        fold: bool = True,
        style: str | None = None,
        lead: str = "",
        lead_style: str | None = None,
    ) -> None:
        """Write one message: redacted, wrapped to the terminal (not when piped), then
        coloured. ``lead`` (``"error:"``, ``"✓"``) may take a style of its own."""
        with self._lock:
            if self.closed and stream is self.stream:
                return
            text = redact(text) if scrub else text
            if lead:
                text = f"{lead} {text}"
            width = terminal_width(stream)
            if width is not None and fold:
                text = wrap(text, width)
            if (style or lead_style) and self.colored(stream):
                text = self._paint(text, style, lead, lead_style)
            try:
                with self._aside():
                    stream.write(text + "\n")
                    stream.flush()
            except BrokenPipeError:
                self._pipe_closed(stream)

    @staticmethod
    def _paint(text: str, style: str | None, lead: str, lead_style: str | None) -> str:
        head = ""
        if lead and lead_style and text.startswith(lead):
            head, text = paint(lead, lead_style), text[len(lead) :]
        # each line on its own: a pager or a cut terminal never bleeds colour onwards
        return head + "\n".join(paint(line, style) for line in text.split("\n"))

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

    def print(self, text: str = "", *, style: str | None = None, fold: bool = True) -> None:
        """A line of output, wrapped to the terminal unless ``fold=False`` (text that is
        copied as it is: TOML, where a folded line would no longer parse)."""
        self._write(text, self.stream, style=style, fold=fold)

    def info(self, message: str, *, style: str | None = None) -> None:
        """A line of output; ``style`` names a theme style (``"conflict"``, ``"dim"``…)."""
        self._write(message, self.stream, style=style)

    def success(self, message: str) -> None:
        self._write(message, self.stream, lead="✓", lead_style="success")

    def warn(self, message: str) -> None:
        self._write(message, self.err, lead="warning:", lead_style="warning")

    def warn_once(self, key: str, message: str) -> None:
        if key not in self._once:
            self._once.add(key)
            self.warn(message)

    def error(self, message: str) -> None:
        self._write(message, self.err, lead="error:", lead_style="error")

    def json(self, value: Any) -> None:
        """Print ``value`` as JSON. Strings are redacted one by one, so the output stays
        valid JSON (redacting the finished text could swallow a closing quote)."""
        text = json.dumps(redact_tree(value), indent=2, default=lambda v: redact(str(v)))
        self._write(text, self.stream, scrub=False, fold=False)

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
        """Print a table. Nothing is cut with an ellipsis and no word is split: columns
        in ``keep`` (ids, numbers, costs, names), and any column whose values are all
        short (at most ``SHORT`` characters) unless it is in ``wrap``, keep each value
        on one line; the others (free text) wrap at spaces. When the table is wider than
        the terminal: free text wraps first, then headers wrap at their spaces, then the
        columns in ``optional`` are left out (last first; one that then fits again is
        put back) and a note says which. If it still does not fit it is printed wider
        than the terminal rather than crushed, and the note says that too."""
        cells = [[redact("" if cell is None else str(cell)) for cell in row] for row in rows]
        names = list(columns)
        width = self._width()

        def lay_out(shown: list[int]) -> tuple[list[int], list[list[str]]]:
            picked = [[row[i] if i < len(row) else "" for i in shown] for row in cells]
            measured = _measure([names[i] for i in shown], picked, keep, wrap, width)
            return _layout(measured, width), picked

        shown = list(range(len(names)))
        widths, picked = lay_out(shown)
        # most important first: dropped from the end of the list
        spare = [names.index(c) for c in optional if c in names]
        while _total(widths) > width and spare:
            shown.remove(spare.pop())
            widths, picked = lay_out(shown)
        fits = _total(widths) <= width
        if fits:  # a column left out early may fit again beside the narrower rest
            for index in [names.index(c) for c in optional if c in names]:
                if index not in shown:
                    trial = sorted([*shown, index])
                    trial_widths, trial_picked = lay_out(trial)
                    if _total(trial_widths) <= width:
                        shown, widths, picked = trial, trial_widths, trial_picked
        titles = [names[i] for i in shown]
        styles = self.words if self.colored() else {}
        table = _build(titles, picked, title, widths, styles)
        self._print_table(table, max(width, _total(widths)))
        dropped = [c for c in optional if c in names and names.index(c) not in shown]
        if dropped and fits:
            self.print(f"(left out to fit {width} columns: {', '.join(dropped)})")
        elif dropped:  # the truth: fewer columns, and still wider than the terminal
            left = ", ".join(dropped)
            self.print(f"(left out: {left}; the table is still wider than {width} columns)")

    def _width(self) -> int:
        if _isatty(self.stream):
            return int(self.console.width)
        # not a terminal (CI logs, pipes): nothing cut to 80 columns, no trailing spaces,
        # unless COLUMNS asks for a width (``COLUMNS=100 agentshell run ... > log``)
        return _columns() or 10_000

    def _print_table(self, table: Any, width: int) -> None:
        # a table wider than the terminal is rendered at its own width below (rich would
        # crush it to the console's width, splitting ids): the terminal wraps its lines
        if _isatty(self.stream) and width <= self._width():
            with self._lock:
                if self.closed:
                    return
                try:
                    with self._aside():
                        self.console.print(table, width=width, crop=False)
                except BrokenPipeError:
                    self._pipe_closed(self.stream)
            return
        from rich.console import Console

        colored = self.colored()
        wide = Console(
            width=width,
            highlight=False,
            soft_wrap=False,
            color_system="standard" if colored else None,
            force_terminal=colored,
            no_color=not colored,
        )
        with wide.capture() as captured:
            wide.print(table, crop=False)
        text = "\n".join(line.rstrip() for line in captured.get().splitlines())
        self._write(text, self.stream, scrub=False, fold=False)

    def markdown(self, text: str) -> None:
        """Print a Markdown document: rendered by rich on a terminal (headings, tables,
        lists; coloured only when :meth:`colored`), the Markdown text itself when
        stdout is not a terminal, so a pipe or a redirect gets the document back."""
        text = redact(text)
        if not _isatty(self.stream):
            self._write(text, self.stream, scrub=False, fold=False)
            return
        from rich.markdown import Markdown

        self.render(Markdown(text, hyperlinks=False))

    def render(self, renderable: Any) -> None:
        with self._lock:
            if self.closed:
                return
            try:
                with self._aside():
                    # wrapped at words by rich (a Live region's console soft-wraps)
                    self.console.print(renderable, soft_wrap=False)
            except BrokenPipeError:
                self._pipe_closed(self.stream)


SHORT = 24  # a column whose values are all this short is never wrapped (ids, numbers)


@dataclass(frozen=True)
class _Column:
    natural: int  # the widest line of the header or a value, nothing wrapped
    least: int  # the narrowest with no word split (and a short value whole)
    free: bool  # free text: wraps at spaces before anything else narrows


def _words(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(word) for word in text.split()), default=0)


def _lines(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in text.splitlines()), default=0)


def _measure(
    names: list[str],
    cells: list[list[str]],
    keep: Collection[str],
    wrap: Collection[str],
    width: int,
) -> list[tuple[_Column, int]]:
    """Each column's natural and least widths, and the header's least width."""
    measured: list[tuple[_Column, int]] = []
    for i, name in enumerate(names):
        values = [row[i] for row in cells if i < len(row)]
        free = name not in keep and (
            name in wrap or not all(len(v) <= SHORT and "\n" not in v for v in values)
        )
        natural = max((_lines(v) for v in [name, *values]), default=0)
        if free:
            # a word longer than the terminal alone is the one thing ever folded
            least = min(max((_words(v) for v in values), default=0), max(width - 4, 1))
        else:
            least = max((_lines(v) for v in values), default=0)
        header = max(_words(name), 1)  # never a zero-width column
        measured.append((_Column(max(natural, 1), max(least, header), free), header))
    return measured


def _layout(measured: list[tuple[_Column, int]], width: int) -> list[int]:
    """Column widths: natural when they fit, else free text narrowed to its longest word
    (widest column first), then headers wrapped at their spaces."""
    widths = [column.natural for column, _ in measured]
    budget = width - _total([0] * len(widths))
    stages = (
        # free text, whole words kept
        [column.least if column.free else column.natural for column, _ in measured],
        # then headers of the other columns, at their spaces
        [column.least for column, _ in measured],
    )
    for floor in stages:
        while sum(widths) > budget:
            narrower = [i for i, w in enumerate(widths) if w > floor[i]]
            if not narrower:
                break
            widest = max(narrower, key=lambda i: widths[i])
            widths[widest] -= 1
    return widths


def _total(widths: list[int]) -> int:
    # rich's default box: an edge each side, one rule between columns, one space of
    # padding each side of every cell
    return sum(widths) + 3 * len(widths) + 1


def _build(
    names: list[str],
    cells: list[list[str]],
    title: str | None,
    widths: list[int],
    styles: dict[str, str],
) -> Any:
    """The rich table with the widths fixed: rich never narrows it further."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", header_style="bold")
    for name, width in zip(names, widths, strict=True):
        # words never exceed the width, so "fold" only splits a word wider than the
        # terminal; every other value wraps at spaces or stays whole
        table.add_column(name, width=width, overflow="fold")
    for row in cells:
        # cells are plain text: "[plugins.x]" in a value is not rich markup
        table.add_row(*(Text(cell, style=rich_style(styles.get(cell))) for cell in row))
    return table


def _columns() -> int | None:
    import os

    value = os.environ.get("COLUMNS", "").strip()
    return int(value) if value.isdigit() and int(value) >= 20 else None


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (ValueError, AttributeError):
        return False


__all__ = ["LivePause", "Output"]
