"""``/agents``: the configured agents, their backend and model, and whether their
credentials are available (never the credentials themselves)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentshell.commands import Command, CommandContext, Option
from agentshell.plugins import hookimpl

if TYPE_CHECKING:
    from agentshell.hookspecs import Register


def agents_command(ctx: CommandContext) -> int:
    shell = ctx.shell
    rows = []
    data = []
    for name, spec in sorted(shell.agents.items()):
        available = shell.auth.available(spec.auth)
        creds = {True: "yes", False: "MISSING", None: "?"}[available]
        source = shell.auth.describe(spec.auth)
        recorded = " (recorded)" if spec.backend == "replay" else ""
        rows.append((name, spec.backend + recorded, spec.model, spec.role, f"{creds} — {source}"))
        data.append(
            {
                "name": name,
                "backend": spec.backend,
                "model": spec.model,
                "role": spec.role,
                "credentials": source,
                "available": available,
            }
        )
    if ctx.args.json:
        ctx.out.json(data)
        return 0
    if not rows:
        ctx.out.print("No agents configured. Add [agents.<name>] tables to agentshell.toml.")
        return 0
    ctx.out.table(["agent", "backend", "model", "role", "credentials"], rows, title="Agents")
    return 0


@hookimpl
def register_commands(register: Register) -> None:
    register(
        Command(
            "agents",
            agents_command,
            help="list agents: backend, model, role, credentials available",
            options=[Option("--json", "print JSON", flag=True)],
        )
    )
