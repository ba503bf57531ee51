"""The session's books: tokens and cost per session, per agent and per spec/stage,
and the budget alerts. Pure bookkeeping: no I/O, no shell (the plugin prints and emits)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from agentshell import format_usd
from agentshell.agents import TokenUsage

from .session import SessionMetrics, saturating_add

StageKey = tuple[str, str]  # (spec_id or "", stage)


def tokens_of(usage: TokenUsage) -> int:
    """The usage's total, or input + output when the backend reported no total."""
    return usage.total_tokens or usage.input_tokens + usage.output_tokens


@dataclass
class Tally:
    """Calls, tokens and cost of one agent (or a group of calls)."""

    calls: int = 0
    replays: int = 0
    failures: int = 0
    cancelled: int = 0  # calls the user stopped: their own outcome, not failures
    usage: TokenUsage = field(default_factory=TokenUsage)
    last_usage: TokenUsage = field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    unpriced: int = 0  # live calls whose model has no known price
    recorded: int = 0  # recorded answers (replay backend): nothing to price
    model: str = ""

    def add(self, usage: TokenUsage, cost: float | None, model: str, recorded: bool) -> None:
        self.calls += 1
        self.usage = saturating_add(self.usage, usage)
        self.last_usage = usage
        self.model = model or self.model
        if recorded:
            self.recorded += 1
        elif cost is None:
            self.unpriced += 1
        else:
            self.cost_usd += cost

    @property
    def blended(self) -> int:
        return self.usage.non_cached_input_tokens + self.usage.output_tokens

    @property
    def known_cost(self) -> float | None:
        """The cost when every call has one: None with an unpriced call, and None when
        every call was a recording (nothing was priced; not a silent 0)."""
        if self.unpriced or (self.recorded and self.recorded == self.calls):
            return None
        return self.cost_usd

    def cost_text(self) -> str:
        return format_cost(self.cost_usd, self.unpriced, self.calls, self.recorded)

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "replays": self.replays,
            "failures": self.failures,
            "cancelled": self.cancelled,
            "recorded_calls": self.recorded,
            "usage": self.usage.model_dump(),
            "blended_total": self.blended,
            "cost_usd": self.known_cost,
            "priced_cost_usd": self.cost_usd,
            "unpriced_calls": self.unpriced,
            "model": self.model,
        }


#: the one money format (the host's, so the consensus stage line and /history match)
usd = format_usd


def format_cost(usd_amount: float, unpriced: int, calls: int, recorded: int = 0) -> str:
    """ "$0.0123", "price unknown", "$0.0123 + price unknown" for a mix, "recorded" when
    every call was a recorded answer, "$0.0123 (+recorded)" when some were."""
    live = calls - recorded
    if calls and not live:
        return "recorded"
    if unpriced and unpriced >= live:
        text = "price unknown"
    else:
        text = usd(usd_amount) + (" + price unknown" if unpriced else "")
    return f"{text} (+recorded)" if recorded else text


def toolbar_cost(tally: Tally) -> str:
    """The toolbar's cost: always an amount, so it reads the same from the first call
    ("$0.00 (+recorded)" in the demo, where every answer is a recording)."""
    live = tally.calls - tally.recorded
    if tally.unpriced and tally.unpriced >= live:
        text = "price unknown"
    else:
        text = usd(tally.cost_usd) + (" + price unknown" if tally.unpriced else "")
    return f"{text} (+recorded)" if tally.recorded else text


@dataclass
class StageBook:
    metrics: SessionMetrics
    total: Tally = field(default_factory=Tally)
    agents: dict[str, Tally] = field(default_factory=dict)


class Ledger:
    """Everything /metrics shows. ``charge`` returns the budget thresholds it crossed."""

    def __init__(
        self,
        *,
        window: int = 3,
        budget_usd: float = 2.0,
        thresholds_pct: list[int] | None = None,
    ) -> None:
        self.window = window
        self.session = SessionMetrics(window)
        self.total = Tally()
        self.agents: dict[str, Tally] = {}
        self.stages: OrderedDict[StageKey, StageBook] = OrderedDict()
        self.budget_usd = budget_usd
        self.thresholds = sorted({t for t in (thresholds_pct or [80, 90, 100]) if t > 0})
        self.alerted: set[int] = set()
        self._charged: OrderedDict[str, None] = OrderedDict()

    def stage(self, spec_id: str | None, stage: str) -> StageBook:
        key = (spec_id or "", stage)
        book = self.stages.get(key)
        if book is None:
            book = self.stages[key] = StageBook(SessionMetrics(self.window))
        return book

    def _first_time(self, call_id: str) -> bool:
        # after_agent_call fires once per call; this guards against a double report
        if call_id in self._charged:
            return False
        self._charged[call_id] = None
        if len(self._charged) > 100_000:
            self._charged.popitem(last=False)
        return True

    def charge(
        self,
        *,
        call_id: str,
        agent: str,
        usage: TokenUsage,
        cost: float | None,
        model: str,
        spec_id: str | None = None,
        stage: str | None = None,
        cached: bool = False,
        recorded: bool = False,
        replay_key: str | None = None,
    ) -> list[int]:
        """Book one finished call. A cached replay costs nothing and counts as a replay;
        a recorded answer counts its tokens and is counted as recorded, not priced."""
        if not self._first_time(call_id):
            return []
        books = [self.total, self.agents.setdefault(agent, Tally())]
        metrics = [self.session]
        if stage:
            book = self.stage(spec_id, stage)
            books += [book.total, book.agents.setdefault(agent, Tally())]
            metrics.append(book.metrics)
        for tally in books:
            if cached:
                tally.replays += 1
                tally.model = model or tally.model
            else:
                tally.add(usage, cost, model, recorded)
        for m in metrics:
            if cached:
                m.record_replay(replay_key)
            else:
                m.record_turn(usage)
        return self._crossed()

    def fail(
        self,
        agent: str,
        spec_id: str | None = None,
        stage: str | None = None,
        *,
        cancelled: bool = False,
    ) -> None:
        """Count a call that ended without an answer: a failure, or ``cancelled``."""
        tallies = [self.total, self.agents.setdefault(agent, Tally())]
        if stage:
            book = self.stage(spec_id, stage)
            tallies += [book.total, book.agents.setdefault(agent, Tally())]
        for tally in tallies:
            if cancelled:
                tally.cancelled += 1
            else:
                tally.failures += 1

    @property
    def spent_usd(self) -> float:
        return self.total.cost_usd

    @property
    def over_budget(self) -> bool:
        return self.budget_usd > 0 and self.spent_usd >= self.budget_usd

    def _crossed(self) -> list[int]:
        if self.budget_usd <= 0:
            return []
        pct = self.spent_usd / self.budget_usd * 100
        crossed = [t for t in self.thresholds if pct >= t and t not in self.alerted]
        self.alerted.update(crossed)
        return crossed

    def reset(self) -> None:
        self.__dict__.update(
            Ledger(
                window=self.window,
                budget_usd=self.budget_usd,
                thresholds_pct=self.thresholds,
            ).__dict__
        )


__all__ = [
    "Ledger",
    "StageBook",
    "StageKey",
    "Tally",
    "format_cost",
    "tokens_of",
    "toolbar_cost",
    "usd",
]
