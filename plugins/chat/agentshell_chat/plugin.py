"""The chat plugin: plain text is a message to the session's chat agent.

* ``handle_text`` sends a line that is not a command (``@<agent> text``: to another
  agent, for that message) and streams the answer (:mod:`.session`).
* ``register_agent_backends`` adds ``chat-echo``, the offline agent ``echo`` that
  answers when no chat agent is configured, with the advice to configure one.
* ``shell_started`` builds the session's :class:`~agentshell_chat.session.ChatSession`
  (at ``shell.state["chat"]``) and, with ``--continue``, picks up the last conversation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentshell.agents import AgentSpec
from agentshell.errors import AgentshellError, CommandError
from agentshell.plugins import hookimpl

from .echo import BACKEND, EchoBackend
from .settings import ECHO_AGENT, ChatSettings

if TYPE_CHECKING:
    from agentshell import Register, Shell

SECTION = "chat"


@hookimpl
def register_config(register: Register) -> None:
    register(SECTION, ChatSettings)


@hookimpl
def register_agent_backends(register: Register) -> None:
    register(BACKEND, EchoBackend)


@hookimpl
def register_commands(register: Register) -> None:
    from .commands import commands

    for command in commands():
        register(command)


@hookimpl
async def shell_started(shell: Shell) -> None:
    from .commands import STATE_KEY
    from .session import ChatSession, default_agent

    shell.define_default_agent(AgentSpec(name=ECHO_AGENT, backend=BACKEND, role="chat"))
    agent = default_agent(shell)
    if agent not in shell.agents:
        known = ", ".join(sorted(shell.agents)) or "none"
        shell.output.warn(
            f"[plugins.chat] agent = {agent!r} is not an agent (agents: {known}); "
            f"plain text goes to {ECHO_AGENT!r}"
        )
        agent = ECHO_AGENT
    session = ChatSession(shell, agent)
    shell.state[STATE_KEY] = session
    if shell.continue_last:
        try:
            conversation = await session.resume(None)
        except CommandError as exc:  # nothing to continue: say so, start afresh
            shell.output.info(str(exc))
        except AgentshellError as exc:  # an unusable store: the session goes on without it
            shell.output.warn(f"--continue: {exc}")
        else:
            if shell.mode == "repl":
                turns = session.last_turn
                shell.output.info(
                    f"continuing conversation {conversation} with {session.agent} "
                    f"({turns} turn{'s' if turns != 1 else ''})"
                )


@hookimpl
def shell_stopping(shell: Shell) -> None:
    from .commands import STATE_KEY
    from .session import ChatSession

    session = shell.state.pop(STATE_KEY, None)
    if isinstance(session, ChatSession):
        session.end_conversation()


@hookimpl
async def handle_text(shell: Shell, text: str) -> int | None:
    from .commands import session_of

    session = session_of(shell)
    agent: str | None = None
    if text.startswith("@"):
        head, _, rest = text[1:].partition(" ")
        if not head:
            raise CommandError("@<agent> <message>: name the agent after the @")
        if not rest.strip():
            raise CommandError(f"@{head}: give a message after the agent's name")
        agent, text = head, rest.strip()
    result = await session.send(text, agent)
    if shell.json_output and result.response is not None:
        response = result.response
        shell.output.json(
            {
                "answer": response.content,
                "agent": response.agent,
                "model": response.model,
                "usage": response.usage.model_dump(),
                "cost_usd": response.cost_usd,
                "conversation_id": session.conversation_id,
                "turn": session.last_turn,
            }
        )
    return 0


@hookimpl
def status_segments(shell: Shell) -> str | None:
    from .commands import STATE_KEY
    from .session import ChatSession

    session = shell.state.get(STATE_KEY)
    if not isinstance(session, ChatSession):
        return None
    turns = session.last_turn
    # only once there is a conversation: a session of commands keeps its toolbar short
    return f"chat {session.agent} · turn {turns}" if turns else None


__all__ = ["SECTION"]
