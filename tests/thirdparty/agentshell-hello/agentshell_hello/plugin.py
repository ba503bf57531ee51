"""A third-party agentshell plugin, packaged on its own: ``/hello [NAME] [--shout]``
and a bottom-toolbar segment counting greetings."""

from __future__ import annotations

from typing import Any

from agentshell import Arg, Command, CommandContext, Option, hookimpl


def hello(ctx: CommandContext) -> int:
    text = f"hello, {ctx.args.name or 'world'}!"
    ctx.out.print(text.upper() if ctx.args.shout else text)
    ctx.shell.state["hello.count"] = ctx.shell.state.get("hello.count", 0) + 1
    return 0


@hookimpl
def register_commands(register: Any) -> None:
    register(
        Command(
            "hello",
            hello,
            help="greet someone (a third-party plugin)",
            args=[Arg("name", "who to greet", required=False)],
            options=[Option("--shout", "in capitals", flag=True)],
        )
    )


@hookimpl
def status_segments(shell: Any) -> str:
    return f"hello x{shell.state.get('hello.count', 0)}"
