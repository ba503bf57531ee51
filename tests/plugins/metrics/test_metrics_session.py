"""SessionMetrics: the semantics ported from the source system, one test each (replays of
a resume are no loop, only the same call replayed again is), plus property tests of the
two invariants the estimate relies on."""

from __future__ import annotations

from hypothesis import given, strategies as st

from agentshell import TokenUsage
from speckit_metrics.session import DEFAULT_ESTIMATE, MAX_TOKENS, SessionMetrics


def u(inp: int = 0, cached: int = 0, out: int = 0, reasoning: int = 0) -> TokenUsage:
    return TokenUsage(
        input_tokens=inp,
        cached_input_tokens=cached,
        output_tokens=out,
        reasoning_output_tokens=reasoning,
        total_tokens=inp + out,
    )


def test_record_turn_tracks_totals_and_estimate() -> None:
    m = SessionMetrics()
    m.record_turn(u(1000, out=100))
    m.record_turn(u(4000, out=300, reasoning=50))
    assert m.running_total == u(5000, out=400, reasoning=50)
    assert m.last_turn == u(4000, out=300, reasoning=50)
    assert m.turn_count == 2
    assert m.estimated_next_prompt_tokens() == 2500
    assert m.blended_total() == 5400


def test_window_capacity_evicts_the_oldest() -> None:
    m = SessionMetrics(window=3)
    for n in (1000, 2000, 3000):
        m.record_turn(u(n))
    assert m.estimated_next_prompt_tokens() == 2000
    m.record_turn(u(6000))
    assert list(m.recent_prompt_tokens) == [2000, 3000, 6000]
    assert m.estimated_next_prompt_tokens() == 3666  # integer mean, truncated


def test_window_is_at_least_one() -> None:
    m = SessionMetrics(window=0)
    assert m.window == 1
    m.record_turn(u(100))
    m.record_turn(u(700))
    assert m.estimated_next_prompt_tokens() == 700


def test_cached_tokens_are_excluded_from_the_estimate_and_blended_total() -> None:
    m = SessionMetrics()
    m.record_turn(u(5000, cached=4000, out=10))
    assert m.estimated_next_prompt_tokens() == 1000
    assert m.blended_total() == 1010
    m.record_turn(u(3000, cached=3000))  # fully cached: not pushed into the window
    assert list(m.recent_prompt_tokens) == [1000]
    assert m.estimated_next_prompt_tokens() == 1000


def test_estimate_fallbacks() -> None:
    m = SessionMetrics()
    assert m.estimated_next_prompt_tokens() == DEFAULT_ESTIMATE == 4000
    m.sync_absolute(u(10), u(0), 1)
    assert m.estimated_next_prompt_tokens() == 4000
    m.record_turn(u(0, out=5))
    assert m.estimated_next_prompt_tokens() == 4000


def test_empty_window_falls_back_to_last_turn() -> None:
    m = SessionMetrics()
    # cached > input cannot come from a real backend, but non_cached never goes negative
    m.last_turn = u(900, cached=100)
    assert list(m.recent_prompt_tokens) == []
    assert m.estimated_next_prompt_tokens() == 800


def test_sync_absolute_resets_window() -> None:
    m = SessionMetrics()
    for n in (1000, 2000, 3000):
        m.record_turn(u(n))
    m.record_replay()
    m.record_duplicate_items(2)
    m.sync_absolute(u(50_000, cached=1000, out=900), u(8000, cached=2000), 12)
    assert m.running_total == u(50_000, cached=1000, out=900)
    assert m.last_turn == u(8000, cached=2000)
    assert m.turn_count == 12
    assert m.replay_updates == 0 and m.duplicate_items == 0
    assert list(m.recent_prompt_tokens) == [6000]
    assert m.estimated_next_prompt_tokens() == 6000


def test_record_replay_increments_counter() -> None:
    m = SessionMetrics()
    m.record_replay()
    m.record_replay()
    assert m.replay_updates == 2
    assert m.turn_count == 0 and m.running_total == TokenUsage()


