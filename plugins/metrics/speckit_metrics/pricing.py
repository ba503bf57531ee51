"""What one call cost, from its own usage and its own model.

Prices come from the ``[plugins.metrics.prices]`` override table first, then from
``genai-prices`` (Pydantic's maintained price data). A model neither knows has no price
(``None``, shown as "price unknown"), never a silent 0. ``genai_prices`` is imported on
first use (it parses a large data snapshot): start-up must not pay for it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from agentshell.agents import TokenUsage

from .ratecard import GenaiPrices
from .settings import PriceOverride

#: context windows for common model families, longest prefix wins; genai-prices'
#: own figure is used when it knows the model and the table does not
DEFAULT_CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4-turbo": 128_000,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "gpt-5": 400_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "claude": 200_000,
    "gemini-1.5": 1_048_576,
    "gemini-2": 1_048_576,
    "gemini": 1_048_576,
}

_MTOK = 1_000_000


def _override_cost(price: PriceOverride, usage: TokenUsage) -> float:
    cached_rate = (
        price.input_per_mtok
        if price.cached_input_per_mtok is None
        else (price.cached_input_per_mtok)
    )
    return (
        usage.non_cached_input_tokens * price.input_per_mtok
        + min(usage.cached_input_tokens, usage.input_tokens) * cached_rate
        + usage.output_tokens * price.output_per_mtok
    ) / _MTOK


def genai_price(usage: TokenUsage, model: str, provider: str | None = None) -> float | None:
    """genai-prices' price of ``usage`` on ``model`` in USD, or None when unknown,
    computed by the package itself (uncached; :class:`PriceBook` uses the memo)."""
    from .ratecard import uncached_price

    return uncached_price(usage, model, provider)


def _genai_context_window(model: str, provider: str | None) -> int | None:
    from genai_prices import Usage, calc_price

    try:
        result = calc_price(Usage(input_tokens=0), model_ref=model, provider_id=provider)
    except LookupError:
        return None
    window = getattr(result.model, "context_window", None)
    return window if isinstance(window, int) and window > 0 else None


class PriceBook:
    """Prices and context windows by model, memoised (lookups happen once per model;
    each call's cost is still computed from its own usage, see ratecard.py)."""

    def __init__(
        self,
        overrides: Mapping[str, PriceOverride] | None = None,
        context_windows: Mapping[str, int] | None = None,
        provider: str | None = None,
    ) -> None:
        self.overrides = dict(overrides or {})
        self.context_windows = dict(context_windows or {})
        self.provider = provider
        self._known: dict[tuple[str, str | None], bool] = {}
        self._genai = GenaiPrices()  # the model's rates, matched once per model
        self._windows: dict[str, int | None] = {}
        self._warm: threading.Thread | None = None

    def warm_up(self) -> None:
        """Import genai-prices on a background thread, so the first charge, usually
        made while the first call is waiting on the network, does not stall the loop."""
        if self._warm is None:
            self._warm = threading.Thread(target=_import_prices, name="metrics-prices", daemon=True)
            self._warm.start()

    def cost(
        self, usage: TokenUsage, models: Iterable[str], provider: str | None = None
    ) -> tuple[float | None, str]:
        """``(usd, priced_as)`` for the first of ``models`` with a known price; the
        override table wins over genai-prices. ``(None, "")`` when none is known."""
        candidates = [m for m in dict.fromkeys(models) if m]
        for model in candidates:
            price = self.overrides.get(model)
            if price is not None:
                return _override_cost(price, usage), model
        provider = provider or self.provider
        for model in candidates:
            key = (model, provider)
            if self._known.get(key) is False:
                continue
            usd = self._genai.price(usage, model, provider)
            self._known[key] = usd is not None
            if usd is not None:
                return usd, model
        return None, ""

    def context_window(self, model: str, provider: str | None = None) -> int | None:
        """The model's context window: the configured table, genai-prices' data, then
        the built-in defaults (longest prefix). None when nothing knows the model."""
        if not model:
            return None
        if model in self.context_windows:
            return self.context_windows[model]
        if model not in self._windows:
            window = _genai_context_window(model, provider or self.provider)
            if window is None:
                prefixes = [p for p in DEFAULT_CONTEXT_WINDOWS if model.startswith(p)]
                window = DEFAULT_CONTEXT_WINDOWS[max(prefixes, key=len)] if prefixes else None
            self._windows[model] = window
        return self._windows[model]


def _import_prices() -> None:
    try:
        import genai_prices.data_snapshot as snapshot

        snapshot.get_snapshot()
    except Exception:  # pricing then reports the error at first use
        pass


__all__ = ["DEFAULT_CONTEXT_WINDOWS", "PriceBook", "genai_price"]
