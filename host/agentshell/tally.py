"""What a REPL session did, for the summary printed when it ends.

The runner adds every finished agent call (its usage, and its cost once a pricing
plugin has set ``response.cost_usd``); the REPL counts the commands. Nothing here
knows which plugin priced a call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .agents import AgentResponse


@dataclass
class SessionTally:
    started: float = field(default_factory=time.monotonic)
    commands: int = 0
    calls: int = 0
    tokens: int = 0
    cost_usd: float | None = None  # None until some call was priced

    def add_call(self, response: AgentResponse) -> None:
        self.calls += 1
        usage = response.usage
        self.tokens += usage.total_tokens or usage.input_tokens + usage.output_tokens
        if response.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + response.cost_usd

    def summary(self, now: float | None = None) -> str:
        """``session 3m 12s · 5 commands · 2 agent calls · 1,234 tokens · $0.0123``."""
        from .money import format_usd

        seconds = int((time.monotonic() if now is None else now) - self.started)
        minutes, secs = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        duration = (
            f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s" if minutes else f"{secs}s"
        )
        parts = [f"session {duration}", _count(self.commands, "command")]
        if self.calls:
            parts += [_count(self.calls, "agent call"), f"{self.tokens:,} tokens"]
        if self.cost_usd is not None:
            parts.append(format_usd(self.cost_usd))
        return " · ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'s' * (n != 1)}"


__all__ = ["SessionTally"]
