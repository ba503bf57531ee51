"""The terminal while the REPL runs and stops: keys typed while a command runs are
hidden and kept for the next prompt, Ctrl-C still cancels, and SIGTERM — during a
command, while plugins still load, or while a plugin's stop hook runs — stops cleanly
with status 143, telemetry flushed and the terminal restored.

The terminal tests run the real shell in a real pseudo-terminal (pexpect) and read the
terminal's attributes from the pty master (on Linux ``tcgetattr`` there reports the
slave's settings). PROMPT_TOOLKIT_NO_CPR=1 because pexpect does not answer
cursor-position requests as a terminal emulator does. No test waits a fixed time:
long-running commands and slow plugin starts wait for the test (tests.helpers.gate,
tests.helpers.slow_start), and every ``expect`` has a generous timeout for busy CI.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import termios
from pathlib import Path

import pexpect
import pytest

from agentshell.terminal import typeahead_hidden
from tests.helpers.cli import spawn_repl
from tests.helpers.slow_start import MARKER as SLOW_START_MARKER, STARTED, STOP_DONE, STOP_MARKER

PROMPT = "agentshell>"


HELP_TEXT = "Tab completes commands and arguments."


TIMEOUT = 30


def spawn(home: Path, *plugins: str, **env: str) -> pexpect.spawn[str]:
    return spawn_repl(home, *plugins, timeout=TIMEOUT, **env)


def lflag(child: pexpect.spawn[str]) -> int:
    return int(termios.tcgetattr(child.child_fd)[3])


def assert_hidden_while_running(child: pexpect.spawn[str]) -> None:
    """A command runs: cooked mode (ICANON) without echo, signals still on."""
    flags = lflag(child)
    assert flags & termios.ICANON, "prompt_toolkit's raw mode is still on"
    assert not flags & termios.ECHO
    assert not flags & termios.ECHOCTL
    assert flags & termios.ISIG  # Ctrl-C still raises SIGINT


def assert_restored(child: pexpect.spawn[str]) -> None:
    """After the shell exits the terminal is as it found it: cooked, echoing."""
    flags = lflag(child)
    assert flags & termios.ECHO
    assert flags & termios.ICANON
    assert flags & termios.ISIG


def finish(child: pexpect.spawn[str]) -> int | None:
    child.expect(pexpect.EOF)
    assert_restored(child)
    child.close()
    return child.exitstatus


def before(child: pexpect.spawn[str]) -> str:
    """What the terminal showed before the last match."""
    return str(child.before)


@pytest.mark.e2e
def test_typed_ahead_keys_are_not_echoed_and_reach_the_next_prompt(tmp_path: Path) -> None:
    """The command's own output may be drawn before or after the next prompt
    (patch_stdout flushes it from a thread), so the test never orders on it; a terminal
    echo, though, happens as the keys arrive, so it would show before the next prompt."""
    child = spawn(tmp_path / "home", "tests.helpers.gate")
    transcript = io.StringIO()
    child.logfile_read = transcript
    gate = tmp_path / "gate-1"
    try:
        child.expect_exact(PROMPT)
        child.sendline(f"/gate {gate}")
        child.expect_exact("gate: waiting")
        assert_hidden_while_running(child)
        child.send("/help")  # typed while the command runs, no Enter
        gate.touch()
        child.expect_exact(PROMPT)
        assert "/help" not in before(child)  # not echoed while the command ran
        # the keys were kept: the next prompt's input line holds them; Enter runs them
        child.expect_exact("/help")
        assert HELP_TEXT not in before(child)  # drawn in the input line, not yet run
        child.send("\r")
        child.expect_exact(HELP_TEXT)
        child.expect_exact(PROMPT)

        # a whole line typed ahead, Enter included, runs once the command is done
        gate = tmp_path / "gate-2"
        child.sendline(f"/gate {gate}")
        child.expect_exact("gate: waiting")
        child.send("/help\r")
        gate.touch()
        child.expect_exact(PROMPT)
        assert "/help" not in before(child)
        child.expect_exact(HELP_TEXT)
        # (the prompt after it may be redrawn later than the help text: do not wait on it)
        child.sendline("/quit")
        status = finish(child)
    finally:
        child.close(force=True)
    assert status == 0
    assert transcript.getvalue().count("gate: open") == 2  # both commands ended normally


@pytest.mark.e2e
def test_ctrl_c_still_cancels_while_echo_is_off(tmp_path: Path) -> None:
    child = spawn(tmp_path / "home", "tests.helpers.gate")
    try:
        child.expect_exact(PROMPT)
        child.sendline(f"/gate {tmp_path / 'never'}")
        child.expect_exact("gate: waiting")
        assert_hidden_while_running(child)
        child.sendintr()
        child.expect_exact("^C cancelled")
        child.expect_exact(PROMPT)
        # the shell is still there and works
        child.sendline("/help")
        child.expect_exact(HELP_TEXT)
        child.sendline("/quit")  # read by the next prompt whenever it starts
        status = finish(child)
    finally:
        child.close(force=True)
    assert status == 0


@pytest.mark.e2e
def test_sigterm_during_a_command_restores_the_terminal(tmp_path: Path) -> None:
    child = spawn(tmp_path / "home", "tests.helpers.gate")
    try:
        child.expect_exact(PROMPT)
        child.sendline(f"/gate {tmp_path / 'never'}")
        child.expect_exact("gate: waiting")
        assert_hidden_while_running(child)
        child.kill(signal.SIGTERM)
        child.expect_exact("terminated: cancelled")
        status = finish(child)
    finally:
        child.close(force=True)
    assert status == 143


def test_typeahead_hidden_restores_on_every_way_out() -> None:
    """On a real pty pair: echo off inside, the saved attributes back after a normal
    end, an exception and a cancellation; a no-op for a stream that is not a tty."""
    master, slave = os.openpty()
    try:
        stream = open(slave, encoding="utf-8", closefd=False)  # noqa: SIM115
        before = termios.tcgetattr(slave)
        assert before[3] & termios.ECHO

        with typeahead_hidden(stream) as changed:
            assert changed
            inside = termios.tcgetattr(slave)[3]
            assert not inside & (termios.ECHO | termios.ECHOCTL)
            assert inside & termios.ISIG and inside & termios.ICANON
        assert termios.tcgetattr(slave) == before

        with pytest.raises(RuntimeError), typeahead_hidden(stream):
            raise RuntimeError("a command blew up")
        assert termios.tcgetattr(slave) == before

        async def cancelled() -> None:
            async def body() -> None:
                with typeahead_hidden(stream):
                    await asyncio.sleep(3600)

            task = asyncio.ensure_future(body())
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(cancelled())
        assert termios.tcgetattr(slave) == before

        # keys typed meanwhile are kept in the tty (TCSANOW, never a flush)
        with typeahead_hidden(stream):
            os.write(master, b"/help")
        os.write(master, b"\n")
        assert os.read(slave, 100) == b"/help\n"
        stream.close()
    finally:
        os.close(master)
        os.close(slave)

    with typeahead_hidden(io.StringIO()) as changed:
        assert not changed
    read_end, write_end = os.pipe()
    with open(read_end, encoding="utf-8") as pipe, typeahead_hidden(pipe) as changed:
        assert not changed
    os.close(write_end)


def events(home: Path) -> list[str]:
    path = home / "data" / "telemetry.jsonl"
    return [json.loads(line)["type"] for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.e2e
def test_sigterm_while_plugins_load_stops_cleanly(tmp_path: Path) -> None:
    """The instant prompt is up, a plugin's shell_started hook is still running (it
    would for two minutes): SIGTERM stops the shell now, with status 143, telemetry
    flushed and the terminal restored."""
    home = tmp_path / "home"
    child = spawn(home, "tests.helpers.slow_start", AGENTSHELL_TELEMETRY_SINKS="jsonl")
    try:
        child.expect_exact(PROMPT)
        child.expect_exact(SLOW_START_MARKER)  # session.started is written by now
        child.kill(signal.SIGTERM)
        status = finish(child)
    finally:
        child.close(force=True)
    assert status == 143
    assert STARTED not in before(child)  # the hook was cancelled
    assert events(home) == ["session.started", "session.stopped"]


@pytest.mark.e2e
def test_sigterm_while_plugins_load_then_a_line_waits(tmp_path: Path) -> None:
    """A line entered while plugins load waits for them; SIGTERM then still stops."""
    home = tmp_path / "home"
    child = spawn(home, "tests.helpers.slow_start", AGENTSHELL_TELEMETRY_SINKS="jsonl")
    try:
        child.expect_exact(PROMPT)
        child.expect_exact(SLOW_START_MARKER)
        child.sendline("/help")
        child.expect_exact("/help")
        child.kill(signal.SIGTERM)
        status = finish(child)
    finally:
        child.close(force=True)
    assert status == 143
    assert HELP_TEXT not in before(child)
    assert events(home) == ["session.started", "session.stopped"]


@pytest.mark.e2e
def test_sigterm_during_the_stop_lets_it_finish(tmp_path: Path) -> None:
    """Ctrl-D, and SIGTERM while a plugin's shell_stopping hook still runs: the stop is
    not cut short (telemetry is flushed), and the status says terminated."""
    home = tmp_path / "home"
    child = spawn(
        home,
        "tests.helpers.slow_start",
        AGENTSHELL_TELEMETRY_SINKS="jsonl",
        SLOW_START_SECONDS="0",
        SLOW_STOP="1",
    )
    try:
        child.expect_exact(STARTED)
        child.expect_exact(PROMPT)
        child.sendeof()
        child.expect_exact(STOP_MARKER)
        child.kill(signal.SIGTERM)
        child.expect_exact(STOP_DONE)  # the hook saw the request to exit and finished
        status = finish(child)
    finally:
        child.close(force=True)
    assert status == 143
    assert events(home) == ["session.started", "session.stopped"]
