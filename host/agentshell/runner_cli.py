"""Running command lines without a terminal UI: ``agentshell run`` and piped stdin.

Kept apart from :mod:`agentshell.repl` so the non-interactive paths never import
prompt_toolkit (it costs a noticeable part of a short ``agentshell run``'s start-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from typing import TYPE_CHECKING

from .cli import EXIT_FAILED, EXIT_INTERRUPTED

if TYPE_CHECKING:
    from .shell import Shell


async def run_command(shell: Shell, line: str) -> int:
    """Run one line as a task that Ctrl-C (SIGINT) cancels without leaving the shell."""
    loop = asyncio.get_running_loop()
    shell.output.cancel_shown = False
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
            # exit_requested: SIGTERM (see cli._terminable), not Ctrl-C
            if shell.exit_requested:
                shell.output.print("terminated: cancelled")
            elif not shell.output.cancel_shown:
                shell.output.print("^C cancelled")
            return EXIT_INTERRUPTED
        raise
    finally:
        shell.current_task = None
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


def _readline(loop: asyncio.AbstractEventLoop) -> asyncio.Future[str]:
    """``sys.stdin.readline`` in a daemon thread: a default-executor thread blocked on an
    open pipe would keep the process alive after SIGTERM (asyncio.run waits for it)."""
    future: asyncio.Future[str] = loop.create_future()

    def deliver(line: str | None, exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(line or "")

    def work() -> None:
        try:
            line, exc = sys.stdin.readline(), None
        except Exception as error:  # reported to the awaiting coroutine
            line, exc = None, error
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            loop.call_soon_threadsafe(deliver, line, exc)

    threading.Thread(target=work, name="agentshell-stdin", daemon=True).start()
    return future


async def line_reader(shell: Shell) -> int:
    """Without a terminal: read commands line by line from stdin, no prompt, no colour.
    Exits non-zero if any command failed."""
    loop = asyncio.get_running_loop()
    status = 0
    while not shell.exit_requested and not shell.output.closed:
        line = await _readline(loop)
        if not line:
            break
        if line.strip():
            status = max(status, await run_command(shell, line))
    return EXIT_INTERRUPTED if status == EXIT_INTERRUPTED else min(status, EXIT_FAILED)


__all__ = ["line_reader", "run_command"]
