"""The chat plugin's telemetry events, and what each means for a trace.

One conversation is one trace; each turn a ``chat`` span under it, and the turn's
agent call (the host's ``agent.call.*`` events, whose context ``trace_parent`` is the
turn's key) under that::

    conversation 3f2a…            chat.conversation_started ... _ended (or session end)
    ├── chat gpt                  chat.turn_started ... chat.turn_finished
    │   └── chat gpt-4o           the agent call (the host maps it)
    └── chat gpt ...

Attributes follow the OpenTelemetry GenAI semantic conventions
(``gen_ai.operation.name``, ``gen_ai.conversation.id``, ``gen_ai.request.model``,
``gen_ai.usage.*``); message text is never an attribute.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from agentshell.agents import TokenUsage
from agentshell.telemetry import AttributeValue, EndSpan, Event, SpanOp, StartSpan


def conversation_key(conversation_id: str) -> str:
    return f"chat.conversation:{conversation_id}"


def turn_key(conversation_id: str, turn: int, nonce: str) -> str:
    return f"chat.turn:{conversation_id}:{turn}:{nonce}"


class ConversationStarted(Event):
    type: Literal["chat.conversation_started"] = "chat.conversation_started"
    conversation_id: str
    agent: str
    resumed: bool = False

    def span_ops(self) -> Sequence[SpanOp]:
        attributes: dict[str, AttributeValue | None] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.conversation.id": self.conversation_id,
            "gen_ai.agent.name": self.agent,
            "agentshell.chat.resumed": self.resumed,
        }
        return (
            StartSpan(
                key=conversation_key(self.conversation_id),
                name="conversation",
                attributes=attributes,
            ),
        )


class ConversationEnded(Event):
    type: Literal["chat.conversation_ended"] = "chat.conversation_ended"
    conversation_id: str
    turns: int = 0

    def span_ops(self) -> Sequence[SpanOp]:
        return (
            EndSpan(
                key=conversation_key(self.conversation_id),
                attributes={"agentshell.chat.turns": self.turns},
            ),
        )


class ChatTurnStarted(Event):
    type: Literal["chat.turn_started"] = "chat.turn_started"
    conversation_id: str
    branch_id: str
    turn: int
    agent: str
    model: str = ""
    key: str

    def span_ops(self) -> Sequence[SpanOp]:
        attributes: dict[str, AttributeValue | None] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.conversation.id": self.conversation_id,
            "gen_ai.agent.name": self.agent,
            "gen_ai.request.model": self.model or None,
            "agentshell.chat.turn": self.turn,
            "agentshell.chat.branch_id": self.branch_id,
        }
        return (
            StartSpan(
                key=self.key,
                name=f"chat {self.agent}",
                parent=conversation_key(self.conversation_id),
                attributes=attributes,
            ),
        )


class ChatTurnFinished(Event):
    type: Literal["chat.turn_finished"] = "chat.turn_finished"
    conversation_id: str
    turn: int
    key: str
    status: Literal["ok", "cancelled", "failed"]
    usage: TokenUsage | None = None
    response_model: str | None = None
    cost_usd: float | None = None
    error: str | None = None

    def span_ops(self) -> Sequence[SpanOp]:
        usage = self.usage or TokenUsage()
        attributes: dict[str, AttributeValue | None] = {
            "gen_ai.response.model": self.response_model,
            "gen_ai.usage.input_tokens": usage.input_tokens,
            "gen_ai.usage.output_tokens": usage.output_tokens,
            "agentshell.chat.status": self.status,
            "agentshell.cost_usd": self.cost_usd,
        }
        error = self.error if self.status == "failed" else None
        return (EndSpan(key=self.key, attributes=attributes, error=error),)


__all__ = [
    "ChatTurnFinished",
    "ChatTurnStarted",
    "ConversationEnded",
    "ConversationStarted",
    "conversation_key",
    "turn_key",
]
