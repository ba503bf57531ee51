"""One stage run: fan out to the stage's agents, validate, aggregate, synthesise, and
record (stage Markdown, evidence, resume store, telemetry)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentshell.agents import AgentRequest, AgentResponse, AgentSpec, Progress, parse_json_content
from agentshell.errors import AgentError, CommandError, NotStored
from agentshell.files import atomic_write, clean_stale_temps
from agentshell.redact import redact

from . import prompts
from .agents import StagePlan, resolve, sync_default_agents
from .config import ConsensusSettings
from .events import ConsensusSynthesized, PipelineStageStarted, call_labels
from .evidence import EvidenceWriter, Totals, clean_stale_temps as clean_evidence_temps, rel, totals
from .markdown import StageMeta, render_stage
from .schemas import Role, validate_output
from .stages import Stage, validate_spec_id
from .synthesis import AgentResult, AgentState, Synthesis, synthesize

SYSTEM = "You are one agent of a spec-kit consensus team. Answer with one JSON object only."
STATE_KEY = "speckit.consensus.last"  # shell.state: {(spec_id, stage): StageMeta}


@dataclass
class RunIds:
    run_id: str
    branch_id: str


@dataclass
class StageOutcome:
    stage: Stage
    synthesis: Synthesis
    results: list[AgentResult]
    totals: Totals
    prompt_version: str
    markdown_path: Path | None
    synthesis_path: Path | None
    duration_s: float


def spec_paths(shell: Any, settings: ConsensusSettings, spec_id: str) -> tuple[Path, Path]:
    """(the spec folder, the evidence dir); the spec must exist."""
    validate_spec_id(spec_id)
    cwd = Path(shell.cwd)
    spec_dir = cwd / settings.specs_dir / spec_id
    if not (spec_dir / "spec.md").is_file():
        try:
            known = sorted(p.parent.name for p in (cwd / settings.specs_dir).glob("*/spec.md"))
        except OSError:
            known = []
        raise CommandError(
            f"no spec {spec_id!r}: {rel(spec_dir / 'spec.md', cwd)} does not exist "
            f"(specs live in {settings.specs_dir}/<SPEC-ID>/spec.md; "
            f"available: {', '.join(known) or 'none'})"
        )
    return spec_dir, cwd / settings.evidence_dir


def _warn(shell: Any, key: str, what: str, exc: Exception) -> None:
    shell.output.warn_once(f"consensus:{key}", f"{what} failed: {type(exc).__name__}: {exc}")


class _Printer:
    """One line per agent state change (plain text: fine on a tty and in a log)."""

    def __init__(self, shell: Any, stage: Stage, roles: dict[str, Role]) -> None:
        self.out = shell.output
        self.stage = stage
        self.roles = roles

    def __call__(self, p: Progress) -> None:
        who = f"  {self.stage} · {p.agent} ({self.roles.get(p.agent, '?')})"
        if p.state == "started":
            self.out.info(f"{who} started")
        elif p.state == "retrying":
            # the runner prints nothing itself when a progress callback is given: this is
            # the only retry line; its detail reads "<agent>: retrying in 0.4s (...): why"
            detail = p.detail.removeprefix(f"{p.agent}: ").strip() or "retrying"
            self.out.info(f"{who} {detail}")
        elif p.state == "failed":
            self.out.info(f"{who} failed after {p.elapsed_s:.1f}s: {p.detail}")
        elif p.state == "cancelled":  # stopped by the user, not a failure of the agent
            self.out.info(f"{who} cancelled after {p.elapsed_s:.1f}s")

    def done(self, agent: str, response: AgentResponse, elapsed: float, state: str) -> None:
        tags = [t for t, on in (("recorded", response.recorded), ("cached", response.cached)) if on]
        extra = f" ({', '.join(tags)})" if tags else ""
        note = "" if state == "valid" else f" — {state} output"
        self.out.info(
            f"  {self.stage} · {agent} ({self.roles.get(agent, '?')}) done in {elapsed:.2f}s, "
            f"{response.usage.total_tokens:,} tok{extra}{note}"
        )


async def _call(
    shell: Any,
    spec: AgentSpec,
    role: Role,
    stage: Stage,
    prompt: str,
    context: dict[str, Any],
    printer: _Printer,
) -> AgentResult:
    phash = prompts.prompt_hash(prompt)
    ctx = {**context, "prompt_hash": phash, "role": role}
    request = AgentRequest(
        prompt=prompt,
        system=SYSTEM,
        expect_json=True,
        metadata={"spec_id": ctx["spec_id"], "stage": stage, "role": role},
        labels=call_labels(ctx["spec_id"], stage),
    )
    start = time.monotonic()
    try:
        response: AgentResponse = await shell.runner.run(spec, request, ctx, progress=printer)
    except AgentError as exc:
        return AgentResult(
            agent=spec.name,
            role=role,
            state="failed",
            reason=redact(f"{exc.kind}: {exc}")[:500],
            model=spec.model,
            prompt_hash=phash,
            latency_ms=(time.monotonic() - start) * 1000,
        )
    value = response.parsed if response.parsed is not None else parse_json_content(response.content)
    output, reason = validate_output(stage, role, value)
    state: AgentState = "valid" if output is not None else "invalid"
    printer.done(spec.name, response, time.monotonic() - start, state)
    return AgentResult(
        agent=spec.name,
        role=role,
        state=state,
        output=output,
        reason=reason,
        model=response.model or spec.model,
        recorded=response.recorded,
        cached=response.cached,
        usage=response.usage,
        latency_ms=response.latency_ms,
        cost_usd=response.cost_usd,
        attempts=response.attempts,
        prompt_hash=phash,
        content=response.content,
    )


async def run_stage(
    shell: Any,
    settings: ConsensusSettings,
    *,
    spec_id: str,
    stage: Stage,
    goal: str | None,
    ids: RunIds,
    command: str,
    forced_over: dict[str, str] | None = None,
) -> StageOutcome:
    """``forced_over``: earlier stages' non-ok verdicts a ``--force`` run went past,
    kept with this stage's verdict (Markdown status comment, synthesis record)."""
    started = time.monotonic()
    spec_dir, evidence_dir = spec_paths(shell, settings, spec_id)
    # a run killed mid-write left hidden temp files: clear them (not a live writer's)
    clean_stale_temps(spec_dir)
    clean_evidence_temps(evidence_dir, spec_id)
    sync_default_agents(shell, settings.demo_latency_scale)  # /config reload may change it
    plan: StagePlan = resolve(stage, settings, shell.agents)
    template = prompts.load_template(stage, plan.template, Path(shell.cwd))
    context_text = prompts.spec_context(spec_dir)
    previous = prompts.previous_outputs(spec_dir, stage)
    trace_parent = uuid.uuid4().hex
    base_ctx: dict[str, Any] = {
        "spec_id": spec_id,
        "stage": stage,
        "run_id": ids.run_id,
        "branch_id": ids.branch_id,
        "prompt_version": template.version,
        "trace_parent": trace_parent,
        "command": command,
    }
    # opens the stage's span (under the run's): its agent calls hang under it
    shell.telemetry.emit(
        PipelineStageStarted(
            spec_id=spec_id,
            stage=stage,
            run_id=ids.run_id,
            branch_id=ids.branch_id,
            trace_parent=trace_parent,
        )
    )
    roles: dict[str, Role] = {spec.name: role for spec, role in plan.workers}
    if plan.aggregator:
        roles[plan.aggregator.name] = "aggregator"
    printer = _Printer(shell, stage, roles)

    def render(role: Role, outputs: str = "") -> str:
        return prompts.render(
            template,
            spec_id=spec_id,
            stage=stage,
            role=role,
            goal=goal,
            context=context_text,
            previous=previous,
            agent_outputs=outputs,
        )

    # the workers run concurrently; one's failure never loses the others' answers
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(_call(shell, spec, role, stage, render(role), base_ctx, printer))
            for spec, role in plan.workers
        ]
    results = [t.result() for t in tasks]
    if plan.aggregator is not None:
        valid = {r.agent: r.output for r in results if r.valid}
        if valid:
            missing = {r.agent: r.reason or r.state for r in results if not r.valid}
            block = prompts.agent_outputs_block(valid, missing)
            agg = await _call(
                shell,
                plan.aggregator,
                "aggregator",
                stage,
                render("aggregator", block),
                base_ctx,
                printer,
            )
        else:
            agg = AgentResult(
                agent=plan.aggregator.name,
                role="aggregator",
                state="skipped",
                reason="not asked: no valid answers to aggregate",
                model=plan.aggregator.model,
            )
        results.append(agg)
    synthesis = synthesize(
        stage,
        results,
        aggregator=plan.aggregator.name if plan.aggregator else None,
        quorum=plan.quorum,
    )
    sums = totals(results)
    # to the millisecond: the --from gate and /spec-status compare it with the evidence
    # of another run of the stage, which may be in the same second
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    meta = StageMeta(
        stage=stage,
        status=synthesis.status,
        generated_at=now,
        prompt_version=template.version,
        total_tokens=sums.total_tokens,
        cost_usd=sums.total_cost_usd,
        run_id=ids.run_id,
        branch_id=ids.branch_id,
        recorded_agents=[r.agent for r in results if r.valid and r.recorded],
        forced_over=dict(forced_over or {}),
    )
    markdown_path: Path | None = None
    if synthesis.status != "failed":  # a failed stage never overwrites an earlier result
        markdown_path = spec_dir / f"{stage}.md"
        atomic_write(
            markdown_path,
            render_stage(spec_id=spec_id, synthesis=synthesis, results=results, meta=meta),
        )
    synthesis_path: Path | None = None
    if settings.evidence_enabled(shell.environ):
        writer = EvidenceWriter(evidence_dir, spec_id, stage, Path(shell.cwd))
        writer.write(
            spec_id=spec_id,
            synthesis=synthesis,
            results=results,
            sums=sums,
            prompt_version=template.version,
            run_id=ids.run_id,
            branch_id=ids.branch_id,
            trace_parent=trace_parent,
            session_id=getattr(shell, "session_id", ""),
            command=command,
            markdown_path=markdown_path,
            forced_over=forced_over,
        )
        synthesis_path = writer.path("synthesis.json")
    shell.state.setdefault(STATE_KEY, {})[(spec_id, stage)] = meta
    _record(shell, ids, spec_id, stage, synthesis, results, synthesis_path)
    shell.telemetry.emit(
        ConsensusSynthesized(
            spec_id=spec_id,
            stage=stage,
            status=synthesis.status,
            agreements=len(synthesis.agreements),
            conflicts=len(synthesis.conflicts),
            agents=[r.agent for r in results],
            missing_agents=synthesis.missing_agents,
            **sums.model_dump(),
            synthesis_path=str(synthesis_path) if synthesis_path else None,
            trace_parent=trace_parent,
        )
    )
    # the stage is over: plugins that keep per-stage books (metrics: metrics.tokens)
    # close them now, through the host's generic hook, with the labels the calls carried
    completed = getattr(shell, "work_completed", None)  # absent on an older host
    if completed is not None:
        await completed(base_ctx)
    return StageOutcome(
        stage=stage,
        synthesis=synthesis,
        results=results,
        totals=sums,
        prompt_version=template.version,
        markdown_path=markdown_path,
        synthesis_path=synthesis_path,
        duration_s=time.monotonic() - started,
    )


