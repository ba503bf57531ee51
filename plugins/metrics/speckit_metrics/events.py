"""The metrics plugin's telemetry events: running token totals and budget alerts.
Neither maps to a span (they are totals, not operations)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agentshell.agents import TokenUsage
from agentshell.telemetry import Event


class MetricsTokens(Event):
    type: Literal["metrics.tokens"] = "metrics.tokens"
    spec_id: str | None = None
    stage: str | None = None
    total: TokenUsage = Field(default_factory=TokenUsage)
    last_turn: TokenUsage = Field(default_factory=TokenUsage)
    turn_count: int = 0
    estimated_next_prompt_tokens: int = 0
    cost_usd: float | None = None


class BudgetAlert(Event):
    type: Literal["metrics.budget_alert"] = "metrics.budget_alert"
    threshold_pct: int
    spent_usd: float
    budget_usd: float


__all__ = ["BudgetAlert", "MetricsTokens"]
