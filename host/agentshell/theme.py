"""The one colour theme, whether to use it, and word-aware wrapping of messages.

Styles have names, not colours, so plugins say what a line *is* (``"error"``,
``"conflict"``) and the theme decides how it looks. Colour follows the usual rules:
``--color=always|never`` wins, then ``NO_COLOR`` (any non-empty value, no-color.org),
then ``FORCE_COLOR``, then whether the stream is a terminal. Plain SGR codes are
written by hand so a coloured message costs no ``rich`` import.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Mapping
from typing import IO, Literal

ColorMode = Literal["auto", "always", "never"]
COLOR_MODES: tuple[ColorMode, ...] = ("auto", "always", "never")

#: style name -> (SGR parameters, the same style for rich tables)
STYLES: dict[str, tuple[str, str]] = {
    "error": ("1;31", "bold red"),
    "success": ("32", "green"),
    "warning": ("33", "yellow"),
    "conflict": ("1;35", "bold magenta"),
    "dim": ("2", "dim"),
    "accent": ("36", "cyan"),
    "bold": ("1", "bold"),
}

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def color_enabled(
    stream: IO[str], mode: ColorMode = "auto", environ: Mapping[str, str] | None = None
) -> bool:
    """Whether to colour what goes to ``stream``."""
    if mode != "auto":
        return mode == "always"
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR", ""):
        return False
    if env.get("FORCE_COLOR", "") not in ("", "0"):
        return True
    if env.get("TERM") == "dumb":
        return False
    try:
        return bool(stream.isatty())
    except (ValueError, AttributeError):
        return False


def paint(text: str, style: str | None) -> str:
    """``text`` in ``style`` (an unknown or empty style leaves it plain)."""
    if not style or style not in STYLES or not text:
        return text
    return f"\x1b[{STYLES[style][0]}m{text}\x1b[0m"


def rich_style(style: str | None) -> str:
    return STYLES[style][1] if style in STYLES else ""


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def wrap(text: str, width: int) -> str:
    """Break each line of ``text`` at spaces to fit ``width``, with a hanging indent.

    A word is never split: an id, a path or a command longer than the line overflows
    it whole, so a printed command can still be copied at 60 columns. The hanging
    indent lines continuation text up under where the line's text starts: after a
    ``label:`` prefix (``error: ``, ``  reason: ``), after the gap of a two-column
    line (``  --from STAGE  start at…``), else two spaces in from the line's indent.
    """
    if width < 20:
        return text
    return "\n".join(_wrap_line(line, width) for line in text.split("\n"))


# a command line inside a message ("resume with: /spec-auto S --from audit S-2026…") is
# one unit: a copy of it pasted back must be one line, not two commands
# (a quoted argument, ``--consensus "<GOAL>"``, belongs to it, placeholder and all)
_COMMAND = re.compile(r'(?:(?<=^)|(?<=\s))/[a-z][\w-]*(?=\s|$)(?:[^;()—<\["]|"[^"\n]*")*')
_NBSP = "\u00a0"  # textwrap breaks only at ASCII whitespace
_TWO_COLUMNS = re.compile(r"^(\s*\S(?:.*?\S)?\s{2,})\S")
_LABEL = re.compile(r"^(\s*(?:[✓✗!»•·-]\s+)?[\w .'/-]{1,24}?:\s+)\S")


def _wrap_line(line: str, width: int) -> str:
    if len(line) <= width:
        return line
    indent = len(line) - len(line.lstrip(" "))
    hang = indent + 2
    for shape in (_TWO_COLUMNS, _LABEL):
        match = shape.match(line)
        if match and len(match.group(1)) <= width // 2:
            hang = len(match.group(1))
            break
    body = _COMMAND.sub(_one_unit, line.strip(" "))
    if max(len(word) for word in body.split(" ")) > width - hang:
        hang = indent + 2  # a long command or id gets the whole next line, not a sliver
    return textwrap.fill(
        body,
        width=width,
        initial_indent=" " * indent,
        subsequent_indent=" " * hang,
        break_long_words=False,
        break_on_hyphens=False,
        drop_whitespace=True,
    ).replace(_NBSP, " ")


def _one_unit(match: re.Match[str]) -> str:
    text = match.group(0)
    command = text.rstrip()
    return command.replace(" ", _NBSP) + text[len(command) :]


def terminal_width(stream: IO[str]) -> int | None:
    """The width of the terminal ``stream`` writes to, or None when it is not one."""
    try:
        if not stream.isatty():
            return None
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return None


__all__ = [
    "COLOR_MODES",
    "STYLES",
    "ColorMode",
    "color_enabled",
    "paint",
    "rich_style",
    "strip_ansi",
    "terminal_width",
    "wrap",
]
