"""SessionMetrics: running token totals, the last turn, and an estimate of the next prompt.

A port of the proven design, semantics kept exactly:

* ``record_turn`` adds to the running total (saturating, never negative), sets the last
  turn, counts the turn, and pushes the turn's *non-cached* input into a sliding window
  (zero is not pushed: a turn answered entirely from cache says nothing about the next
  prompt's size).
* ``estimated_next_prompt_tokens`` is the integer mean of the window; with an empty
  window, the last turn's non-cached input if above zero; else 4000.
* ``blended_total`` is non-cached input + output of the running total. The source system
  had two definitions (one counted cached input, one did not); cached input is cheap and
  does not grow the bill the way fresh input does, so it is left out here.
"""

from __future__ import annotations

from collections import Counter, deque

from agentshell.agents import TokenUsage

#: what the estimate falls back to before anything was observed
DEFAULT_ESTIMATE = 4000
#: totals saturate here instead of growing without bound (int64 max, what sinks store)
MAX_TOKENS = 2**63 - 1

POTENTIAL_LOOP_REPLAYS = 2
LOOP_DETECTED_REPLAYS = 4
REPETITION_DUPLICATES = 3


def _sat(value: int) -> int:
    return min(max(value, 0), MAX_TOKENS)


def saturating_add(a: TokenUsage, b: TokenUsage) -> TokenUsage:
    """``a + b`` field by field, clamped to ``[0, MAX_TOKENS]``."""
    return TokenUsage(
        input_tokens=_sat(a.input_tokens + b.input_tokens),
        cached_input_tokens=_sat(a.cached_input_tokens + b.cached_input_tokens),
        output_tokens=_sat(a.output_tokens + b.output_tokens),
        reasoning_output_tokens=_sat(a.reasoning_output_tokens + b.reasoning_output_tokens),
        total_tokens=_sat(a.total_tokens + b.total_tokens),
    )


class SessionMetrics:
    """Token bookkeeping of one session (or one stage). Not thread-safe: the shell
    records from its event loop only."""

    # The field names are the source system's (its SessionMetrics): running_total,
    # last_turn, turn_count, replay_updates, duplicate_items, recent_prompt_tokens (the
    # sliding window) and window (its capacity), so its documents read true here.

    def __init__(self, window: int = 3) -> None:
        #: how many recent prompts the estimate averages (at least one)
        self.window = max(1, int(window))
        #: the non-cached inputs the estimate is computed from, oldest first
        self.recent_prompt_tokens: deque[int] = deque(maxlen=self.window)
        self.running_total = TokenUsage()
        self.last_turn = TokenUsage()
        self.turn_count = 0
        self.replay_updates = 0
        self.duplicate_items = 0
        self._replayed: Counter[str] = Counter()  # replay key -> times replayed
        self.loop_replays = 0  # what the loop warning counts (see record_replay)

    def record_turn(self, usage: TokenUsage) -> None:
        self.running_total = saturating_add(self.running_total, usage)
        self.last_turn = usage
        self.turn_count = _sat(self.turn_count + 1)
        self._push(usage.non_cached_input_tokens)

    def _push(self, non_cached_input: int) -> None:
        if non_cached_input > 0:
            self.recent_prompt_tokens.append(non_cached_input)  # deque(maxlen) evicts the oldest

    def estimated_next_prompt_tokens(self) -> int:
        window = self.recent_prompt_tokens
        if window:
            return sum(window) // len(window)
        last = self.last_turn.non_cached_input_tokens
        return last if last > 0 else DEFAULT_ESTIMATE

    def blended_total(self) -> int:
        return _sat(self.running_total.non_cached_input_tokens + self.running_total.output_tokens)

    def record_replay(self, key: str | None = None) -> None:
        """Count a replayed turn. Every replay counts in ``replay_updates``; the loop
        warning counts a keyed replay (agent + prompt) only from the second time the
        SAME call is replayed: a resume replays each stored answer once, and that is
        expected, not a loop. A replay without a key counts as before."""
        self.replay_updates = _sat(self.replay_updates + 1)
        if key is None:
            self.loop_replays = _sat(self.loop_replays + 1)
            return
        self._replayed[key] += 1
        if self._replayed[key] > 1:
            self.loop_replays = _sat(self.loop_replays + 1)

    def record_duplicate_items(self, count: int) -> None:
        if count > 0:
            self.duplicate_items = _sat(self.duplicate_items + count)

    def sync_absolute(self, total: TokenUsage, last: TokenUsage, turn_count: int) -> None:
        """Adopt totals reported by an authority (a resumed session): overwrite, reset
        the replay and duplicate counters, and re-seed the window from ``last``."""
        self.running_total = total
        self.last_turn = last
        self.turn_count = _sat(turn_count)
        self.replay_updates = 0
        self.duplicate_items = 0
        self._replayed.clear()
        self.loop_replays = 0
        self.recent_prompt_tokens.clear()
        self._push(last.non_cached_input_tokens)

    def reset(self) -> None:
        """Forget everything except the window's capacity."""
        self.recent_prompt_tokens.clear()
        self.running_total = TokenUsage()
        self.last_turn = TokenUsage()
        self.turn_count = 0
        self.replay_updates = 0
        self.duplicate_items = 0
        self._replayed.clear()
        self.loop_replays = 0

    def loop_warning(self) -> str | None:
        """A warning when the session looks stuck; replay warnings take priority."""
        if self.loop_replays >= LOOP_DETECTED_REPLAYS:
            return f"loop detected ({self.loop_replays} repeated replays)"
        if self.loop_replays >= POTENTIAL_LOOP_REPLAYS:
            return f"potential loop ({self.loop_replays} repeated replays)"
        if self.duplicate_items >= REPETITION_DUPLICATES:
            return f"repetition ({self.duplicate_items} duplicate items)"
        return None


__all__ = ["DEFAULT_ESTIMATE", "MAX_TOKENS", "SessionMetrics", "saturating_add"]
