"""``/spec-auto`` and the single-stage commands: run ids, stage order, halt gating,
and what the user reads when a stage does not reach consensus."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any, Literal

from agentshell import format_usd
from agentshell.errors import CommandError, NotStored
from agentshell.redact import redact

from .config import ConsensusSettings
from .engine import RunIds, StageOutcome, run_stage, spec_paths
from .events import (
    PipelineHalted,
    PipelineRunFinished,
    PipelineRunStarted,
    PipelineStageCompleted,
)
from .evidence import rel
from .specid import new_branch_id
from .stages import STAGES, STATUS_STYLES, Stage, continue_hint, resume_hint, stages_from

EXIT_HALT = 3
RESUME_KEY = "speckit.resume"
RESUME_PLUGIN = "resume"  # its entry-point name (pyproject.toml)
RunStatus = Literal["ok", "halted", "cancelled", "failed"]


MARKS = {"degraded": "!", "conflict": "✗", "failed": "✗"}


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


RUN_ID_LEN = 8  # how many characters of a run id are shown (progress, /history)


def short_id(run_id: str) -> str:
    return run_id[:RUN_ID_LEN]


def begin(
    shell: Any,
    *,
    spec_id: str,
    goal: str | None,
    from_stage: Stage | None,
    resume: bool,
    branch_id: str | None = None,
) -> tuple[RunIds, Stage | None, str | None, bool]:
    """Start a run in the resume store when there is one: (ids, the stage to fork at,
    the goal the run uses — a resumed branch keeps its own —, whether the branch is
    stored, so a printed hint may name it)."""
    store = shell.state.get(RESUME_KEY)
    if store is None:
        # never a silent fresh run (it pays again) nor a guessed cause: before any work
        if resume or branch_id is not None:
            what = "--resume" if resume else f"branch {branch_id}"
            raise CommandError(
                f"{what} needs the resume store, but {resume_off_reason(shell)}; "
                "there is no branch to use"
            )
        return RunIds(uuid.uuid4().hex, new_branch_id(spec_id)), None, goal, False
    extra = {"branch_id": branch_id} if branch_id is not None else {}
    info = store.begin_run(
        spec_id=spec_id, goal=goal, from_stage=from_stage, resume=resume, **extra
    )
    fork = info.get("fork_stage")
    ids = RunIds(str(info["run_id"]), str(info["branch_id"]))
    return ids, fork if fork in STAGES else None, info.get("goal", goal), True


def resume_off_reason(shell: Any) -> str:
    """Why there is no resume service, from the host's plugin states (what /plugins shows)."""
    infos = getattr(getattr(shell, "plugins", None), "infos", None) or {}
    info = infos.get(RESUME_PLUGIN)
    if info is None:
        return f"the {RESUME_PLUGIN} plugin is not installed"
    state, reason = getattr(info, "state", ""), getattr(info, "reason", None)
    if state == "disabled":
        return f"the {RESUME_PLUGIN} plugin is off ({reason or 'disabled'})"
    if state == "failed":
        return f"the {RESUME_PLUGIN} plugin failed to load ({reason or 'see /plugins'})"
    return f"the resume store is disabled ([plugins.{RESUME_PLUGIN}] enabled = false)"


def finish(
    shell: Any,
    ids: RunIds,
    status: RunStatus,
    spec_id: str,
    started: float,
    *,
    failing: bool = False,
) -> None:
    """The run ended: close the run's trace, and the run in the resume store. When the
    run succeeded, a store that cannot record it fails the command (NotStored); when it
    is ``failing`` already, the error that failed it is the one the user sees."""
    shell.telemetry.emit(
        PipelineRunFinished(
            spec_id=spec_id,
            run_id=ids.run_id,
            branch_id=ids.branch_id,
            status=status,
            duration_s=time.monotonic() - started,
        )
    )
    store = shell.state.get(RESUME_KEY)
    if store is None:
        return
    try:
        store.finish_run(ids.run_id, status)
    except NotStored:
        if not failing:
            raise
    except Exception as exc:
        shell.output.warn(f"resume store: cannot record the end of run {ids.run_id}: {exc}")


