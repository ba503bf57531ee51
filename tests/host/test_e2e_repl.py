"""The REPL in a real pseudo-terminal (pexpect): completion, /help, Ctrl-C cancelling
a running command, Ctrl-C at an empty prompt, did-you-mean, history redaction, Ctrl-D.

The terminal is real; the only concession is PROMPT_TOOLKIT_NO_CPR=1, because pexpect
does not answer cursor-position requests the way a terminal emulator does."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pexpect
import pytest

from tests.helpers.cli import child_env

PROMPT = "agentshell>"
# how long any expected output may take: a bound for a hang, never a timing assertion
# (a loaded 2-core CI machine can take seconds to start Python and prompt_toolkit)
TIMEOUT_S = 45

pytestmark = pytest.mark.e2e


def completed(typed: str, inserted: str) -> str:
    """A pattern for ``typed`` followed by the completion's ``inserted`` text. The
    terminal may draw them in separate writes with escape sequences in between (cursor
    moves, colour resets), more so on a busy machine, so those are allowed between."""
    import re

    escapes = r"(?:\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r)*"
    return re.escape(typed) + escapes + re.escape(inserted)


def spawn(home: Path) -> pexpect.spawn:
    env = child_env(home, PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "agentshell", "-p", "tests.helpers.sleepy"],
        env=env,
        encoding="utf-8",
        timeout=TIMEOUT_S,
        dimensions=(40, 140),
    )
    child.expect_exact(PROMPT)
    return child


def test_repl_session_in_a_pty(tmp_path: Path) -> None:
    child = spawn(tmp_path / "home")
    try:
        # tab completion: "/he" completes to "/help" (the only match), Enter runs it
        child.send("/he\t")
        child.expect(completed("/he", "lp"))
        child.send("\r")
        child.expect_exact("Tab completes commands and arguments.")
        child.expect_exact(PROMPT)

        # Ctrl-C during a long-running command cancels it and the prompt returns
        child.sendline("/sleep 30")
        child.expect_exact("sleeping 30s")
        time.sleep(0.2)  # let the command reach its await
        child.sendintr()
        child.expect_exact("cancelled")
        child.expect_exact(PROMPT)
        assert child.isalive()

        # Ctrl-C at an empty prompt clears the line and keeps the shell
        child.sendintr()
        child.expect_exact(PROMPT)
        child.sendline("/sleep 0.01")
        child.expect_exact("woke up")
        child.expect_exact(PROMPT)
        assert child.isalive()

        # an unknown command gets a suggestion
        child.sendline("/hlep")
        child.expect_exact("did you mean /help")
        # no wait for the prompt here: the error goes through patch_stdout, and the prompt
        # can be drawn before it (then consumed above) with only a partial redraw after;
        # typed input is queued by the terminal, and the next answer synchronises

        # a secret typed at the prompt never reaches the history file
        child.sendline("/set-env OPENAI_API_KEY=sk-e2e-abcdefghijklmnop")
        child.expect_exact("OPENAI_API_KEY set for this session")
        child.expect_exact(PROMPT)

        # Ctrl-D on an empty line exits with status 0
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, (child.exitstatus, child.signalstatus)
    history_path = tmp_path / "home" / "data" / "history"
    assert history_path.stat().st_mode & 0o777 == 0o600  # the user's alone
    history = history_path.read_text(encoding="utf-8")
    assert "/sleep 30" in history
    assert "/set-env OPENAI_API_KEY=****" in history
    assert "sk-e2e" not in history


def test_quit_command_exits_zero(tmp_path: Path) -> None:
    child = spawn(tmp_path / "home")
    try:
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_bottom_toolbar_shows_status_segments(tmp_path: Path) -> None:
    """With cursor-position reports answered (as a terminal emulator does), prompt_toolkit
    knows the screen height and draws the bottom toolbar from plugins' status segments."""
    env = child_env(tmp_path / "home", AGENTSHELL_LOAD_PLUGINS="builtins", TERM="xterm")
    env.pop("PROMPT_TOOLKIT_NO_CPR", None)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "agentshell", "-p", "tests.helpers.sleepy"],
        env=env,
        encoding="utf-8",
        timeout=TIMEOUT_S,
        dimensions=(30, 120),
    )
    try:
        seen = False
        for _ in range(20):
            index = child.expect_exact(["\x1b[6n", " sleepy "])
            if index == 0:
                child.send("\x1b[5;1R")  # "the cursor is on row 5, column 1"
                continue
            seen = True
            break
        assert seen
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_input_typed_at_the_instant_prompt_waits_for_plugins(tmp_path: Path) -> None:
    """The first prompt is drawn before plugins load; a command (or a Tab) typed at once
    must run against the fully loaded shell, never fail as an unknown command."""
    child = spawn(tmp_path / "home")
    try:
        child.send("/sle\t")  # a plugin's command (tests.helpers.sleepy), completed early
        child.expect(completed("/sle", "ep"))
        child.send(" 0.01\r")
        child.expect_exact("woke up")
        child.expect_exact(PROMPT)
        child.sendline("/plugins --json")
        child.expect_exact('"state": "loaded"')
        child.expect_exact(PROMPT)
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_repl_sigterm_cancels_and_exits_143(tmp_path: Path) -> None:
    import signal

    child = spawn(tmp_path / "home")
    try:
        child.sendline("/sleep 30")
        child.expect_exact("sleeping 30s")
        child.kill(signal.SIGTERM)
        child.expect_exact("terminated: cancelled")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 143
        # and at an idle prompt
        child = spawn(tmp_path / "home")
        child.kill(signal.SIGTERM)
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 143
    finally:
        if child.isalive():
            child.terminate(force=True)
