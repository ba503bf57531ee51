"""The interactive shell in a real pty, its output rendered by a terminal emulator
(pyte), so tests assert on the screen a user sees rather than on the byte stream
(prompt_toolkit redraws, moves the cursor and erases). The emulator answers
cursor-position requests like a terminal does."""

from __future__ import annotations

import time
from pathlib import Path

import pexpect
import pyte

from tests.helpers.cli import spawn_repl

PROMPT = "agentshell>"
ROWS, COLUMNS = 40, 140


class _Screen(pyte.Screen):
    """A pyte screen that sends its answers (cursor position reports) to the shell."""

    def __init__(self, child: pexpect.spawn[str]) -> None:
        super().__init__(COLUMNS, ROWS)
        self.child = child

    def write_process_input(self, data: str) -> None:
        self.child.send(data)


class Terminal:
    """``agentshell [-p PLUGIN]...`` in a pty, read through pyte."""

    def __init__(self, home: Path, *plugins: str, timeout: float = 30, **env: str) -> None:
        self.timeout = timeout
        self.child = spawn_repl(home, *plugins, timeout=timeout, PROMPT_TOOLKIT_NO_CPR="0", **env)
        self.screen = _Screen(self.child)
        self.stream = pyte.Stream(self.screen)
        self.exited = False

    def rows(self) -> list[str]:
        return [row.rstrip() for row in self.screen.display]

    def text(self) -> str:
        return "\n".join(self.rows())

    def _read(self) -> None:
        try:
            self.stream.feed(self.child.read_nonblocking(65536, timeout=1))
        except pexpect.TIMEOUT:
            pass
        except pexpect.EOF:
            self.exited = True

    def wait_for(self, text: str) -> None:
        """Read output until ``text`` is on screen followed by a bare prompt (the shell
        is idle again), or the shell has exited."""
        deadline = time.monotonic() + self.timeout  # a bound on waiting, never an assertion
        while not self._shown_then_idle(text):
            if self.exited:
                raise AssertionError(f"the shell exited before {text!r}:\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never showed; screen:\n{self.text()}")
            self._read()

    def _shown_then_idle(self, text: str) -> bool:
        rows = self.rows()
        hits = [i for i, row in enumerate(rows) if text in row]
        return bool(hits) and any(row == PROMPT for row in rows[hits[-1] + 1 :])

    def wait_for_exit(self) -> int:
        """Read until the shell exits; its exit status."""
        deadline = time.monotonic() + self.timeout
        while not self.exited:
            if time.monotonic() > deadline:
                raise AssertionError(f"the shell did not exit; screen:\n{self.text()}")
            self._read()
        self.child.close()
        return int(self.child.exitstatus if self.child.exitstatus is not None else -1)

    def type(self, line: str) -> None:
        self.child.send(line + "\r")

    def close(self) -> None:
        if self.child.isalive():
            self.child.close(force=True)