def stage_cost(cost_usd: float | None, recorded: bool) -> str:
    """A stage's cost as the stage line and /spec-status show it: "recorded" for
    recorded answers (also when the resume cache serves them again), never "$0"."""
    if cost_usd is not None:
        return format_usd(cost_usd) + (" (+recorded)" if recorded else "")
    return "recorded" if recorded else "—"


def report(shell: Any, spec_id: str, outcome: StageOutcome) -> None:
    """One line per stage; details of what went wrong when it is not ok."""
    out = shell.output
    syn = outcome.synthesis
    cwd = shell.cwd
    valid = len(syn.valid_agents)
    configured = len(outcome.results)
    cost = stage_cost(outcome.totals.total_cost_usd, any(r.recorded for r in outcome.results))
    cost = f", {cost}" if cost != "—" else ""
    where = f" → {rel(outcome.markdown_path, cwd)}" if outcome.markdown_path else ""
    line = (
        f"{outcome.stage}: {syn.status} — {valid}/{configured} agents valid, "
        f"{plural(len(syn.agreements), 'agreement')}, "
        f"{plural(len(syn.conflicts), 'conflict')}, "
        f"{outcome.totals.total_tokens:,} tok{cost}{where}"
    )
    if syn.status == "ok":
        out.success(line)
    else:  # every status has a marker, so a scan of the left edge finds the bad stages
        out.info(f"{MARKS.get(syn.status, '✗')} {line}", style=STATUS_STYLES.get(syn.status))
    for conflict in syn.conflicts:
        out.info(f"    conflict: {conflict}")
    for agent in syn.missing_agents:
        out.info(f"    missing: {agent} — {syn.missing_reasons.get(agent, '')}", style="dim")


def halt(
    shell: Any,
    spec_id: str,
    outcome: StageOutcome,
    ids: RunIds,
    *,
    single: bool = False,
    stored: bool = False,
) -> str:
    """Print why the pipeline stopped and the exact line that re-runs the stage: on a
    child of this very branch (named, so another run in between changes nothing)."""
    out = shell.output
    syn = outcome.synthesis
    hint = resume_hint(spec_id, outcome.stage, ids.branch_id if stored else None, single=single)
    out.info("")
    out.info(
        f"halted at {outcome.stage}: consensus {syn.status}", style=STATUS_STYLES.get(syn.status)
    )
    for reason in syn.reasons:
        out.info(f"  reason: {reason}")
    if outcome.synthesis_path is not None:
        out.info(f"  synthesis: {rel(outcome.synthesis_path, shell.cwd)}")
    if outcome.synthesis_path is not None or shell.state.get(RESUME_KEY) is not None:
        # the resume store keeps a summary of every verdict, evidence on or off
        out.info(f"  details: /spec-consensus {spec_id} {outcome.stage}")
    else:
        out.info(
            "  synthesis: evidence is off (set SPEC_KIT_TELEMETRY_ENABLED=1 or "
            "[plugins.consensus] evidence = true to keep it)"
        )
    for line in guidance(shell, spec_id, outcome, ids.branch_id if stored else None, single=single):
        out.info(line)
    out.info(f"  resume with: {hint}")
    shell.telemetry.emit(
        PipelineHalted(
            spec_id=spec_id,
            stage=outcome.stage,
            status=syn.status,
            reason="; ".join(syn.reasons)[:1000],
            resume_command=hint,
            run_id=ids.run_id,
            branch_id=ids.branch_id,
        )
    )
    return hint


#: what to change before resuming, per status: asking the same agents the same
#: question again most likely ends the same way
_WHY = {
    "conflict": "the agents disagree: the same question to the same agents likely ends "
    "the same way.",
    "degraded": "agents are missing (the reasons above): unless that passes (a timeout, an "
    "overload), asking again ends the same way.",
    "failed": "too few valid answers (the reasons above): unless that passes (a timeout, an "
    "overload), asking again ends the same way.",
}


