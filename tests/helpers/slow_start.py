"""A test plugin that holds the shell in its start-up or its stop for as long as a test
needs, to send SIGTERM inside those windows without relying on timing.

- ``shell_started`` prints :data:`MARKER`, then waits ``SLOW_START_SECONDS`` (default
  120, i.e. until cancelled): the REPL's "loading plugins" window after the instant
  prompt is drawn.
- ``shell_stopping``, with ``SLOW_STOP=1``, prints :data:`STOP_MARKER` and waits until
  the shell is asked to exit (what the SIGTERM handler does first), then prints
  :data:`STOP_DONE`: a SIGTERM during the stop must not cut the stop short.

(The settings are not ``AGENTSHELL_*`` variables: the shell warns about unknown ones.)
Load it with ``agentshell -p tests.helpers.slow_start`` (repo root on PYTHONPATH).
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

from agentshell.plugins import hookimpl

if TYPE_CHECKING:
    from agentshell.shell import Shell

MARKER = "slow-start: plugin is starting"
STARTED = "slow-start: plugin started"
STOP_MARKER = "slow-stop: waiting for SIGTERM"
STOP_DONE = "slow-stop: done"


@hookimpl
async def shell_started(shell: Shell) -> None:
    shell.output.print(MARKER)
    await asyncio.sleep(float(os.environ.get("SLOW_START_SECONDS", "120")))
    shell.output.print(STARTED)


@hookimpl
async def shell_stopping(shell: Shell) -> None:
    if os.environ.get("SLOW_STOP") != "1":
        return
    shell.output.print(STOP_MARKER)
    # a plain flag the SIGTERM handler sets: nothing to await but a poll
    while not shell.exit_requested:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    shell.output.print(STOP_DONE)
