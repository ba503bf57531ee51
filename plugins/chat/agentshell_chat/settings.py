"""The ``[plugins.chat]`` configuration section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: the offline agent plain text goes to when no chat agent is configured
ECHO_AGENT = "echo"


class ChatSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: the agent (an ``[agents.<name>]``) plain text goes to; none: the offline echo agent
    agent: str | None = None
    #: a system message sent first in every conversation
    system: str | None = None
    #: the context window when neither genai-prices nor [plugins.metrics]
    #: context_windows knows the model
    context_tokens: int = Field(default=128_000, gt=0)
    #: warn (once per conversation) when the next prompt passes this share of the window
    warn_at_pct: int = Field(default=80, gt=0, le=100)


__all__ = ["ECHO_AGENT", "ChatSettings"]
