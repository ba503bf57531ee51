"""Reading results back: ``/spec-consensus`` (a stage's verdict, from its evidence or
the resume store's summary), ``/spec-status`` (every stage of a spec) and ``/show`` (a
stage's Markdown result)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentshell.commands import CommandContext
from agentshell.errors import CommandError

from .commands import RESUME_KEY, settings_of, spec_ids
from .config import ConsensusSettings
from .stages import STAGES, STATUS_STYLES, Stage, parse_stage, validate_spec_id

if TYPE_CHECKING:
    from .evidence import SynthesisRecord
    from .markdown import StageMeta
    from .synthesis import AgentResult


def _reload(record: SynthesisRecord, cwd: Path) -> list[AgentResult]:
    """Re-validate each agent's recorded answer against the current schemas."""
    from agentshell.agents import parse_json_content

    from .evidence import AgentEvidence, read_model
    from .schemas import normalize_role, validate_output
    from .synthesis import AgentResult

    results: list[AgentResult] = []
    for ref in record.agents:
        role = normalize_role(ref.role) or "synthesizer"
        if ref.path is None or not (cwd / ref.path).is_file():
            results.append(
                AgentResult(
                    agent=ref.agent, role=role, state="failed", reason="evidence file missing"
                )
            )
            continue
        ev = read_model(cwd / ref.path, AgentEvidence, "agent evidence", cwd)
        if ev.state in ("failed", "skipped"):
            results.append(AgentResult(agent=ev.agent, role=role, state=ev.state, reason=ev.reason))
            continue
        value = parse_json_content(ev.content) if ev.content else ev.output
        output, reason = validate_output(record.stage, role, value)
        results.append(
            AgentResult(
                agent=ev.agent,
                role=role,
                state="valid" if output is not None else "invalid",
                output=output,
                reason=reason,
                model=ev.model,
                recorded=ev.recorded,
                usage=ev.usage,
                latency_ms=ev.latency_ms,
                cost_usd=ev.cost_usd,
            )
        )
    return results


def _stored_result(shell: Any, spec_id: str, stage: Stage) -> dict[str, Any] | None:
    """The resume store's newest result of the stage, through the service the resume
    plugin publishes (``stage_summary``; this plugin never imports it), or None."""
    lookup = getattr(shell.state.get(RESUME_KEY), "stage_summary", None)
    if not callable(lookup):
        return None
    try:
        found = lookup(spec_id, stage)
    except Exception as exc:  # a locked or damaged store: say so, use the evidence
        shell.output.warn(f"resume store: cannot read the {stage} result of {spec_id}: {exc}")
        return None
    return found if isinstance(found, dict) and isinstance(found.get("status"), str) else None


def _no_result(shell: Any, settings: ConsensusSettings, spec_id: str, stage: Stage) -> str:
    """Why /spec-consensus has nothing to show, and what to enable or run."""
    from .pipeline import resume_off_reason

    run = f"/spec-{stage} {spec_id}"
    if shell.state.get(RESUME_KEY) is not None:
        return f"no {stage} result for {spec_id} yet (run {run})"
    where = f"no evidence for {spec_id} stage {stage} under {settings.evidence_dir}"
    if settings.evidence_enabled(shell.environ):
        return f"{where} (run {run})"
    return (
        f"{where}: evidence is off and {resume_off_reason(shell)}; enable one "
        f"(SPEC_KIT_TELEMETRY_ENABLED=1 or [plugins.consensus] evidence = true; or the resume "
        f"plugin, which keeps every verdict), then run {run}"
    )


