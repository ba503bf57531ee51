"""The interactive shell in a real pty, its output rendered by a terminal emulator
(pyte), so tests assert on the screen a user sees — with its colours — not on the
byte stream (prompt_toolkit and rich redraw, move the cursor and erase).

The emulator answers cursor-position requests as a terminal does, so the toolbar is
drawn. Waiting is bounded (a deadline) but never asserted on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pexpect
import pyte

from agentshell.repl import FIRST_RUN_HINT
from tests.helpers.cli import spawn_repl

PROMPT = "agentshell>"
# a fresh install's first prompt carries a hint until a key is typed: still idle
IDLE_PROMPTS = {PROMPT, f"{PROMPT} {''.join(text for _, text in FIRST_RUN_HINT)}"}
TIMEOUT = 30


class Screen(pyte.Screen):
    """A pyte screen that sends its answers (cursor position reports) to the shell."""

    def __init__(self, child: pexpect.spawn[str], columns: int, lines: int) -> None:
        super().__init__(columns, lines)
        self.child = child

    def write_process_input(self, data: str) -> None:
        self.child.send(data)


class Terminal:
    """The shell in a ``columns`` x ``lines`` pty, rendered by pyte."""

    def __init__(
        self,
        home: Path,
        *plugins: str,
        columns: int = 140,
        lines: int = 40,
        cwd: Path | None = None,
        timeout: float = TIMEOUT,
        **env: str,
    ) -> None:
        """``agentshell [-p PLUGIN]...`` in a ``columns`` x ``lines`` pty."""
        self.timeout = timeout
        self.exited = False
        # spawn_repl turns cursor-position requests off; this screen answers them
        self.child = spawn_repl(
            home,
            *plugins,
            timeout=timeout,
            dimensions=(lines, columns),
            cwd=cwd,
            **{"PROMPT_TOOLKIT_NO_CPR": "0", **env},
        )
        self.screen = Screen(self.child, columns, lines)
        self.stream = pyte.Stream(self.screen)
        self.raw = ""  # everything the shell wrote, escape sequences included

    def rows(self) -> list[str]:
        return [row.rstrip() for row in self.screen.display]

    def text(self) -> str:
        return "\n".join(self.rows())

    def pump(self, seconds: float = 0.2) -> None:
        """Feed whatever the shell writes within ``seconds`` to the screen."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                data = self.child.read_nonblocking(65536, timeout=left)
            except (pexpect.TIMEOUT, pexpect.EOF):
                return
            self.raw += data
            self.stream.feed(data)

    def until(self, condition: Callable[[list[str]], bool], what: str) -> list[str]:
        """Read output until ``condition(rows)`` holds; the rows then."""
        deadline = time.monotonic() + self.timeout  # a bound on waiting, never an assertion
        while not condition(self.rows()):
            if self.exited:
                raise AssertionError(f"the shell exited before {what}; screen:\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} never showed; screen:\n{self.text()}")
            self._read()
        return self.rows()

    def _read(self) -> None:
        try:
            data = self.child.read_nonblocking(65536, timeout=1)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            self.exited = True
            return
        self.raw += data
        self.stream.feed(data)

    def wait_for_exit(self) -> int:
        """Read until the shell exits; its exit status."""
        deadline = time.monotonic() + self.timeout
        while not self.exited:
            if time.monotonic() > deadline:
                raise AssertionError(f"the shell did not exit; screen:\n{self.text()}")
            self._read()
        self.child.close()
        return int(self.child.exitstatus if self.child.exitstatus is not None else -1)

    def wait_for(self, done: str | None = None) -> None:
        """Read output until a row holds ``done`` and a bare prompt follows it (the
        shell is idle again); without ``done``, until a prompt shows."""
        self.until(lambda rows: idle_after(rows, done), repr(done))

    def send_line(self, line: str) -> None:
        self.child.send(line + "\r")

    type = send_line  # as a user types a line and presses Enter

    def close(self) -> None:
        """Ctrl-D, as a user leaves; a shell that is still busy (a failed test left a
        command running) is killed, so the test's own error is the one reported."""
        if not self.exited and self.child.isalive():
            self.child.sendeof()
            try:
                self.child.expect(pexpect.EOF, timeout=10)
            except pexpect.TIMEOUT:
                self.child.terminate(force=True)
        self.child.close()


def idle_after(rows: list[str], done: str | None) -> bool:
    if done is None:
        return any(row.startswith(PROMPT) for row in rows)
    hits = [i for i, row in enumerate(rows) if done in row]
    return bool(hits) and any(row in IDLE_PROMPTS for row in rows[hits[-1] + 1 :])
