"""Each accepted line shows once on screen: the first command of a session, a later
one, and a multi-line (bracketed) paste, whose lines each run with a ``» line`` echo
and must not also stay drawn above as the pasted block.

The real shell runs in a real pty (pexpect) and everything it writes is fed to a
terminal emulator (pyte), so the assertions are about the screen a user sees, not
about the byte stream (prompt_toolkit redraws, moves the cursor and erases). The
emulator answers cursor-position requests like a terminal does, so the toolbar is
drawn. The screen is read only once it is stable: after a sentinel command's output
and the prompt that follows it, every earlier render is final.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.screen import PROMPT, Terminal

ROWS = 40
SENTINEL = "/help quit"
SENTINEL_OUTPUT = "usage: /quit"
TOOLBAR = "tokens 0"


class EchoTerminal(Terminal):
    def settle(self) -> None:
        """Run the sentinel command and wait for its output and the next prompt."""
        self.send_line(SENTINEL)
        self.wait_for(SENTINEL_OUTPUT)


def spawn(tmp_path: Path, toolbar: bool) -> EchoTerminal:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(f"[shell]\ntoolbar = {str(toolbar).lower()}\n")
    return EchoTerminal(home)


def count(rows: list[str], text: str) -> int:
    return sum(1 for row in rows if row == text)


def assert_no_stale_render(rows: list[str], toolbar: bool) -> None:
    assert not any("loading plugins" in row for row in rows)
    bars = [i for i, row in enumerate(rows) if TOOLBAR in row]
    if toolbar:
        # at most the live prompt's toolbar, on the bottom row; never an old one above
        assert bars in ([], [ROWS - 1]), "\n".join(rows)
    else:
        assert bars == [], "\n".join(rows)
    last = max(i for i, row in enumerate(rows) if row == PROMPT)
    # no blank rows left between the renders: everything above the live prompt is
    # output, only the one blank line /help prints may occur
    blank = [i for i, row in enumerate(rows[:last]) if not row]
    assert len(blank) <= 1, "\n".join(rows)


@pytest.mark.e2e
@pytest.mark.parametrize("toolbar", [True, False], ids=["toolbar", "no-toolbar"])
def test_first_and_later_commands_show_once(tmp_path: Path, toolbar: bool) -> None:
    term = spawn(tmp_path, toolbar)
    try:
        term.wait_for()  # the first prompt is drawn (plugins may still load)
        term.child.send("/config path\r")
        term.wait_for("data:")
        first = term.rows()
        assert count(first, f"{PROMPT} /config path") == 1, "\n".join(first)
        term.child.send("/help config\r")
        term.wait_for("usage: /config")
        term.settle()
        rows = term.rows()
        assert count(rows, f"{PROMPT} /config path") == 1, "\n".join(rows)
        assert count(rows, f"{PROMPT} /help config") == 1, "\n".join(rows)
        assert count(rows, f"{PROMPT} {SENTINEL}") == 1, "\n".join(rows)
        assert sum(1 for row in rows if row.startswith("data:")) == 1
        assert rows.index(f"{PROMPT} /config path") < rows.index(f"{PROMPT} /help config")
        assert_no_stale_render(rows, toolbar)
    finally:
        term.close()


@pytest.mark.e2e
@pytest.mark.parametrize("toolbar", [True, False], ids=["toolbar", "no-toolbar"])
def test_multi_line_paste_shows_each_line_once(tmp_path: Path, toolbar: bool) -> None:
    term = spawn(tmp_path, toolbar)
    try:
        term.wait_for()
        term.child.send("/config path\r")  # the paste is not the session's first line
        term.wait_for("data:")
        # a bracketed paste of two commands, then Enter
        term.child.send("\x1b[200~/config path\n/help config\n\x1b[201~")
        term.child.send("\r")
        term.wait_for("» /help config")
        term.settle()
        rows = term.rows()
        text = "\n".join(rows)
        # the typed first command, then each pasted line once, as its "» line" echo
        assert count(rows, f"{PROMPT} /config path") == 1, text
        assert count(rows, "» /config path") == 1, text
        assert count(rows, "» /help config") == 1, text
        assert not any(row.strip() == "/help config" for row in rows), text  # no block
        assert sum(1 for row in rows if row.startswith("data:")) == 2, text
        assert sum(1 for row in rows if row.startswith("usage: /config")) == 1, text
        assert rows.index("» /config path") < rows.index("» /help config")
        bars = [i for i, row in enumerate(rows) if TOOLBAR in row]
        assert bars in ([], [ROWS - 1]) if toolbar else bars == [], text
    finally:
        term.close()


@pytest.mark.e2e
def test_single_line_paste_with_newline_leaves_no_blank_row(tmp_path: Path) -> None:
    term = spawn(tmp_path, True)
    try:
        term.wait_for()
        term.child.send("\x1b[200~/config path\n\x1b[201~")
        term.child.send("\r")
        term.wait_for("data:")
        term.settle()
        rows = term.rows()
        text = "\n".join(rows)
        start = rows.index(f"{PROMPT} /config path")
        assert count(rows, f"{PROMPT} /config path") == 1, text
        assert rows[start + 1].startswith("user:"), text  # no blank row below the line
        assert not any(row.startswith("»") for row in rows), text  # one line: no echo
    finally:
        term.close()