def spec_consensus(ctx: CommandContext) -> int:
    """The latest verdict of a stage: re-evaluated from the evidence when there is
    evidence of that run (or newer), else the resume store's summary of it, which is
    kept whatever the evidence setting (so this works after every halt)."""
    from .evidence import SynthesisRecord, latest_synthesis, read_model, rel
    from .gate import _when
    from .synthesis import synthesize

    shell = ctx.shell
    settings = settings_of(shell)
    spec_id = validate_spec_id(ctx.args.spec_id)
    stage = parse_stage(ctx.args.stage)
    cwd = Path(shell.cwd)
    path = latest_synthesis(cwd / settings.evidence_dir, spec_id, stage)
    stored = _stored_result(shell, spec_id, stage)
    # damaged evidence is an error naming the file, never silently passed over
    record = read_model(path, SynthesisRecord, "a synthesis record", cwd) if path else None
    if stored is not None and record is not None and stored.get("run_id") != record.run_id:
        evidence_at, stored_at = _when(record.created_at), _when(stored.get("created_at"))
        if evidence_at is not None and stored_at is not None and evidence_at > stored_at:
            stored = None  # the evidence is of a newer run than the store's last result
    elif record is not None:
        stored = None  # evidence of the same run: re-evaluate it against today's schemas
    if stored is not None:
        _show_stored(ctx, spec_id, stage, stored)
        return 0
    if record is None or path is None:
        raise CommandError(_no_result(shell, settings, spec_id, stage))
    results = _reload(record, cwd)
    syn = synthesize(stage, results, aggregator=record.aggregator, quorum=record.quorum.required)
    out = ctx.out
    if ctx.args.get("json"):
        data = syn.model_dump(mode="json", exclude={"result"})
        out.json({**data, "recorded_status": record.status, "synthesis_path": rel(path, cwd)})
        return 0
    out.info(
        f"{spec_id} {stage}: {syn.status} (recorded {utc_time(record.created_at)}: {record.status})"
    )
    out.info(f"  agents: {', '.join(f'{r.agent}={r.state}' for r in results)}")
    for item in syn.agreements:
        out.info(f"  agreement: {item}")
    for item in syn.conflicts:
        out.info(f"  conflict: {item}")
    for agent in syn.missing_agents:
        out.info(f"  missing: {agent} — {syn.missing_reasons.get(agent, '')}")
    out.info(f"  synthesis: {record.synthesis_path}")
    return 0


