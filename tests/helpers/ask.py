"""A test plugin that streams one agent's answer into the terminal: ``/ask AGENT TEXT``
runs the agent through the shell's runner with ``on_delta`` feeding
``Output.stream_answer()``, as a plugin (or the conversation feature) would. It exists
to see streaming on a real screen, with the REPL's live status region around it.

Load it with ``agentshell -p tests.helpers.ask`` (repo root on PYTHONPATH).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentshell.agents import AgentRequest
from agentshell.commands import Arg, Command, CommandContext
from agentshell.errors import CommandError
from agentshell.plugins import hookimpl

if TYPE_CHECKING:
    from agentshell.hookspecs import Register


async def ask_command(ctx: CommandContext) -> int:
    name = ctx.args.agent
    spec = ctx.shell.agents.get(name)
    if spec is None:
        raise CommandError(f"no agent {name!r}")
    request = AgentRequest(prompt=" ".join(ctx.args.text))
    with ctx.out.stream_answer() as answer:
        await ctx.shell.runner.run(spec, request, on_delta=answer.delta)
    return 0


@hookimpl
def register_commands(register: Register) -> None:
    register(
        Command(
            "ask",
            ask_command,
            help="ask an agent; its answer streams into the terminal",
            args=[Arg("agent", "the agent"), Arg("text", "the question", variadic=True)],
        )
    )
