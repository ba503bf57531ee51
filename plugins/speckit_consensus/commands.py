"""The slash commands: ``/spec-<stage>``, ``/spec-auto``, ``/spec-consensus``, ``/spec-status``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentshell.commands import Arg, Command, CommandContext, Option
from agentshell.errors import CommandError

from .config import SECTION, ConsensusSettings
from .stages import STAGE_CHOICES, STAGES, Stage, parse_stage, validate_spec_id

# Declaring commands happens at start-up; running them does not. The engine, schemas and
# evidence modules are imported by the handlers that need them, keeping start-up fast.
if TYPE_CHECKING:
    from .evidence import SynthesisRecord
    from .markdown import StageMeta
    from .synthesis import AgentResult


def settings_of(shell: Any) -> ConsensusSettings:
    value = shell.plugin_config(SECTION)
    return (
        value if isinstance(value, ConsensusSettings) else ConsensusSettings.model_validate(value)
    )


def spec_ids(shell: Any) -> list[str]:
    """Folders under the specs directory that hold a spec.md."""
    root = Path(shell.cwd) / settings_of(shell).specs_dir
    try:
        return sorted(p.parent.name for p in root.glob("*/spec.md"))
    except OSError:
        return []


def complete_spec(shell: Any, text: str) -> Iterable[str]:
    return [s for s in spec_ids(shell) if s.startswith(text)]


def complete_stage(shell: Any, text: str) -> Iterable[str]:
    return [s for s in STAGE_CHOICES if s.startswith(text)]


SPEC_ARG = Arg("spec_id", "the spec folder name, e.g. SPEC-KIT-DEMO", complete=complete_spec)


def _goal(args: Any) -> str | None:
    words = args.get("goal") or []
    text = " ".join(words) if isinstance(words, list) else str(words)
    return text.strip() or None


async def spec_auto(ctx: CommandContext) -> int:
    from . import pipeline

    spec_id = validate_spec_id(ctx.args.spec_id)
    raw_from = ctx.args.get("from")
    return await pipeline.run(
        ctx.shell,
        settings_of(ctx.shell),
        spec_id=spec_id,
        goal=_goal(ctx.args),
        from_stage=parse_stage(raw_from) if raw_from else None,
        resume=bool(ctx.args.get("resume")),
        single=False,
        command="spec-auto",
    )


def stage_handler(stage: Stage) -> Any:
    async def handler(ctx: CommandContext) -> int:
        from . import pipeline

        spec_id = validate_spec_id(ctx.args.spec_id)
        return await pipeline.run(
            ctx.shell,
            settings_of(ctx.shell),
            spec_id=spec_id,
            goal=ctx.args.get("consensus"),
            from_stage=stage,
            resume=False,
            single=True,
            command=f"spec-{stage}",
        )

    return handler


def _reload(record: SynthesisRecord, cwd: Path) -> list[AgentResult]:
    """Re-validate each agent's recorded answer against the current schemas."""
    from agentshell.agents import parse_json_content

    from .evidence import AgentEvidence
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
        ev = AgentEvidence.model_validate_json((cwd / ref.path).read_text(encoding="utf-8"))
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


def spec_consensus(ctx: CommandContext) -> int:
    from .evidence import SynthesisRecord, latest_synthesis, rel
    from .synthesis import synthesize

    shell = ctx.shell
    settings = settings_of(shell)
    spec_id = validate_spec_id(ctx.args.spec_id)
    stage = parse_stage(ctx.args.stage)
    cwd = Path(shell.cwd)
    path = latest_synthesis(cwd / settings.evidence_dir, spec_id, stage)
    if path is None:
        hint = ""
        if not settings.evidence_enabled(shell.environ):
            hint = " (evidence is off: set SPEC_KIT_TELEMETRY_ENABLED=1 or evidence = true)"
        raise CommandError(
            f"no evidence for {spec_id} stage {stage} under {settings.evidence_dir}{hint}"
        )
    try:
        record = SynthesisRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CommandError(f"{path}: not a synthesis record: {str(exc).splitlines()[0]}") from None
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


def _last(shell: Any, settings: ConsensusSettings, spec_id: str, stage: Stage) -> StageMeta | None:
    from .engine import STATE_KEY
    from .evidence import latest_synthesis
    from .markdown import StageMeta, read_meta

    meta: StageMeta | None = shell.state.get(STATE_KEY, {}).get((spec_id, stage))
    if meta is not None:
        return meta
    cwd = Path(shell.cwd)
    meta = read_meta(cwd / settings.specs_dir / spec_id / f"{stage}.md")
    path = latest_synthesis(cwd / settings.evidence_dir, spec_id, stage)
    if path is not None:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            found = StageMeta(
                stage=stage,
                status=record["status"],
                generated_at=record["created_at"],
                prompt_version=record["prompt_version"],
                total_tokens=record["totals"]["total_tokens"],
                cost_usd=record["totals"]["total_cost_usd"],
                recorded_agents=[a["agent"] for a in record.get("agents", []) if a.get("recorded")],
            )
        except (OSError, ValueError, KeyError, TypeError):
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
        ctx.out.table(["stage", "status", "time (UTC)", "tokens", "cost"], rows, title=spec_id)
    return 0


def all_commands() -> list[Command]:
    from_opt = Option(
        "--from",
        "start at this stage (plan, spec-plan, ...)",
        metavar="STAGE",
        complete=complete_stage,
    )
    commands = [
        Command(
            "spec-auto",
            spec_auto,
            help="run every stage from plan (or --from) to unlock; halt when consensus fails",
            args=[
                SPEC_ARG,
                Arg("goal", "what this run should achieve", required=False, variadic=True),
            ],
            options=[from_opt, Option("--resume", "continue the spec's current branch", flag=True)],
        ),
        Command(
            "spec-consensus",
            spec_consensus,
            help="re-evaluate a stage's latest evidence: status, agreements, conflicts, missing",
            args=[
                SPEC_ARG,
                Arg("stage", "plan, tasks, ... (or spec-plan, ...)", complete=complete_stage),
            ],
            options=[Option("--json", "print JSON", flag=True)],
        ),
        Command(
            "spec-status",
            spec_status,
            help="each stage's last status, time and cost",
            args=[Arg("spec_id", "a spec (default: all)", required=False, complete=complete_spec)],
        ),
    ]
    for stage in STAGES:
        commands.append(
            Command(
                f"spec-{stage}",
                stage_handler(stage),
                help=f"run the {stage} stage of a spec with multi-agent consensus",
                args=[SPEC_ARG],
                options=[
                    Option(
                        "--consensus", "the goal agents should reach consensus on", metavar="GOAL"
                    )
                ],
            )
        )
    return commands
