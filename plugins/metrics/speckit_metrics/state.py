"""The metrics plugin's per-session state, built at ``shell_started``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentshell.agents import TokenUsage

from .ledger import Ledger
from .pricing import PriceBook
from .session import SessionMetrics
from .settings import MetricsSettings

if TYPE_CHECKING:
    from agentshell import Shell

SECTION = "metrics"
StageId = tuple[str | None, str, str | None]  # spec_id, stage, trace_parent


@dataclass
class MetricsState:
    shell: Shell
    settings: MetricsSettings
    ledger: Ledger
    prices: PriceBook
    current_stage: StageId | None = None

    @classmethod
    def build(cls, shell: Shell) -> MetricsState:
        settings: MetricsSettings = shell.plugin_config(SECTION)
        ledger = Ledger(
            window=settings.estimate_window,
            budget_usd=settings.budget_usd,
            thresholds_pct=settings.alert_thresholds_pct,
        )
        prices = PriceBook(settings.prices, settings.context_windows, settings.provider)
        return cls(shell, settings, ledger, prices)

    def refresh(self) -> MetricsSettings:
        """Pick up ``/config reload``: a new settings object replaces budget and prices
        but keeps what was counted. An identity check, so it is free when unchanged."""
        settings = self.shell.plugin_config(SECTION)
        if settings is not self.settings and isinstance(settings, MetricsSettings):
            self.settings = settings
            self.ledger.budget_usd = settings.budget_usd
            self.ledger.thresholds = sorted({t for t in settings.alert_thresholds_pct if t > 0})
            self.prices = PriceBook(settings.prices, settings.context_windows, settings.provider)
        return self.settings


#: where :class:`SessionApi` is published for other plugins (a chat plugin)
SESSION_KEY = "metrics.session"


class SessionApi:
    """The session's :class:`~speckit_metrics.session.SessionMetrics`, for plugins that
    hold a conversation: published at ``shell.state["metrics.session"]``, so they reach
    it without importing this plugin. Every agent call is already charged (and its
    turn recorded) by ``after_agent_call``; these are the conversation's own facts."""

    def __init__(self, state: MetricsState) -> None:
        self._state = state

    @property
    def session(self) -> SessionMetrics:
        return self._state.ledger.session  # looked up each time: /metrics reset swaps it

    def record_replay(self, key: str | None = None) -> None:
        """An item already in the context was replayed into it (a resumed history)."""
        self.session.record_replay(key)

    def record_duplicate_items(self, count: int) -> None:
        """``count`` items were sent that the context already held."""
        self.session.record_duplicate_items(count)

    def sync_absolute(self, total: TokenUsage, last: TokenUsage, turn_count: int) -> None:
        """Adopt absolute totals from an authority (a resumed conversation's store)."""
        self.session.sync_absolute(total, last, turn_count)

    def estimated_next_prompt_tokens(self) -> int:
        return self.session.estimated_next_prompt_tokens()

    @property
    def turn_count(self) -> int:
        return self.session.turn_count

    @property
    def replay_updates(self) -> int:
        return self.session.replay_updates

    @property
    def duplicate_items(self) -> int:
        return self.session.duplicate_items

    def context_window(self, model: str) -> int | None:
        """The model's context window when known (configured table, genai-prices,
        built-in defaults), else None."""
        return self._state.prices.context_window(model)


def state_of(shell: Shell) -> MetricsState | None:
    st = shell.state.get(SECTION)
    return st if isinstance(st, MetricsState) else None


__all__ = ["SECTION", "SESSION_KEY", "MetricsState", "SessionApi", "StageId", "state_of"]
