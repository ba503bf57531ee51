"""Keys typed while a command runs: not echoed, not lost.

A terminal in cooked mode echoes every key as it is typed, so typed-ahead text lands in
the middle of a command's output and then shows again at the next prompt. While a
command runs the REPL turns ECHO off on the tty; the line discipline still buffers the
keys (the next prompt reads them into its input line) and ISIG stays on, so Ctrl-C
still raises SIGINT and cancels the command.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any, TextIO

try:
    import termios
except ImportError:  # pragma: no cover - Windows has no termios: nothing to hide
    termios = None  # type: ignore[assignment]

_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, AttributeError) + (
    (termios.error,) if termios is not None else ()
)


@contextlib.contextmanager
def typeahead_hidden(stream: TextIO | None = None) -> Iterator[bool]:
    """Turn off ECHO/ECHOCTL/ECHONL on ``stream`` (default stdin) for the ``with`` block
    and restore the attributes on every way out (end, exception, cancellation). Yields
    whether anything changed: nothing does when ``stream`` is not a terminal."""
    fd, saved = _quiet(sys.stdin if stream is None else stream)
    try:
        yield saved is not None
    finally:
        if saved is not None:
            # TCSANOW, never TCSAFLUSH: that would throw away the keys typed meanwhile
            with contextlib.suppress(*_ERRORS):
                termios.tcsetattr(fd, termios.TCSANOW, saved)


def _quiet(stream: TextIO) -> tuple[int, list[Any] | None]:
    if termios is None:
        return -1, None
    try:
        if not stream.isatty():
            return -1, None
        fd = stream.fileno()
        saved: list[Any] = termios.tcgetattr(fd)
        quiet = list(saved)
        quiet[3] = (saved[3] & ~(termios.ECHO | termios.ECHOCTL | termios.ECHONL)) | termios.ISIG
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
    except _ERRORS:  # a closed or replaced stdin, a terminal that went away
        return -1, None
    return fd, saved


__all__ = ["typeahead_hidden"]
