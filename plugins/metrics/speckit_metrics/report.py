"""/metrics: the session, per agent and per stage, as rich tables or JSON."""

from __future__ import annotations

from typing import Any

from .ledger import Ledger, Tally, format_cost, tokens_of, usd
from .pricing import PriceBook
from .session import DEFAULT_ESTIMATE, SessionMetrics


def human(n: int) -> str:
    """12345 -> "12.3k"; short enough for the toolbar."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1_000:
        return f"{n / 1_000:.1f}k"
    return str(n)


def utilisation(tally: Tally, prices: PriceBook) -> float | None:
    """How full the agent's context was on its latest turn: that turn's blended total
    (non-cached input + output) over the model's context window."""
    window = prices.context_window(tally.model)
    if not window or tally.calls == 0:
        return None
    last = tally.last_usage
    return (last.non_cached_input_tokens + last.output_tokens) / window


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{value * 100:.1f}%"


def _calls(t: Tally) -> str:
    """ "3", or "3 (+1 replayed, 1 failed, 1 cancelled)" when there is more to say."""
    extra = [f"+{t.replays} replayed"] if t.replays else []
    extra += [f"{t.failures} failed"] if t.failures else []
    extra += [f"{t.cancelled} cancelled"] if t.cancelled else []
    return f"{t.calls} ({', '.join(extra)})" if extra else str(t.calls)


def _estimate(m: SessionMetrics) -> str:
    """The next-prompt estimate, marked "(default)" until a turn was seen."""
    value = m.estimated_next_prompt_tokens()
    return f"{value:,}" if m.turn_count else f"{DEFAULT_ESTIMATE:,} (default)"


def _cost(t: Tally) -> str:
    return t.cost_text() if t.calls else ("$0.00" if t.replays else "-")


def _budget(ledger: Ledger) -> str:
    if ledger.budget_usd <= 0:
        return f"{usd(ledger.spent_usd)} spent; no budget (budget_usd = 0)"
    pct = ledger.spent_usd / ledger.budget_usd * 100
    return f"{usd(ledger.spent_usd)} of {usd(ledger.budget_usd, 2)} ({pct:.0f}%)" + (
        " — EXCEEDED" if ledger.over_budget else ""
    )


def metrics_dict(m: SessionMetrics) -> dict[str, Any]:
    return {
        "running_total": m.running_total.model_dump(),
        "last_turn": m.last_turn.model_dump(),
        "turn_count": m.turn_count,
        "replay_updates": m.replay_updates,
        "duplicate_items": m.duplicate_items,
        "blended_total": m.blended_total(),
        "estimated_next_prompt_tokens": m.estimated_next_prompt_tokens(),
        "loop_warning": m.loop_warning(),
    }


def as_json(ledger: Ledger, prices: PriceBook) -> dict[str, Any]:
    def tally(t: Tally) -> dict[str, Any]:
        return {**t.as_dict(), "context_utilisation": utilisation(t, prices)}

    return {
        "session": {**metrics_dict(ledger.session), **tally(ledger.total)},
        "budget": {
            "budget_usd": ledger.budget_usd,
            "spent_usd": ledger.spent_usd,
            "alerts_shown_pct": sorted(ledger.alerted),
            "exceeded": ledger.over_budget,
        },
        "agents": {name: tally(t) for name, t in sorted(ledger.agents.items())},
        "stages": [
            {
                "spec_id": spec_id or None,
                "stage": stage,
                **metrics_dict(book.metrics),
                **tally(book.total),
                "agents": {name: tally(t) for name, t in sorted(book.agents.items())},
            }
            for (spec_id, stage), book in ledger.stages.items()
        ],
    }


def render(out: Any, ledger: Ledger, prices: PriceBook) -> None:
    s = ledger.session
    t = ledger.total
    running = s.running_total
    extra = [f"{t.recorded:,} recorded"] if t.recorded else []
    extra += [f"+{s.replay_updates:,} replayed"] if s.replay_updates else []
    rows = [
        ("turns", f"{s.turn_count:,}" + (f" ({', '.join(extra)})" if extra else "")),
        ("tokens", f"{tokens_of(s.running_total):,}"),
        ("input (cached)", f"{running.input_tokens:,} ({running.cached_input_tokens:,})"),
        ("output (reasoning)", f"{running.output_tokens:,} ({running.reasoning_output_tokens:,})"),
        ("blended total", f"{s.blended_total():,}"),
        ("est. next prompt", _estimate(s)),
        ("cost", t.cost_text() if t.calls else "$0.00"),
        ("budget", _budget(ledger)),
    ]
    if s.loop_warning():
        rows.append(("warning", s.loop_warning() or ""))
    out.table(["metric", "value"], rows, title="Session")
    columns = ["agent", "model", "calls", "input (cached)", "output", "cost", "context"]

    def agent_row(name: str, a: Tally) -> tuple[Any, ...]:
        return (
            name,
            a.model,
            _calls(a),
            f"{human(a.usage.input_tokens)} ({human(a.usage.cached_input_tokens)})",
            human(a.usage.output_tokens),
            _cost(a),
            _pct(utilisation(a, prices)),
        )

    if ledger.agents:
        out.table(
            columns,
            [agent_row(n, a) for n, a in sorted(ledger.agents.items())],
            title="Per agent",
            optional=["model", "context"],  # left out, last first, when narrow
        )
    if ledger.stages:
        stage_rows: list[tuple[Any, ...]] = []
        for (spec_id, stage), book in ledger.stages.items():
            label = f"{spec_id} {stage}".strip()
            total = book.total
            stage_rows.append(
                (
                    label,
                    "(all)",
                    _calls(total),
                    human(tokens_of(total.usage)),
                    _cost(total),
                    _estimate(book.metrics),
                )
            )
            for name, a in sorted(book.agents.items()):
                stage_rows.append(
                    (
                        "",
                        name,
                        _calls(a),
                        human(tokens_of(a.usage)),
                        _cost(a),
                        "",
                    )
                )
        out.table(
            ["spec / stage", "agent", "calls", "tokens", "cost", "est. next"],
            stage_rows,
            title="Per stage",
            optional=["est. next"],
        )


__all__ = [
    "as_json",
    "format_cost",
    "human",
    "metrics_dict",
    "render",
    "usd",
    "utilisation",
]
