"""Pricing and the ledger: per-call cost from the call's own model, the override table,
"price unknown" instead of 0, context windows, budget thresholds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price

from agentshell import TokenUsage
from speckit_metrics.ledger import Ledger, format_cost, usd
from speckit_metrics.pricing import PriceBook
from speckit_metrics.settings import PriceOverride


def usage(inp: int, cached: int = 0, out: int = 0) -> TokenUsage:
    return TokenUsage(
        input_tokens=inp, cached_input_tokens=cached, output_tokens=out, total_tokens=inp + out
    )


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini"])
def test_genai_prices_cost_matches_the_package(model: str) -> None:
    book = PriceBook()
    cost, priced_as = book.cost(usage(12_000, cached=2_000, out=3_000), [model])
    expected = calc_price(
        Usage(input_tokens=12_000, cache_read_tokens=2_000, output_tokens=3_000), model_ref=model
    ).total_price
    assert priced_as == model
    assert cost is not None
    assert Decimal(str(cost)) == expected.quantize(Decimal(str(cost)))
    assert cost == pytest.approx(float(expected))


def test_different_models_cost_differently() -> None:
    book = PriceBook()
    big, _ = book.cost(usage(10_000, out=1_000), ["gpt-4o"])
    small, _ = book.cost(usage(10_000, out=1_000), ["gpt-4o-mini"])
    assert big is not None and small is not None
    assert big > small * 5  # gpt-4o-mini is an order of magnitude cheaper


def test_override_table_wins_and_prices_cached_input() -> None:
    overrides = {
        "gpt-4o": PriceOverride(input_per_mtok=1.0, output_per_mtok=2.0, cached_input_per_mtok=0.5),
        "house-model": PriceOverride(input_per_mtok=3.0, output_per_mtok=6.0),
    }
    book = PriceBook(overrides)
    cost, _ = book.cost(usage(1_000_000, cached=400_000, out=1_000_000), ["gpt-4o"])
    assert cost == pytest.approx(0.6 * 1.0 + 0.4 * 0.5 + 2.0)
    cost, priced_as = book.cost(usage(2_000_000, cached=1_000_000, out=0), ["house-model"])
    assert cost == pytest.approx(6.0)  # cached input at the input rate
    assert priced_as == "house-model"


def test_unknown_model_has_no_price_not_zero() -> None:
    book = PriceBook()
    cost, priced_as = book.cost(usage(1000, out=10), ["no-such-model-xyz", ""])
    assert cost is None and priced_as == ""
    assert format_cost(0.0, unpriced=1, calls=1) == "price unknown"
    assert format_cost(0.5, unpriced=1, calls=3) == "$0.5000 + price unknown"
    assert format_cost(0.0, unpriced=0, calls=1) == "$0.00"  # priced, and it was free


def test_served_model_falls_back_to_configured_model() -> None:
    book = PriceBook()
    cost, priced_as = book.cost(usage(1000), ["served-alias-unknown", "gpt-4o-mini"])
    assert priced_as == "gpt-4o-mini" and cost is not None and cost > 0


def test_context_windows_config_then_package_then_defaults() -> None:
    book = PriceBook(context_windows={"gpt-4o": 1000})
    assert book.context_window("gpt-4o") == 1000
    assert book.context_window("gpt-4o-mini") == 128_000  # from genai-prices' data
    assert book.context_window("claude-unknown-variant-9") == 200_000  # built-in prefix
    assert book.context_window("mystery") is None


def test_ledger_books_each_call_once_and_replays_cost_nothing() -> None:
    ledger = Ledger(budget_usd=1.0)
    ledger.charge(
        call_id="a",
        agent="x",
        usage=usage(100, out=10),
        cost=0.25,
        model="m",
        spec_id="SPEC-1",
        stage="plan",
    )
    assert ledger.charge(call_id="a", agent="x", usage=usage(100), cost=0.25, model="m") == []
    ledger.charge(
        call_id="b",
        agent="x",
        usage=usage(100),
        cost=0.0,
        model="m",
        cached=True,
        spec_id="SPEC-1",
        stage="plan",
    )
    ledger.charge(call_id="c", agent="y", usage=usage(50), cost=None, model="?")
    assert ledger.spent_usd == 0.25
    assert ledger.agents["x"].calls == 1 and ledger.agents["x"].replays == 1
    assert ledger.session.turn_count == 2 and ledger.session.replay_updates == 1
    assert ledger.agents["y"].cost_text() == "price unknown"
    plan = ledger.stages[("SPEC-1", "plan")]
    assert plan.total.calls == 1 and plan.total.replays == 1
    assert plan.metrics.running_total == usage(100, out=10)


def test_budget_thresholds_cross_once_each() -> None:
    ledger = Ledger(budget_usd=1.0)

    def spend(call_id: str, usd: float) -> list[int]:
        return ledger.charge(call_id=call_id, agent="a", usage=usage(1), cost=usd, model="m")

    assert spend("1", 0.5) == []
    assert spend("2", 0.35) == [80]
    assert spend("3", 0.01) == []
    assert spend("4", 0.5) == [90, 100]
    assert spend("5", 0.5) == []
    assert ledger.over_budget
    ledger.reset()
    assert ledger.spent_usd == 0 and ledger.alerted == set() and ledger.budget_usd == 1.0


def test_recorded_answers_are_shown_as_recorded_not_as_zero() -> None:
    assert format_cost(0.0, unpriced=0, calls=2, recorded=2) == "recorded"
    assert format_cost(0.0123, unpriced=0, calls=3, recorded=1) == "$0.0123 (+recorded)"
    assert format_cost(0.0, unpriced=1, calls=2, recorded=1) == "price unknown (+recorded)"
    assert format_cost(0.5, unpriced=1, calls=3, recorded=1) == (
        "$0.5000 + price unknown (+recorded)"
    )


@pytest.mark.parametrize(
    ("amount", "decimals", "text"),
    [
        (0.001, 2, "$0.001"),  # was "$0.00": a budget of a tenth of a cent
        (0.0075, 4, "$0.0075"),
        (0.0001234, 4, "$0.0001234"),  # 4 significant digits under $0.10
        (0.00000005, 2, "$0.00000005"),
        (0.05, 2, "$0.05"),
        (2.0, 2, "$2.00"),
        (1.60123, 4, "$1.6012"),
        (0.0, 4, "$0.00"),
    ],
)
def test_small_amounts_keep_their_digits(amount: float, decimals: int, text: str) -> None:
    assert usd(amount, decimals) == text
