"""A test plugin for the REPL's input handling: ``/zz-record WORD...`` prints
``ran: [WORD ...]`` (what the command really received), and its first argument
completes from a fixed list (``alpha-target``, ``beta-target``), so a Tab has a unique
answer for ``alp``. With ``RECORDER_START_GATE=PATH`` its ``shell_started`` waits until
PATH exists: the REPL's "loading plugins" window stays open as long as a test needs.

Load it with ``agentshell -p tests.helpers.recorder`` (repo root on PYTHONPATH).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING

from agentshell.commands import Arg, Command, CommandContext
from agentshell.plugins import hookimpl

if TYPE_CHECKING:
    from agentshell.hookspecs import Register
    from agentshell.shell import Shell

TARGETS = ("alpha-target", "beta-target")
LOADING = "recorder: waiting for the start gate"


def record(ctx: CommandContext) -> int:
    ctx.out.print(f"ran: [{' '.join(ctx.args.words)}]")
    return 0


@hookimpl
def register_commands(register: Register) -> None:
    register(
        Command(
            "zz-record",
            record,
            help="print the words received (a test command)",
            args=[
                Arg(
                    "words",
                    "any words",
                    variadic=True,
                    complete=lambda shell, text: [t for t in TARGETS if t.startswith(text)],
                )
            ],
        )
    )


@hookimpl
async def shell_started(shell: Shell) -> None:
    gate = os.environ.get("RECORDER_START_GATE")
    if not gate:
        return
    shell.output.print(LOADING)
    # polling: the test process creates the file; each wait is cancellable (SIGTERM)
    while not await asyncio.to_thread(Path(gate).exists):  # noqa: ASYNC110
        await asyncio.sleep(0.02)
