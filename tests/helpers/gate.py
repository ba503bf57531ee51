"""A test plugin with a command that runs until the test says so: ``/gate PATH`` prints
``gate: waiting``, waits until PATH exists, then prints ``gate: open``. Unlike a sleep
it needs no guess at how long the test takes to type into the terminal meanwhile.

Load it with ``agentshell -p tests.helpers.gate`` (repo root on PYTHONPATH).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from agentshell.commands import Arg, Command, CommandContext
from agentshell.plugins import hookimpl

if TYPE_CHECKING:
    from agentshell.hookspecs import Register


async def gate_command(ctx: CommandContext) -> int:
    path = Path(ctx.args.path)
    ctx.out.print("gate: waiting")
    # polling: another process creates the file; each wait is cancellable (Ctrl-C, SIGTERM)
    while not await asyncio.to_thread(path.exists):  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    ctx.out.print("gate: open")
    return 0


@hookimpl
def register_commands(register: Register) -> None:
    register(
        Command(
            "gate",
            gate_command,
            help="wait until PATH exists (a command that runs as long as a test needs)",
            args=[Arg("path", "the file whose creation ends the command")],
        )
    )