def _show_stored(ctx: CommandContext, spec_id: str, stage: Stage, stored: dict[str, Any]) -> None:
    """The resume store's summary of a verdict (no agent answers to re-evaluate)."""
    import datetime as dt

    summary = stored.get("summary") or {}
    agents = summary.get("agents") or {}
    missing = summary.get("missing_reasons") or {}
    when = stored.get("created_at")
    at = (
        dt.datetime.fromtimestamp(float(when), dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        if isinstance(when, int | float)
        else str(when)
    )
    out = ctx.out
    if ctx.args.get("json"):
        out.json(
            {
                "stage": stage,
                "status": stored["status"],
                "agreements": stored.get("agreements") or [],
                "conflicts": stored.get("conflicts") or [],
                "missing_agents": list(missing),
                "missing_reasons": missing,
                "reasons": summary.get("reasons") or [],
                "agents": agents,
                "aggregator": summary.get("aggregator"),
                "quorum": summary.get("quorum"),
                "decision": summary.get("decision"),
                "recorded_status": stored["status"],
                "source": "resume store",
                "branch_id": stored.get("branch_id"),
                "run_id": stored.get("run_id"),
                "synthesis_path": stored.get("synthesis_path"),
            }
        )
        return
    status = stored["status"]
    out.info(
        f"{spec_id} {stage}: {status} (recorded {at} on branch {stored.get('branch_id')}; "
        "from the resume store's summary)",
        style=STATUS_STYLES.get(status),
    )
    if agents:
        out.info(f"  agents: {', '.join(f'{a}={state}' for a, state in agents.items())}")
    for item in stored.get("agreements") or []:
        out.info(f"  agreement: {item}")
    for item in stored.get("conflicts") or []:
        out.info(f"  conflict: {item}")
    for agent, why in missing.items():
        out.info(f"  missing: {agent} — {why}")
    for reason in summary.get("reasons") or []:
        out.info(f"  reason: {reason}")


def _last(shell: Any, settings: ConsensusSettings, spec_id: str, stage: Stage) -> StageMeta | None:
    from .engine import STATE_KEY
    from .evidence import SynthesisRecord, latest_synthesis, read_model
    from .markdown import StageMeta, read_meta

    meta: StageMeta | None = shell.state.get(STATE_KEY, {}).get((spec_id, stage))
    if meta is not None:
        return meta
    cwd = Path(shell.cwd)
    meta = read_meta(cwd / settings.specs_dir / spec_id / f"{stage}.md")
    path = latest_synthesis(cwd / settings.evidence_dir, spec_id, stage)
    if path is not None:
        try:
            record = read_model(path, SynthesisRecord, "a synthesis record", cwd)
            found: StageMeta | None = StageMeta(
                stage=stage,
                status=record.status,
                generated_at=record.created_at,
                prompt_version=record.prompt_version,
                total_tokens=record.totals.total_tokens,
                cost_usd=record.totals.total_cost_usd,
                recorded_agents=[a.agent for a in record.agents if a.recorded],
            )
        except CommandError as exc:  # say so, and show what the stage file knows
            shell.output.warn(f"{exc}; ignored")
            found = None
        if found is not None and (meta is None or found.generated_at > meta.generated_at):
            meta = found
    return meta


def utc_time(text: str) -> str:
    """One format for every time shown: UTC to the second, ``2026-11-22 03:01:05Z``."""
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def spec_status(ctx: CommandContext) -> int:
    from .engine import spec_paths
    from .pipeline import stage_cost

    shell = ctx.shell
    settings = settings_of(shell)
    given = ctx.args.get("spec_id")
    if given:
        spec_paths(shell, settings, validate_spec_id(given))  # the error /spec-auto gives
    ids = [given] if given else spec_ids(shell)
    if not ids:
        ctx.out.info(f"no specs under {settings.specs_dir}/ (a spec is <SPEC-ID>/spec.md)")
        return 0
    # one table per spec, without a spec column: long spec ids would not fit 80 columns
    for spec_id in ids:
        rows = []
        for stage in STAGES:
            meta = _last(shell, settings, spec_id, stage)
            if meta is None:
                rows.append((stage, "—", "", "", ""))
                continue
            cost = stage_cost(meta.cost_usd, bool(meta.recorded_agents))
            rows.append(
                (
                    stage,
                    meta.status,
                    utc_time(meta.generated_at),
                    f"{meta.total_tokens:,}",
                    cost,
                )
            )
        ctx.out.table(
            ["stage", "status", "time (UTC)", "tokens", "cost"],
            rows,
            title=spec_id,
            optional=["time (UTC)"],  # left out when narrow: never a cut number
        )
    return 0


def _latest_result(spec_dir: Path) -> Stage | None:
    """The stage whose result was written last (its status comment's time, else the
    file's), the later stage on a tie; None when no stage has one."""
    from .markdown import read_meta

    best: tuple[str, int, Stage] | None = None
    for index, stage in enumerate(STAGES):
        path = spec_dir / f"{stage}.md"
        if not path.is_file():
            continue
        meta = read_meta(path)
        if meta is not None:
            when = meta.generated_at
        else:
            import datetime as dt

            when = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).isoformat()
        key = (when.replace("Z", "+00:00"), index, stage)
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None


def show(ctx: CommandContext) -> int:
    """A stage's Markdown result: rendered on a terminal (in colour unless NO_COLOR /
    --color=never), the Markdown text when piped (the host's ``Output.markdown``)."""
    from .engine import spec_paths
    from .evidence import rel
    from .markdown import strip_meta

    shell = ctx.shell
    settings = settings_of(shell)
    spec_id = validate_spec_id(ctx.args.spec_id)
    spec_dir = spec_paths(shell, settings, spec_id)[0]  # "no spec …" names the file
    given = ctx.args.get("stage")
    stage = parse_stage(given) if given else _latest_result(spec_dir)
    if stage is None:
        raise CommandError(
            f"no stage result for {spec_id} yet: none of {rel(spec_dir, shell.cwd)}/<STAGE>.md "
            f"exists (/spec-auto {spec_id} writes them)"
        )
    path = spec_dir / f"{stage}.md"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandError(
            f"no {stage} result for {spec_id} yet: {rel(path, shell.cwd)} does not exist "
            f"(/spec-{stage} {spec_id} writes it)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CommandError(f"cannot read {rel(path, shell.cwd)}: {why}") from None
    ctx.out.markdown(strip_meta(text).rstrip("\n"))  # the host renders it, or not
    return 0
