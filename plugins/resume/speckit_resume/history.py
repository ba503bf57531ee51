"""``/history``: the runs of a spec, newest first, with what each one cost."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentshell import format_usd
from agentshell.commands import CommandContext

if TYPE_CHECKING:
    from .models import RunRow
from .commands import RUN_ID_LEN, _known_spec, _plural, _service, _spec, _when


async def history_cmd(ctx: CommandContext) -> int:
    spec_id = _spec(ctx.args.spec_id)
    store = _service(ctx).store
    _known_spec(ctx, store, spec_id, "history")
    runs = store.runs(spec_id)
    errors = store.run_errors(spec_id)
    if ctx.args.json:
        ctx.out.json(
            {
                "spec_id": spec_id,
                "runs": [r.model_dump() for r in runs],
                "errors": [dict(e) for e in errors],
            }
        )
        return 0
    if not runs:
        ctx.out.info(f"no runs of {spec_id} yet")
        return 0
    rows = [
        [
            r.run_id[:RUN_ID_LEN],
            "…" + r.branch_id[-8:],
            _when(r.started_at)[5:],
            r.status + (" (resumed)" if r.resumed else ""),
            r.calls,  # as --json counts them: the failed ones included (and shown apart)
            r.replayed,
            r.errors,
            # what the stage lines showed: fresh and replayed answers alike
            f"{r.tokens + r.replayed_tokens:,}",
            _cost(r),
        ]
        for r in runs
    ]
    ctx.out.table(
        ["run", "branch", "started", "status", "calls", "replayed", "failed", "tokens", "cost"],
        rows,
        title=f"{spec_id}: runs",
        wrap=["status"],  # "cancelled (resumed)" wraps at its space first
        # left out, last first, when narrow: at 80 columns branch and replayed (the
        # resume reuse) stay; a failure is also listed below the table
        optional=["branch", "replayed", "failed", "started"],
    )
    priced = [r.cost_usd for r in runs if r.cost_usd is not None]
    if any(r.unpriced for r in runs):
        total = "unknown (some models have no price)"
    elif priced:
        total = format_usd(sum(priced)) + (" (+recorded)" if any(r.recorded for r in runs) else "")
    else:
        total = "none (recorded answers)" if any(r.recorded for r in runs) else "$0.0000"
    ctx.out.info(f"total cost {total} over {_plural(len(runs), 'run')}")
    for e in errors:
        ctx.out.info(f"  run {e['run_id'][:RUN_ID_LEN]} {e['stage']}/{e['agent']}: {e['error']}")
    return 0


def _cost(run: RunRow) -> str:
    """A run's cost as the user should read it: never a silent $0 for what was not priced."""
    if run.unpriced:
        return "unknown"
    if run.cost_usd is None:
        if run.recorded:
            return "recorded"
        return "replayed" if run.replayed else "—"  # a replay costs nothing again
    return format_usd(run.cost_usd) + (" (+rec.)" if run.recorded else "")
