"""genai-prices' prices, looked up once per (model, provider) instead of per call.

``calc_price`` spends ~190 µs per call, nearly all of it decomposing a generic usage
object into priced units. Our usage always has the same shape (input, cached input,
output), so once the model is matched we apply its rates directly: a few Decimal
multiplications, with the same arithmetic as genai-prices (``rate * count / per``,
summed in the package's order), so the result is equal, not just close.

What is cached, and why that is safe:

* the model match (``PriceCalculation.model``): a pure function of the name and the
  provider, which genai-prices caches itself too;
* one card per ``ModelPrice`` object. Which ``ModelPrice`` applies is asked again on
  every call (``ModelInfo.get_prices(now)``), so a price with a start date or an
  off-peak window switches exactly when the package would switch it;
* tiers are not resolved in advance: the tier is chosen from each call's own input
  tokens, as genai-prices does (a threshold on total input that applies to all tokens).

A model with any price our usage shape cannot map exactly (audio, images, characters,
durations, reasoning or citation tokens, ...) gets no card and is priced by
``calc_price`` on every call. If the price data is swapped (``UpdatePrices``), every
cached entry is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from agentshell.agents import TokenUsage

_MTOK = 1_000_000
#: the prices a card applies: (price key, which count of our usage, per how many)
_APPLIED = {
    "input_mtok": ("input", _MTOK),
    "cache_read_mtok": ("cache_read", _MTOK),
    "output_mtok": ("output", _MTOK),
    "requests_kcount": ("request", 1000),
}
#: prices of units our usage never has (count 0 whatever the other counts are); they
#: add nothing and do not change how input tokens split
_ALWAYS_ZERO = frozenset(
    {
        "cache_write_mtok",
        "cache_write_5m_mtok",
        "cache_write_1h_mtok",
        "web_searches_kcount",
        "social_searches_kcount",
        "storage_searches_kcount",
        "code_executions_kcount",
    }
)


@dataclass(frozen=True)
class RateCard:
    """The applied prices of one ``ModelPrice``, in genai-prices' summation order."""

    rates: tuple[tuple[str, Any, int], ...]  # (count name, Decimal | TieredPrices, per)
    prices_cache_reads: bool  # else cached input is billed as plain input
    tiered: bool

    def price(self, usage: TokenUsage) -> float:
        from genai_prices.types import TieredPrices

        cached = min(usage.cached_input_tokens, usage.input_tokens)
        counts = {
            "input": usage.input_tokens - cached if self.prices_cache_reads else usage.input_tokens,
            "cache_read": cached,
            "output": usage.output_tokens,
            "request": 1,
        }
        total_input = usage.input_tokens if self.tiered else 0
        total = Decimal(0)
        for name, rate, per in self.rates:
            applicable = rate
            if isinstance(rate, TieredPrices):
                applicable = rate.base
                for tier in reversed(rate.tiers):
                    if total_input > tier.start:
                        applicable = tier.price
                        break
            total += applicable * Decimal(counts[name]) / per
        return float(total)


def build_card(model_price: Any) -> RateCard | None:
    """The card for a genai-prices ``ModelPrice``, or None when it has a price that a
    card cannot apply exactly."""
    from genai_prices.types import TieredPrices

    rates: list[tuple[str, Any, int]] = []
    for key, value in vars(model_price).items():
        if key.startswith("_") or value is None or key in _ALWAYS_ZERO:
            continue
        applied = _APPLIED.get(key)
        if applied is None or not isinstance(value, Decimal | TieredPrices):
            return None
        rates.append((applied[0], value, applied[1]))
    priced = {name for name, _, _ in rates}
    return RateCard(
        rates=tuple(rates),
        prices_cache_reads="cache_read" in priced,
        tiered=any(isinstance(rate, TieredPrices) for _, rate, _ in rates),
    )


class GenaiPrices:
    """Per-(model, provider) memo in front of ``genai_prices.calc_price``."""

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        #: the request time prices are chosen for (injectable for tests)
        self.now = now or (lambda: datetime.now(tz=UTC))
        self._snapshot: object | None = None
        self._models: dict[tuple[str, str | None], Any] = {}  # -> genai ModelInfo
        self._cards: dict[int, tuple[Any, RateCard | None]] = {}  # id(ModelPrice) ->

    def price(self, usage: TokenUsage, model: str, provider: str | None) -> float | None:
        """USD for ``usage`` on ``model``; None when genai-prices does not know it."""
        from genai_prices.data_snapshot import get_snapshot

        snapshot = get_snapshot()
        if snapshot is not self._snapshot:  # new price data: nothing cached still holds
            self._snapshot = snapshot
            self._models.clear()
            self._cards.clear()
        when = self.now()
        info = self._models.get((model, provider))
        if info is None:
            return self._first(usage, model, provider, when)
        try:
            model_price = info.get_prices(when)
            entry = self._cards.get(id(model_price))
            if entry is None or entry[0] is not model_price:
                entry = (model_price, build_card(model_price))
                self._cards[id(model_price)] = entry  # holds model_price: its id stays its
            card = entry[1]
            if card is not None:
                return card.price(usage)
        except Exception:  # odd price data: let the package decide, as without the memo
            pass
        return uncached_price(usage, model, provider, when)

    def _first(
        self, usage: TokenUsage, model: str, provider: str | None, when: datetime
    ) -> float | None:
        result = _calc(usage, model, provider, when)
        if result is None:
            return None
        self._models[(model, provider)] = result.model
        return float(result.total_price)


def _calc(usage: TokenUsage, model: str, provider: str | None, when: datetime | None) -> Any:
    from genai_prices import Usage, calc_price

    try:
        return calc_price(
            Usage(
                input_tokens=usage.input_tokens,
                cache_read_tokens=min(usage.cached_input_tokens, usage.input_tokens),
                output_tokens=usage.output_tokens,
            ),
            model_ref=model,
            provider_id=provider,
            genai_request_timestamp=when,
        )
    except LookupError:  # the package does not know the model (or the provider)
        return None
    except Exception:  # a data problem must not fail the call: report it as unknown
        return None


def uncached_price(
    usage: TokenUsage, model: str, provider: str | None = None, when: datetime | None = None
) -> float | None:
    """genai-prices' own ``calc_price``, every time (the reference the cache must equal).

    Output tokens include reasoning tokens (the OpenAI accounting), so reasoning is
    not charged twice."""
    result = _calc(usage, model, provider, when)
    return None if result is None else float(result.total_price)


__all__ = ["GenaiPrices", "RateCard", "build_card", "uncached_price"]
