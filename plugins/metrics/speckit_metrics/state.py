"""The metrics plugin's per-session state, built at ``shell_started``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .ledger import Ledger
from .pricing import PriceBook
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


def state_of(shell: Shell) -> MetricsState | None:
    st = shell.state.get(SECTION)
    return st if isinstance(st, MetricsState) else None


__all__ = ["SECTION", "MetricsState", "StageId", "state_of"]
