"""An agent's answer shown as it streams in: :meth:`agentshell.output.Output.stream_answer`.

On a terminal the raw text appears as it arrives; when the answer is complete it is
replaced by its Markdown rendering (rich: headings, lists, code blocks highlighted, in
the theme's colours or none). Piped, the text is written as it arrives and left as it
is: nothing is erased, nothing re-rendered.

Redaction: every piece goes through :func:`agentshell.redact.redact` before it is
shown. A secret may arrive split across two deltas (``sk-ab`` then ``cdef…``), so the
word being written is held back until a space or newline ends it
(:func:`agentshell.redact.settled`): what reaches the screen is always whole words,
masked as a finished text would be. The held-back word appears with the next space or
at :meth:`AnswerStream.finish`; an answer cut short (Ctrl-C, an error) never shows its
unfinished last word, which may be the first half of a secret. The Markdown rendering
is made from the whole answer, redacted again.

While a REPL command runs, a rich Live status region sits below the output, and rich
buffers partial lines written through it. The stream pauses that region while the
answer is shown (the first visible text hides it, :meth:`AnswerStream.finish` brings
it back), and writes to the terminal itself.

Anything else printed through the same :class:`~agentshell.output.Output` meanwhile (a
retry notice, a warning) lands above the answer: the streamed text is taken off the
screen, the message printed, and the text shown again below it.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from .agent_models import Delta
from .redact import redact, settled

if TYPE_CHECKING:
    from .output import Output

# terminal control characters a model could send (escape sequences, carriage returns,
# backspaces): never written to a terminal; newlines and tabs are kept
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class AnswerStream:
    """One answer being shown. ``write`` pieces of text as they arrive, ``reset`` when
    a retry starts the answer again, and ``finish`` once. Also a context manager that
    finishes on exit: marked ``(cancelled)`` when leaving by Ctrl-C or cancellation,
    ``(incomplete)`` when leaving by another error (both ``stopped``). :meth:`delta`
    takes the runner's :class:`~agentshell.agent_models.Delta` directly:
    ``runner.run(..., on_delta=answer.delta)``."""

    def __init__(self, output: Output) -> None:
        self._output = output
        self._raw = ""  # everything received for the current attempt (unredacted)
        self._done = 0  # how much of _raw has been shown
        self._line = ""  # the redacted text shown on the current line
        self._shown = ""  # everything shown, redacted (what is on the screen)
        self._attempt = 0
        self._tty: bool | None = None  # decided at the first write (after the pause)
        self._paused: AbstractContextManager[None] | None = None
        self._erasable = True  # false once the text scrolled past what can be erased
        self.finished = False

    # -- what the caller sees ------------------------------------------------------------
    @property
    def text(self) -> str:
        """The answer received so far (the current attempt's), unredacted."""
        return self._raw

    def delta(self, delta: Delta) -> None:
        """Take a runner's delta: a new attempt number restarts the answer."""
        if delta.attempt != self._attempt:
            if self._attempt:
                self.reset()
            self._attempt = delta.attempt
        self.write(delta.text)

    def write(self, text: str) -> None:
        """Show the next piece of the answer."""
        if self.finished or not text:
            return
        self._raw += text
        self._advance(final=False)

    def reset(self) -> None:
        """A retry: take what was shown of this answer off the screen (piped: end the
        line, it cannot be taken back) and start again."""
        if self.finished:
            return
        with self._output._lock:
            if self._tty:
                self._erase()
            elif self._shown and not self._shown.endswith("\n"):
                self._emit("\n")
            self._raw, self._done, self._line, self._shown = "", 0, "", ""
            self._erasable = True

    def finish(
        self, *, markdown: bool = True, note: str | None = None, stopped: bool = False
    ) -> None:
        """The answer is complete: show the held-back rest, then, on a terminal,
        replace the raw text by its Markdown rendering (unless ``markdown=False``).
        ``note`` (``"(cancelled)"``) follows on a line of its own. ``stopped``: the
        answer was cut short, so its unfinished last word is left out (it may be the
        first half of a secret). Calling it again does nothing."""
        if self.finished:
            return
        self.finished = True
        output = self._output
        try:
            with output._lock:
                self._advance(final=not stopped)
                if self._tty is None:
                    self._tty = _isatty(output.stream)
                text = self._raw[: self._done]
                body = text.strip()
                if self._tty and markdown and body and self._erasable and self._erase():
                    self._render_markdown(redact(text))
                elif self._shown and not self._shown.endswith("\n"):
                    self._emit("\n")
                self._shown = ""
                if note:
                    output._write(note, output.stream, style="dim")
        finally:
            self._resume()

    def __enter__(self) -> AnswerStream:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.finish()
        elif issubclass(kind, KeyboardInterrupt | _cancelled()):
            self.finish(note="(cancelled)", stopped=True)
            self._output.cancel_shown = True  # the command's own "^C cancelled" would repeat it
        else:
            self.finish(note="(incomplete)", stopped=True)

    # -- showing ---------------------------------------------------------------------------
    def _advance(self, *, final: bool) -> None:
        """Show what of ``_raw`` is settled (all of it when ``final``), redacted."""
        raw = self._raw
        cut = len(raw) if final else settled(raw)
        if cut <= self._done:
            return
        # redact from the start of the line being written: a mask may need the words
        # before it on the line (``api_key = `` then the value)
        start = raw.rfind("\n", 0, self._done) + 1
        masked = _CONTROL.sub("", redact(raw[start:cut]))
        # what is new on the line; should a mask ever reach back into what is shown
        # (a registered secret with spaces in it), this still never repeats it
        piece = masked[len(self._line) :]
        self._done = cut
        newline = masked.rfind("\n")
        self._line = masked[newline + 1 :] if newline >= 0 else masked
        if piece:
            with self._output._lock:
                self._start()
                self._emit(piece)
                self._shown += piece

    def _start(self) -> None:
        """Before the first visible text: pause the Live region, look at the stream."""
        if self._tty is not None:
            return
        output = self._output
        pause = output._live_pause
        if pause is not None:
            self._paused = pause()
            self._paused.__enter__()
        self._tty = _isatty(output.stream)
        output._answer = self

    def _resume(self) -> None:
        output = self._output
        if output._answer is self:
            output._answer = None
        paused, self._paused = self._paused, None
        if paused is not None:
            paused.__exit__(None, None, None)

    def _emit(self, text: str) -> None:
        output = self._output
        stream = output.stream
        if output.closed:
            return
        try:
            stream.write(text)
            stream.flush()
        except BrokenPipeError:
            output._pipe_closed(stream)

    def _rows(self) -> int:
        """How many terminal rows the shown text takes (the terminal wraps long lines)."""
        from rich.cells import cell_len

        width = _size(self._output.stream)[0]
        lines = self._shown.split("\n")
        return sum(max(1, -(-cell_len(line.expandtabs()) // width)) for line in lines)

    def _erase(self) -> bool:
        """Take the shown text off the screen; False (and the text ends its line) when
        part of it has scrolled out of reach."""
        if not self._shown:
            return True
        rows = self._rows()
        height = _size(self._output.stream)[1]
        # the terminal keeps the last `height` rows on screen: text taller than that
        # has lost its first rows to the scrollback
        if rows > height:
            self._erasable = False
            if not self._shown.endswith("\n"):
                self._emit("\n")
                self._shown += "\n"
            return False
        up = rows - 1
        # back to the first row of the text, then clear to the end of the screen
        self._emit((f"\x1b[{up}A" if up else "") + "\r\x1b[J")
        self._shown = ""
        return True

    def _render_markdown(self, text: str) -> None:
        from rich.markdown import Markdown

        output = self._output
        try:
            # wrapped at words by rich: the Live region's console soft-wraps by default
            output.console.print(Markdown(text, code_theme=_CODE_THEME), soft_wrap=False)
        except BrokenPipeError:
            output._pipe_closed(output.stream)

    @contextlib.contextmanager
    def aside(self) -> Iterator[None]:
        """Print something else above the answer: the streamed text leaves the screen
        while it is printed, then comes back below it. (Output's writes call this.)"""
        if not self._tty or not self._shown:
            yield
            return
        shown = self._shown
        if not self._erase():
            yield  # it scrolled out of reach: the message follows it
            return
        try:
            yield
        finally:
            self._emit(shown)
            self._shown = shown


_CODE_THEME = "monokai"


def _cancelled() -> type[BaseException]:
    import asyncio

    return asyncio.CancelledError


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (ValueError, AttributeError):
        return False


def _size(stream: Any) -> tuple[int, int]:
    """The terminal's columns and rows (80x24 when it cannot be asked)."""
    try:
        size = os.get_terminal_size(stream.fileno())
        return max(size.columns, 1), max(size.lines, 1)
    except (OSError, ValueError, AttributeError):
        return 80, 24


__all__ = ["AnswerStream"]