def test_reset_clears_all_but_keeps_the_window() -> None:
    m = SessionMetrics(window=5)
    m.record_turn(u(1000, out=5))
    m.record_replay()
    m.record_duplicate_items(4)
    m.reset()
    assert (m.running_total, m.last_turn, m.turn_count) == (TokenUsage(), TokenUsage(), 0)
    assert (m.replay_updates, m.duplicate_items, list(m.recent_prompt_tokens)) == (0, 0, [])
    assert m.window == 5
    assert m.estimated_next_prompt_tokens() == 4000


def test_duplicate_tracking_ignores_zero() -> None:
    m = SessionMetrics()
    m.record_duplicate_items(0)
    assert m.duplicate_items == 0
    m.record_duplicate_items(2)
    m.record_duplicate_items(0)
    m.record_duplicate_items(1)
    assert m.duplicate_items == 3


def test_loop_warning_thresholds_and_priority() -> None:
    m = SessionMetrics()
    assert m.loop_warning() is None
    m.record_duplicate_items(2)
    assert m.loop_warning() is None
    m.record_duplicate_items(1)
    assert (m.loop_warning() or "").startswith("repetition")
    m.record_replay()
    assert (m.loop_warning() or "").startswith("repetition")
    m.record_replay()
    assert (m.loop_warning() or "").startswith("potential loop")  # replays take priority
    m.record_replay()
    assert (m.loop_warning() or "").startswith("potential loop")
    m.record_replay()
    assert (m.loop_warning() or "").startswith("loop detected")


def test_totals_saturate() -> None:
    m = SessionMetrics()
    m.sync_absolute(u(MAX_TOKENS - 5), u(0), 0)
    m.record_turn(u(100))
    assert m.running_total.input_tokens == MAX_TOKENS


usages = st.builds(
    u,
    inp=st.integers(0, 10**9),
    cached=st.integers(0, 10**9),
    out=st.integers(0, 10**9),
    reasoning=st.integers(0, 10**6),
)


@given(st.lists(usages, max_size=40))
def test_totals_never_decrease(turns: list[TokenUsage]) -> None:
    m = SessionMetrics()
    fields = list(TokenUsage.model_fields)
    for usage in turns:
        before = m.running_total
        m.record_turn(usage)
        assert all(getattr(m.running_total, f) >= getattr(before, f) for f in fields)
        assert m.blended_total() >= 0
    assert m.turn_count == len(turns)


@given(st.integers(1, 8), st.lists(usages, min_size=1, max_size=40))
def test_estimate_is_the_mean_of_the_last_k_nonzero_observations(
    k: int, turns: list[TokenUsage]
) -> None:
    m = SessionMetrics(window=k)
    for usage in turns:
        m.record_turn(usage)
    observed = [t.non_cached_input_tokens for t in turns if t.non_cached_input_tokens > 0][-k:]
    expected = sum(observed) // len(observed) if observed else 4000
    assert m.estimated_next_prompt_tokens() == expected


def test_distinct_replays_are_counted_but_are_no_loop() -> None:
    m = SessionMetrics()
    for i in range(19):  # a resume: every stored answer replayed once
        m.record_replay(f"agent{i % 3}:prompt{i}")
    assert m.replay_updates == 19
    assert m.loop_warning() is None


def test_the_same_call_replayed_again_is_a_loop() -> None:
    m = SessionMetrics()
    m.record_replay("claude:abc")
    m.record_replay("gemini:abc")  # same prompt, another agent: another call
    assert m.loop_warning() is None
    m.record_replay("claude:abc")
    assert m.loop_warning() is None  # one repeat
    m.record_replay("claude:abc")
    assert (m.loop_warning() or "").startswith("potential loop (2 repeated replays)")
    m.record_replay("claude:abc")
    m.record_replay("claude:abc")
    assert (m.loop_warning() or "").startswith("loop detected (4 repeated replays)")
    assert m.replay_updates == 6
    m.reset()
    assert m.loop_warning() is None and m.loop_replays == 0
    m.record_replay("claude:abc")
    assert m.loop_warning() is None  # the reset forgot what was replayed
