"""A test plugin with a long-running command, for Ctrl-C tests in a real terminal.

Load it with ``agentshell -p tests.helpers.sleepy`` (repo root on PYTHONPATH).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from agentshell.commands import Arg, Command, CommandContext
from agentshell.plugins import hookimpl

if TYPE_CHECKING:
    from agentshell.hookspecs import Register
    from agentshell.shell import Shell


async def sleep_command(ctx: CommandContext) -> int:
    seconds = float(ctx.args.seconds)
    ctx.out.print(f"sleeping {seconds:g}s")
    await asyncio.sleep(seconds)
    ctx.out.print("woke up")
    return 0


def fail_command(ctx: CommandContext) -> int:
    ctx.out.error("failing on purpose")
    return 3


@hookimpl
def register_commands(register: Register) -> None:
    register(
        Command(
            "sleep",
            sleep_command,
            help="sleep for SECONDS (a long-running command for tests)",
            args=[Arg("seconds", "how long")],
        )
    )
    register(Command("fail", fail_command, help="always fails with status 3"))


@hookimpl
def status_segments(shell: Shell) -> str:
    return "sleepy"
