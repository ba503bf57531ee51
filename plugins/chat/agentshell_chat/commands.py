"""The conversation's commands: /chat, /new, /undo, /fork, /compact, /conversations,
/resume-chat."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from agentshell.commands import Arg, Command, CommandContext, Option
from agentshell.errors import CommandError

from .session import ChatSession

if TYPE_CHECKING:
    from agentshell import Shell

STATE_KEY = "chat"


def session_of(shell: Shell) -> ChatSession:
    session = shell.state.get(STATE_KEY)
    if not isinstance(session, ChatSession):
        raise CommandError("the chat plugin has not started")
    return session


def complete_agents(shell: Shell, text: str) -> list[str]:
    return sorted(name for name in shell.agents if name.startswith(text))


def complete_conversations(shell: Shell, text: str) -> list[str]:
    session = shell.state.get(STATE_KEY)
    store = session.store if isinstance(session, ChatSession) else None
    if store is None:
        return []
    try:
        return store.ids(text)
    except Exception:  # a locked or unreadable store offers nothing, never an error
        return []


async def chat_command(ctx: CommandContext) -> int:
    session = session_of(ctx.shell)
    name = ctx.args.agent
    if not name:
        spec = session.spec()
        model = f" ({spec.backend}, {spec.model})" if spec.model else f" ({spec.backend})"
        ctx.out.info(f"chat agent: {spec.name}{model}")
        return 0
    spec = session.spec(name)
    session.agent = spec.name
    store = session.store
    if store is not None and session.conversation_id and session.branch_id != "memory":
        await asyncio.to_thread(store.set_agent, session.conversation_id, spec.name)
    ctx.out.success(f"chat agent: {spec.name} — plain text now goes to it")
    return 0


def new_command(ctx: CommandContext) -> int:
    session_of(ctx.shell).new()
    ctx.out.success("new conversation: the next message starts it")
    return 0


async def undo_command(ctx: CommandContext) -> int:
    session = session_of(ctx.shell)
    last = session.last_turn
    if last < 1:
        raise CommandError("/undo: nothing to undo")
    branch = await session.branch(last - 1, "undo")
    ctx.out.success(
        f"undid turn {last}: on branch {branch} (the previous branch is kept; /conversations)"
    )
    return 0


async def fork_command(ctx: CommandContext) -> int:
    session = session_of(ctx.shell)
    last = session.last_turn
    raw = ctx.args.turn
    if raw is None:
        turn = last
    else:
        try:
            turn = int(raw)
        except ValueError:
            raise CommandError(f"/fork: <TURN> must be a number, not {raw!r}") from None
        if not 0 <= turn <= last:
            raise CommandError(f"/fork: the conversation has turns 1 to {last}, not {turn}")
    branch = await session.branch(turn, "fork")
    ctx.out.success(f"forked after turn {turn}: on branch {branch} (the old branch is kept)")
    return 0


async def compact_command(ctx: CommandContext) -> int:
    session = session_of(ctx.shell)
    before = len(session.items)
    branch = await session.compact()
    ctx.out.success(
        f"compacted {before} items into one summary: on branch {branch} "
        "(the full history is kept on the old branch)"
    )
    return 0


async def conversations_command(ctx: CommandContext) -> int:
    session = session_of(ctx.shell)
    store = session.need_store("/conversations")
    infos = await asyncio.to_thread(store.recent, 20)
    if ctx.args.json:
        ctx.out.json(
            [
                {
                    "id": i.conversation_id,
                    "title": i.title,
                    "agent": i.agent,
                    "branch": i.current_branch_id,
                    "branches": i.branches,
                    "items": i.items,
                    "updated_at": i.updated_at,
                    "current": i.conversation_id == session.conversation_id,
                }
                for i in infos
            ]
        )
        return 0
    if not infos:
        ctx.out.info("no conversations yet: type a message to start one")
        return 0
    rows = [
        [
            ("* " if i.conversation_id == session.conversation_id else "  ") + i.conversation_id,
            time.strftime("%Y-%m-%d %H:%M", time.localtime(i.updated_at)),
            i.agent or "",
            str(i.items),
            str(i.branches),
            i.title,
        ]
        for i in infos
    ]
    ctx.out.table(
        ["id", "updated", "agent", "items", "branches", "title"],
        rows,
        title="Conversations",
        keep=["id"],
        wrap=["title"],
        # left out when narrow, last first: the id and the title are what a user picks by
        optional=["agent", "updated", "items", "branches"],
    )
    ctx.out.info("continue one with /resume-chat <id>", style="dim")
    return 0


async def resume_command(ctx: CommandContext) -> int:
    session = session_of(ctx.shell)
    conversation = await session.resume(ctx.args.id)
    turns = session.last_turn
    ctx.out.success(
        f"continuing conversation {conversation} with {session.agent}: "
        f"{turns} turn{'s' if turns != 1 else ''} in its history"
    )
    return 0


def commands() -> list[Command]:
    return [
        Command(
            "chat",
            chat_command,
            help="show the chat agent, or switch plain text to another agent",
            args=[Arg("agent", "an agent name", required=False, complete=complete_agents)],
            description=(
                "Plain text (a line not starting with '/') is a message to the chat agent. "
                "'@<agent> text' sends one message to another agent."
            ),
        ),
        Command("new", new_command, help="start a new conversation"),
        Command(
            "undo",
            undo_command,
            help="drop the last exchange (a new branch; the old one is kept)",
        ),
        Command(
            "fork",
            fork_command,
            help="branch the conversation after turn N (default: the last)",
            args=[Arg("turn", "keep turns 1 to TURN", required=False)],
        ),
        Command(
            "compact",
            compact_command,
            help="summarise the conversation into one item, on a new branch",
        ),
        Command(
            "conversations",
            conversations_command,
            help="list stored conversations",
            options=[Option("--json", "print JSON", flag=True)],
        ),
        Command(
            "resume-chat",
            resume_command,
            help="continue a stored conversation (default: the last one)",
            args=[Arg("id", "a conversation id", required=False, complete=complete_conversations)],
        ),
    ]


__all__ = ["STATE_KEY", "commands", "complete_agents", "session_of"]