def guidance(
    shell: Any,
    spec_id: str,
    outcome: StageOutcome,
    branch_id: str | None,
    *,
    single: bool,
) -> list[str]:
    """The halt block's "change first" lines: the spec file to edit, the exact command
    that asks again with a new goal, and where the stage's agents are configured."""
    from .agents import resolve
    from .config import SECTION

    stage = outcome.stage
    why = _WHY.get(outcome.synthesis.status, "no consensus.")
    spec_file = rel(Path(shell.cwd) / _specs_dir(shell) / spec_id / "spec.md", shell.cwd)
    on = f" {branch_id}" if branch_id else ""
    if single:
        goal = f'/spec-{stage} {spec_id}{on} --consensus "<GOAL>"'
    else:
        goal = f'/spec-auto {spec_id} --from {stage}{on} --consensus "<GOAL>"'
    try:  # the agents asked now, so the user sees what to replace
        plan = resolve(stage, _settings(shell), shell.agents)
        names = [spec.name for spec, _ in plan.workers]
        if plan.aggregator is not None:
            names.append(plan.aggregator.name)
        now = f" (now {', '.join(names)})"
    except Exception:
        now = ""
    return [
        f"  {why}",
        "  before resuming, change one of:",
        f"    the spec: edit {spec_file}",
        f"    the goal: {goal}",
        f"    the agents{now}: set [plugins.{SECTION}.stages.{stage}] agents in "
        "agentshell.toml, then /config reload",
    ]


def _settings(shell: Any) -> ConsensusSettings:
    from .commands import settings_of

    return settings_of(shell)


def _specs_dir(shell: Any) -> str:
    return _settings(shell).specs_dir


async def run_stages(
    shell: Any,
    settings: ConsensusSettings,
    *,
    spec_id: str,
    stages: tuple[Stage, ...],
    goal: str | None,
    ids: RunIds,
    command: str,
    done: dict[Stage, str],
    current: list[Stage],
    single: bool = False,
    stored: bool = False,
    forced_over: dict[str, str] | None = None,
) -> int:
    """Run ``stages`` in order; halt (exit 3) on a status in ``halt_on`` and ALWAYS on
    ``failed``: a failed stage wrote no result, so a later stage would run on a missing
    or stale predecessor (and keep paying for calls that cannot help)."""
    for stage in stages:
        current[:] = [stage]
        shell.output.info(f"▶ {stage} ({spec_id})")
        outcome = await run_stage(
            shell,
            settings,
            spec_id=spec_id,
            stage=stage,
            goal=goal,
            ids=ids,
            command=command,
            forced_over=forced_over,
        )
        done[stage] = outcome.synthesis.status
        report(shell, spec_id, outcome)
        shell.telemetry.emit(
            PipelineStageCompleted(
                spec_id=spec_id,
                stage=stage,
                status=outcome.synthesis.status,
                run_id=ids.run_id,
                branch_id=ids.branch_id,
                duration_s=outcome.duration_s,
            )
        )
        if outcome.synthesis.status in settings.halt_on or outcome.synthesis.status == "failed":
            halt(shell, spec_id, outcome, ids, single=single, stored=stored)
            return EXIT_HALT
    return 0


def warn_missing_inputs(
    shell: Any, settings: ConsensusSettings, spec_id: str, start: Stage
) -> list[Stage]:
    """A run that starts late (``--from``, ``/spec-<stage>``) without the earlier
    stages' results is allowed — a user may have reasons — but never silent: one
    warning names them (the prompt tells the agents too); the exit code is unchanged."""
    from .prompts import missing_results

    spec_dir = spec_paths(shell, settings, spec_id)[0]
    missing = missing_results(spec_dir, start)
    if missing:
        shell.output.warn(
            f"{start} runs without earlier results: {', '.join(missing)} "
            f"{'has' if len(missing) == 1 else 'have'} none in "
            f"{rel(spec_dir, shell.cwd)}/ (the agents are told so); "
            f"/spec-auto {spec_id} runs every stage in order"
        )
    return missing


