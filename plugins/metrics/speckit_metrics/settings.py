"""``[plugins.metrics]``: budget, price overrides and context windows."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PriceOverride(BaseModel):
    """USD per million tokens for one model. Cached input defaults to the input price."""

    model_config = ConfigDict(extra="forbid")

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cached_input_per_mtok: float | None = Field(default=None, ge=0)


class MetricsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    budget_usd: float = Field(default=2.0, ge=0)
    #: refuse further agent calls once the budget is spent (halts /spec-auto)
    halt_on_budget: bool = False
    #: budget alerts, in percent of budget_usd, each shown once per session
    alert_thresholds_pct: list[int] = Field(default_factory=lambda: [80, 90, 100])
    #: how many recent turns the next-prompt estimate averages
    estimate_window: int = Field(default=3, ge=1)
    #: model -> prices, checked before genai-prices (for models it does not know)
    prices: dict[str, PriceOverride] = Field(default_factory=dict)
    #: model -> context window in tokens, checked before the built-in defaults
    context_windows: dict[str, int] = Field(default_factory=dict)
    #: provider id given to genai-prices when an agent does not set options.provider
    provider: str | None = None
