"""The interactive loop: one PromptSession with completion, redacted history, a bottom
toolbar from plugins' status segments, and Ctrl-C that cancels the running command
but never the shell. Without a terminal it falls back to a plain line reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory

from .commands import split_line
from .errors import CommandError
from .redact import redact

if TYPE_CHECKING:
    from .shell import Shell


class CommandCompleter(Completer):
    """Completes command names, then each command's options and declared arguments."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        text = document.text_before_cursor
        if not text.startswith("/"):
            return
        if " " not in text:
            prefix = text[1:]
            for name in self.shell.commands.names():
                if name.startswith(prefix):
                    command = self.shell.commands.get(name)
                    yield Completion(
                        "/" + name,
                        start_position=-len(text),
                        display_meta=command.help if command else "",
                    )
            return
        head, _, rest = text[1:].partition(" ")
        command = self.shell.commands.get(head)
        if command is None or command.raw:
            return
        try:
            words = split_line(rest)
        except CommandError:
            return  # inside an open quote: nothing sensible to offer
        current = "" if rest.endswith(" ") or not rest else words.pop()
        for candidate in self._candidates(command, words, current):
            if candidate.startswith(current):
                yield Completion(candidate, start_position=-len(current))

    def _candidates(self, command: object, words: list[str], current: str) -> Iterable[str]:
        from .commands import Command

        assert isinstance(command, Command)
        options = {opt.name: opt for opt in command.options}
        # the word before the cursor may be an option that wants a value
        if words and words[-1] in options and not options[words[-1]].flag:
            opt = options[words[-1]]
            if opt.choices:
                return list(opt.choices)
            return list(opt.complete(self.shell, current)) if opt.complete else []
        if current.startswith("-"):
            used = set(words)
            return [name for name in options if name not in used]
        positional = [w for i, w in enumerate(words) if not self._is_option_part(words, i, options)]
        index = len(positional)
        args = list(command.args)
        if index < len(args) or (args and args[-1].variadic):
            arg = args[min(index, len(args) - 1)]
            if arg.complete:
                return list(arg.complete(self.shell, current))
            if arg.choices:
                return list(arg.choices)
        return []

    @staticmethod
    def _is_option_part(words: list[str], i: int, options: Mapping[str, object]) -> bool:
        if words[i].startswith("--"):
            return True
        prev = words[i - 1] if i else ""
        opt = options.get(prev)
        return opt is not None and not getattr(opt, "flag", True)


class RedactingHistory(FileHistory):
    """File history that never writes a secret: values of ``/set-env`` and anything that
    looks like a key or token are masked before they reach the file."""

    def store_string(self, string: str) -> None:
        super().store_string(redact_history_line(string))


def redact_history_line(line: str) -> str:
    stripped = line.strip()
    if stripped.startswith("/set-env"):
        name, eq, _ = stripped[len("/set-env") :].strip().partition("=")
        return f"/set-env {name.strip()}=****" if eq else "/set-env"
    return redact(line)


async def run_command(shell: Shell, line: str) -> int:
    """Run one line as a task that Ctrl-C (SIGINT) cancels without leaving the shell."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(shell.execute(line))
    shell.current_task = task

    def cancel() -> None:
        if not task.done():
            task.cancel()

    installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, cancel)
        installed = True
    try:
        return await task
    except asyncio.CancelledError:
        if task.cancelled():
            shell.output.print("^C cancelled")
            return 130
        raise
    finally:
        shell.current_task = None
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


async def repl(shell: Shell) -> int:
    """The interactive session. Returns the exit status for ``sys.exit``."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.patch_stdout import patch_stdout

    history = None
    if shell.config.shell.history:
        path = Path(shell.data_dir) / "history"
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            history = RedactingHistory(str(path))

    def toolbar() -> str | None:
        if not shell.config.shell.toolbar:
            return None
        text = shell.status_text()
        return f" {text} " if text else None

    session: PromptSession[str] = PromptSession(
        history=history,
        completer=CommandCompleter(shell),
        complete_while_typing=False,
        bottom_toolbar=toolbar,
        enable_history_search=True,
    )
    with patch_stdout(raw=True):
        while not shell.exit_requested:
            try:
                line = await session.prompt_async(shell.config.shell.prompt)
            except KeyboardInterrupt:
                continue  # Ctrl-C clears the line; it never leaves the shell
            except EOFError:
                break
            if not line.strip():
                continue
            await run_command(shell, line)
    return 0


async def line_reader(shell: Shell) -> int:
    """Without a terminal: read commands line by line from stdin, no prompt, no colour.
    Exits non-zero if any command failed."""
    loop = asyncio.get_running_loop()
    status = 0
    while not shell.exit_requested:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        if line.strip():
            status = max(status, await run_command(shell, line))
    return min(status, 1) if status != 130 else 130


__all__ = ["CommandCompleter", "RedactingHistory", "line_reader", "redact_history_line", "repl"]
