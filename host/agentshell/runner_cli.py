"""Running command lines without a terminal UI: ``agentshell run`` and piped stdin.

Kept apart from :mod:`agentshell.repl` so the non-interactive paths never import
prompt_toolkit (it costs a noticeable part of a short ``agentshell run``'s start-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import TYPE_CHECKING

from .cli import EXIT_FAILED, EXIT_INTERRUPTED

if TYPE_CHECKING:
    from .shell import Shell


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
            return EXIT_INTERRUPTED
        raise
    finally:
        shell.current_task = None
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


async def line_reader(shell: Shell) -> int:
    """Without a terminal: read commands line by line from stdin, no prompt, no colour.
    Exits non-zero if any command failed."""
    loop = asyncio.get_running_loop()
    status = 0
    while not shell.exit_requested and not shell.output.closed:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        if line.strip():
            status = max(status, await run_command(shell, line))
    return EXIT_INTERRUPTED if status == EXIT_INTERRUPTED else min(status, EXIT_FAILED)


__all__ = ["line_reader", "run_command"]
