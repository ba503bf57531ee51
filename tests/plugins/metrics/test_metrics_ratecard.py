"""The memoised genai-prices lookup gives exactly what ``genai_prices.calc_price`` gives.

The memo keeps the model match and each model's rate card; the cost is still computed
from every call's own usage, the tier from its own input tokens, and the date-dependent
price for the request time. Every comparison here is against the package's own
``calc_price`` at the same (pinned) request time, with the real price data.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from genai_prices import Usage, calc_price
from genai_prices.data_snapshot import get_snapshot

from agentshell import TokenUsage
from speckit_metrics.pricing import PriceBook, genai_price
from speckit_metrics.ratecard import GenaiPrices, build_card, uncached_price

SHAPES = [
    (0, 0, 0),
    (1_000, 0, 100),
    (12_000, 2_000, 3_000),  # cached input
    (5_000, 5_000, 1),  # all input cached
    (300_000, 120_000, 20_000),  # above 200k/272k tiers
]
PEAK = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # deepseek's standard hours
OFF_PEAK = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)


def usage(inp: int, cached: int = 0, out: int = 0) -> TokenUsage:
    return TokenUsage(
        input_tokens=inp, cached_input_tokens=cached, output_tokens=out, total_tokens=inp + out
    )


def has_card(model: str, provider: str, when: datetime) -> bool:
    """Whether the fast path applies (else the comparison would be calc_price to itself)."""
    result = calc_price(
        Usage(input_tokens=1), model_ref=model, provider_id=provider, genai_request_timestamp=when
    )
    return build_card(result.model_price) is not None


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("gpt-4o", "openai"),
        ("gpt-4o-mini", "openai"),
        ("o3", "openai"),
        ("claude-sonnet-4-5", "anthropic"),
        ("gemini-2.5-pro", "google"),  # tiered at 200k input tokens
        ("gpt-5.6-sol", "openai"),  # tiered at 272k and a dated price change
        ("deepseek-chat", "deepseek"),  # off-peak prices
    ],
)
@pytest.mark.parametrize("when", [PEAK, OFF_PEAK])
def test_cached_price_equals_calc_price(model: str, provider: str, when: datetime) -> None:
    assert has_card(model, provider, when)
    prices = GenaiPrices(now=lambda: when)
    for inp, cached, out in SHAPES * 2:  # the second round is served from the memo
        u = usage(inp, cached, out)
        expected = calc_price(
            Usage(input_tokens=inp, cache_read_tokens=cached, output_tokens=out),
            model_ref=model,
            provider_id=provider,
            genai_request_timestamp=when,
        ).total_price
        assert prices.price(u, model, provider) == float(expected), (inp, cached, out)


def test_the_tier_follows_each_calls_own_input_tokens() -> None:
    prices = GenaiPrices(now=lambda: PEAK)
    below = prices.price(usage(200_000, out=1_000_000), "gemini-2.5-pro", "google")
    above = prices.price(usage(200_001, out=1_000_000), "gemini-2.5-pro", "google")
    again = prices.price(usage(200_000, out=1_000_000), "gemini-2.5-pro", "google")
    assert below is not None and above is not None
    assert above > below * 1.4  # the higher tier applies to all tokens past 200k input
    assert again == below  # the first large call did not pin the tier


def test_date_and_time_dependent_prices_follow_the_request_time() -> None:
    when = [datetime(2025, 6, 9, 12, 0, tzinfo=UTC)]
    prices = GenaiPrices(now=lambda: when[0])
    u = usage(1_000_000, out=1_000_000)
    before = prices.price(u, "o3", "openai")
    when[0] = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)  # o3's price cut
    after = prices.price(u, "o3", "openai")
    assert before is not None and after is not None and after < before
    assert before == uncached_price(u, "o3", "openai", datetime(2025, 6, 9, 12, 0, tzinfo=UTC))
    assert after == uncached_price(u, "o3", "openai", when[0])

    when[0] = PEAK
    peak = prices.price(u, "deepseek-chat", "deepseek")
    when[0] = OFF_PEAK
    off_peak = prices.price(u, "deepseek-chat", "deepseek")
    assert peak is not None and off_peak is not None and off_peak < peak
    assert off_peak == uncached_price(u, "deepseek-chat", "deepseek", OFF_PEAK)


def test_cached_input_without_a_cache_price_is_billed_as_input() -> None:
    when = datetime(2026, 10, 1, tzinfo=UTC)  # gpt-5.5-cyber had no cache price yet
    assert has_card("gpt-5.5-cyber", "openai", when)
    prices = GenaiPrices(now=lambda: when)
    all_cached = prices.price(usage(1_000_000, cached=1_000_000), "gpt-5.5-cyber", "openai")
    none_cached = prices.price(usage(1_000_000), "gpt-5.5-cyber", "openai")
    assert all_cached is not None and all_cached > 0
    assert all_cached == none_cached
    assert all_cached == uncached_price(
        usage(1_000_000, cached=1_000_000), "gpt-5.5-cyber", "openai", when
    )


def test_a_model_with_prices_a_card_cannot_apply_uses_calc_price() -> None:
    # audio prices: our usage has no audio count, so the package prices it every time
    assert not has_card("gemini-3-flash-preview", "google", PEAK)
    prices = GenaiPrices(now=lambda: PEAK)
    for inp, cached, out in SHAPES * 2:
        u = usage(inp, cached, out)
        assert prices.price(u, "gemini-3-flash-preview", "google") == uncached_price(
            u, "gemini-3-flash-preview", "google", PEAK
        )


def test_every_model_in_the_price_data() -> None:
    """Memo == calc_price for every model genai-prices knows, at one pinned time."""
    prices = GenaiPrices(now=lambda: PEAK)
    carded = 0
    for provider in get_snapshot().providers:
        for model in provider.models:
            for shape in ((12_000, 2_000, 3_000), (300_000, 120_000, 20_000)):
                u = usage(*shape)
                first = prices.price(u, model.id, provider.id)
                memo = prices.price(u, model.id, provider.id)
                reference = uncached_price(u, model.id, provider.id, PEAK)
                assert first == memo == reference, (provider.id, model.id, shape)
            carded += build_card(model.get_prices(PEAK)) is not None
    assert carded > 1000  # the fast path is the common case, not the exception


def test_price_book_uses_the_memo_and_keeps_unknown_models_unknown() -> None:
    book = PriceBook()
    u = usage(12_000, 2_000, 3_000)
    for _ in range(3):
        cost, priced_as = book.cost(u, ["gpt-4o"])
        # genai_price is the uncached reference (calc_price on every call)
        assert (cost, priced_as) == (genai_price(u, "gpt-4o"), "gpt-4o")
        assert book.cost(u, ["no-such-model-xyz"]) == (None, "")
        assert book.cost(u, ["no-such-model-xyz", "gpt-4o-mini"]) == (
            genai_price(u, "gpt-4o-mini"),
            "gpt-4o-mini",
        )
    assert book.cost(usage(0), ["no-such-model-xyz"])[0] is None  # not $0


def test_new_price_data_drops_the_memo() -> None:
    """After ``UpdatePrices`` swaps the snapshot, nothing from the old one is reused."""
    import copy
    from decimal import Decimal

    from genai_prices.data_snapshot import DataSnapshot, set_custom_snapshot

    prices = GenaiPrices(now=lambda: PEAK)
    u = usage(1_000_000)
    original = prices.price(u, "gpt-4o", "openai")
    assert original is not None and original == uncached_price(u, "gpt-4o", "openai", PEAK)
    providers = copy.deepcopy(get_snapshot().providers)
    openai = next(p for p in providers if p.id == "openai")
    model = next(m for m in openai.models if m.id == "gpt-4o")
    model_price = model.get_prices(PEAK)
    vars(model_price)["input_mtok"] = Decimal(str(original)) * 3
    set_custom_snapshot(DataSnapshot(providers=providers, from_auto_update=True))
    try:
        assert prices.price(u, "gpt-4o", "openai") == original * 3
    finally:
        set_custom_snapshot(None)
    assert prices.price(u, "gpt-4o", "openai") == original
