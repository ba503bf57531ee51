"""Halt gating on earlier verdicts: ``/spec-auto <SPEC-ID> --from <stage>`` first loads
the latest verdict of every stage before ``<stage>`` and refuses to start when one of
them is a status the pipeline halts on (``halt_on``, and always ``failed``), as the
spec-kit documents' halt gating does with the latest synthesis. ``--force`` starts
anyway, with a warning, and the run keeps what it went past (``forced_over``).

Where a verdict comes from — the newest of these wins, so the gate works with evidence
off and without the resume plugin:

* this session's record of the stage (``shell.state``, written by every stage run);
* the status comment of the stage's Markdown (``<specs_dir>/<SPEC-ID>/<stage>.md``),
  which every stage run that is not ``failed`` writes — the plugin's own durable record;
* the newest synthesis record in the evidence (``spec-<stage>_…`` or the old
  ``<stage>_…`` name), when evidence was on;
* the resume store's newest stage result, when the resume plugin publishes one at
  ``shell.state["speckit.resume"]`` (``stage_verdict``; this plugin never imports it).

A stage with no verdict anywhere is not gated: a late start without earlier results
is allowed (docs/spec-kit.md), so it is named in a warning instead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentshell.errors import CommandError

from .config import ConsensusSettings
from .evidence import rel
from .stages import Stage, previous_stages, resume_hint

RESUME_KEY = "speckit.resume"


@dataclass(frozen=True)
class Verdict:
    stage: Stage
    status: str
    at: dt.datetime
    source: str  # where it was read: a path, "this session", "resume store, branch …"


def _when(value: Any) -> dt.datetime | None:
    """An ISO 8601 text or epoch seconds as an aware UTC time (None when unreadable)."""
    try:
        if isinstance(value, int | float):
            return dt.datetime.fromtimestamp(float(value), dt.UTC)
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _from_store(shell: Any, spec_id: str, stage: Stage) -> Verdict | None:
    lookup = getattr(shell.state.get(RESUME_KEY), "stage_verdict", None)
    if not callable(lookup):
        return None
    try:
        found = lookup(spec_id, stage)
    except Exception as exc:  # a locked or damaged store must not stop the gate
        shell.output.warn_once(
            "consensus:gate-store", f"resume store: reading verdicts failed: {exc}"
        )
        return None
    if not isinstance(found, dict) or not isinstance(found.get("status"), str):
        return None
    when = _when(found.get("created_at"))
    if when is None:
        return None
    # the record the store names is the better pointer, when there is one
    path = found.get("synthesis_path")
    source = (
        rel(Path(path), Path(shell.cwd))
        if isinstance(path, str) and path
        else f"resume store, branch {found.get('branch_id')}"
    )
    return Verdict(stage, found["status"], when, source)


def latest_verdict(
    shell: Any, settings: ConsensusSettings, spec_id: str, stage: Stage
) -> Verdict | None:
    """The newest verdict of ``stage`` among every place one is kept (module doc)."""
    from .engine import STATE_KEY
    from .evidence import SynthesisRecord, latest_synthesis, read_model
    from .markdown import StageMeta, read_meta

    cwd = Path(shell.cwd)
    found: list[Verdict] = []

    def add(status: str, at: Any, source: str) -> None:
        when = _when(at)
        if when is not None:
            found.append(Verdict(stage, status, when, source))

    meta: StageMeta | None = shell.state.get(STATE_KEY, {}).get((spec_id, stage))
    if meta is not None:
        add(meta.status, meta.generated_at, "this session")
    markdown = cwd / settings.specs_dir / spec_id / f"{stage}.md"
    meta = read_meta(markdown)
    if meta is not None:
        add(meta.status, meta.generated_at, rel(markdown, cwd))
    path = latest_synthesis(cwd / settings.evidence_dir, spec_id, stage)
    if path is not None:
        try:
            record = read_model(path, SynthesisRecord, "a synthesis record", cwd)
        except CommandError as exc:  # a damaged record is named, and not a verdict
            shell.output.warn(f"{exc}; ignored")
        else:
            add(record.status, record.created_at, rel(path, cwd))
    stored = _from_store(shell, spec_id, stage)
    if stored is not None:
        found.append(stored)
    # the newest wins; on a tie the first listed (this session, then the Markdown)
    return max(found, key=lambda v: v.at) if found else None


def halting_statuses(settings: ConsensusSettings) -> set[str]:
    return {*settings.halt_on, "failed"}


@dataclass
class GateResult:
    blocked: list[Verdict]  # earlier stages whose latest verdict halts the pipeline
    unknown: list[Stage]  # earlier stages with no verdict anywhere


def check(shell: Any, settings: ConsensusSettings, spec_id: str, start: Stage) -> GateResult:
    halting = halting_statuses(settings)
    result = GateResult([], [])
    for stage in previous_stages(start):
        verdict = latest_verdict(shell, settings, spec_id, stage)
        if verdict is None:
            result.unknown.append(stage)
        elif verdict.status in halting:
            result.blocked.append(verdict)
    return result


def _utc(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def force_hint(spec_id: str, start: Stage, branch_id: str | None) -> str:
    on = f" {branch_id}" if branch_id else ""
    return f"/spec-auto {spec_id} --from {start}{on} --force"


def gate(
    shell: Any,
    settings: ConsensusSettings,
    *,
    spec_id: str,
    start: Stage,
    branch_id: str | None,
    force: bool,
) -> tuple[bool, dict[str, str]]:
    """Check the earlier stages before a ``--from`` run starts (nothing is written
    yet). Returns (whether to go on, ``{stage: status}`` forced past). A halt prints
    the stage, its status, where the verdict was read and the line that re-runs it."""
    out = shell.output
    result = check(shell, settings, spec_id, start)
    if result.unknown:
        names = ", ".join(result.unknown)
        out.warn(
            f"no verdict recorded for {names} of {spec_id} (no status in this session, "
            f"the stage Markdown, the evidence or the resume store): {start} is not "
            f"gated on {'it' if len(result.unknown) == 1 else 'them'}"
        )
    if not result.blocked:
        return True, {}
    forced: dict[str, str] = {v.stage: v.status for v in result.blocked}
    what = ", ".join(f"{v.stage} is {v.status}" for v in result.blocked)
    if force:
        pairs = ", ".join(f"{s}={st}" for s, st in forced.items())
        out.warn(
            f"--force: {start} starts although {what}; this run records it (forced over {pairs})"
        )
        return True, forced
    first = result.blocked[0]
    rerun = resume_hint(spec_id, first.stage)
    out.info(f"halted before {start}: {what}")
    for v in result.blocked:
        out.info(f"  {v.stage}: {v.status} (latest verdict {_utc(v.at)}, {v.source})")
    out.info(f"  re-run it with: {rerun}")
    out.info(f"  or start anyway: {force_hint(spec_id, start, branch_id)}")
    from .events import PipelineHalted

    shell.telemetry.emit(
        PipelineHalted(
            spec_id=spec_id,
            stage=first.stage,
            status=first.status,
            reason=f"--from {start}: {what}"[:1000],
            resume_command=rerun,
        )
    )
    return False, forced