def summary_of(synthesis: Synthesis, results: list[AgentResult]) -> dict[str, Any]:
    """The short account of a verdict the resume store keeps (and ``/spec-consensus``
    shows without evidence): why, who answered what, who is missing; no answers."""
    return {
        "reasons": list(synthesis.reasons),
        "agents": {r.agent: r.state for r in results},
        "missing_reasons": dict(synthesis.missing_reasons),
        "aggregator": synthesis.aggregator,
        "quorum": synthesis.quorum,
        "decision": synthesis.decision,
    }


def _record(
    shell: Any,
    ids: RunIds,
    spec_id: str,
    stage: Stage,
    synthesis: Synthesis,
    results: list[AgentResult],
    synthesis_path: Path | None,
) -> None:
    """Tell the resume plugin (when present) what this stage produced."""
    resume = shell.state.get("speckit.resume")
    if resume is None:
        return
    try:
        for r in results:
            if r.state == "skipped":
                continue
            resume.record_validation(
                branch_id=ids.branch_id,
                spec_id=spec_id,
                stage=stage,
                agent=r.agent,
                prompt_hash=r.prompt_hash,
                valid=r.valid,
                error=r.reason,
            )
        # a service that can read a summary back takes one (docs/resume.md, the contract):
        # /spec-consensus shows it after a halt even with the evidence off
        extra = (
            {"summary": summary_of(synthesis, results)} if hasattr(resume, "stage_summary") else {}
        )
        resume.record_stage(
            run_id=ids.run_id,
            branch_id=ids.branch_id,
            spec_id=spec_id,
            stage=stage,
            status=synthesis.status,
            agreements=synthesis.agreements,
            conflicts=synthesis.conflicts,
            synthesis_path=str(synthesis_path) if synthesis_path else None,
            **extra,
        )
    except NotStored:
        raise  # a stage whose result was not stored must not report success
    except Exception as exc:  # a bug in the store must not lose the stage's result
        _warn(shell, "resume-record", "recording the stage in the resume store", exc)