def summary(
    shell: Any,
    spec_id: str,
    start: Stage,
    done: dict[Stage, str],
    forced_over: dict[str, str] | None = None,
) -> None:
    """The last line states the real statuses: "all ... reached consensus" only when
    every stage is ok, and says which earlier verdicts a --force run went past."""
    others = [f"{stage} {status}" for stage, status in done.items() if status != "ok"]
    if not others:
        forced = ", ".join(f"{s} {st}" for s, st in (forced_over or {}).items())
        tail = f" (forced over {forced})" if forced else ""
        shell.output.success(f"{spec_id}: all stages from {start} reached consensus{tail}")
    else:
        shell.output.info(
            f"! {spec_id}: finished without full consensus ({', '.join(others)}; "
            f"not in halt_on, so the pipeline went on)"
        )


async def run(
    shell: Any,
    settings: ConsensusSettings,
    *,
    spec_id: str,
    goal: str | None,
    from_stage: Stage | None,
    resume: bool,
    single: bool,
    command: str,
    branch_id: str | None = None,
    force: bool = False,
) -> int:
    """A pipeline (``single`` False: from ``from_stage`` to the end) or one stage.
    ``branch_id`` is the branch ``resume`` continues or ``from_stage`` forks from.
    A pipeline started ``--from`` a later stage is gated on the earlier stages' latest
    verdicts first (:mod:`.gate`); ``force`` goes past them and records it."""
    spec_paths(shell, settings, spec_id)  # a bad id or a missing spec fails before anything runs
    forced_over: dict[str, str] = {}
    if from_stage is not None and not single and not resume:
        from .gate import gate

        go_on, forced_over = gate(
            shell, settings, spec_id=spec_id, start=from_stage, branch_id=branch_id, force=force
        )
        if not go_on:
            return EXIT_HALT  # before a run exists: nothing is written
    # secrets never reach a prompt, the store or an artefact; the redacted goal is the
    # one every prompt (and so every prompt hash) holds, so a resume matches it
    goal = (redact(goal).strip() or None) if goal else None
    ids, fork, goal, stored = begin(
        shell,
        spec_id=spec_id,
        goal=goal,
        from_stage=from_stage,
        resume=resume,
        branch_id=branch_id,
    )
    start: Stage = from_stage or (fork if resume and fork else None) or "plan"
    stages = (start,) if single else stages_from(start)
    shell.output.info(f"run {short_id(ids.run_id)} · branch {ids.branch_id}")
    started = time.monotonic()
    shell.telemetry.emit(  # opens the run's trace: its stages hang under it
        PipelineRunStarted(
            spec_id=spec_id,
            command=command,
            stages=list(stages),
            run_id=ids.run_id,
            branch_id=ids.branch_id,
        )
    )
    warn_missing_inputs(shell, settings, spec_id, start)
    done: dict[Stage, str] = {}
    current: list[Stage] = [start]
    try:
        code = await run_stages(
            shell,
            settings,
            spec_id=spec_id,
            stages=stages,
            goal=goal,
            ids=ids,
            command=command,
            done=done,
            current=current,
            single=single,
            stored=stored,
            forced_over=forced_over,
        )
    except asyncio.CancelledError:
        finish(shell, ids, "cancelled", spec_id, started, failing=True)
        # a resume of the branch starts at its fork stage (or plan); say where this began
        natural = fork or "plan"
        again = continue_hint(
            spec_id,
            current[0],
            ids.branch_id if stored else None,
            single=single,
            start=start if start != natural else None,
        )
        shell.output.info(f"cancelled at {current[0]}; continue with: {again}")
        raise
    except BaseException:
        finish(shell, ids, "failed", spec_id, started, failing=True)
        raise
    finish(shell, ids, "halted" if code == EXIT_HALT else "ok", spec_id, started)
    if code == 0 and not single:
        summary(shell, spec_id, start, done, forced_over)
    return code
