"""The offline chat agent: what plain text reaches when no real agent is configured.

It answers at once, without a network, and says how to configure a real agent, so the
first line a new user types is never an error.
"""

from __future__ import annotations

from typing import Any

from agentshell.agents import AgentCall, AgentResponse, TokenUsage

BACKEND = "chat-echo"

SETUP = (
    "To talk to a real model, add an agent and make it the chat agent, in "
    "`agentshell.toml` (or your user config):\n\n"
    "```toml\n"
    "[agents.gpt]\n"
    'backend = "openai"\n'
    'model = "gpt-4o-mini"\n'
    'api_key = { env = "OPENAI_API_KEY" }\n\n'
    "[plugins.chat]\n"
    'agent = "gpt"\n'
    "```\n\n"
    "or switch for this session with `/chat <agent>` (`/agents` lists them)."
)


SHORT = "(the offline echo agent: `/chat <agent>` or `[plugins.chat] agent` for a real one)"


def _words(text: str) -> int:
    return len(text.split())


class EchoBackend:
    """Answers every message with the message; the set-up advice in full the first
    time in a session, then as one line."""

    def __init__(self, shell: Any = None) -> None:
        self.shell = shell
        self.advised = False

    async def complete(self, call: AgentCall) -> AgentResponse:
        said = call.request.prompt.strip()
        first = said.splitlines()[0] if said else ""
        if len(first) > 200:
            first = first[:200] + "…"
        advice = SETUP if not self.advised else SHORT
        self.advised = True
        content = f"*(echo)* You said: {first}\n\n{advice}"
        prompt_words = sum(_words(str(m.get("content", ""))) for m in call.request.messages or [])
        usage = TokenUsage(
            input_tokens=prompt_words or _words(said),
            output_tokens=_words(content),
            total_tokens=(prompt_words or _words(said)) + _words(content),
        )
        return AgentResponse(
            agent=call.agent.name, content=content, usage=usage, model="echo", recorded=True
        )

    async def aclose(self) -> None:
        pass


__all__ = ["BACKEND", "SETUP", "SHORT", "EchoBackend"]
