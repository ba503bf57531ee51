"""Stage names, their order, and the one parser every command (and every printed
resume hint) goes through — so a hint the plugin prints is always one it accepts."""

from __future__ import annotations

from typing import Literal

from agentshell.errors import CommandError

from .specid import parse_branch_id, spec_id_error

Stage = Literal["plan", "tasks", "implement", "validate", "audit", "unlock"]
STAGES: tuple[Stage, ...] = ("plan", "tasks", "implement", "validate", "audit", "unlock")

#: the theme style of each consensus status (agentshell.theme); tables colour the words
STATUS_STYLES = {"ok": "success", "degraded": "warning", "conflict": "conflict", "failed": "error"}

#: every spelling the parser accepts: ``plan``, ``spec-plan`` and ``/spec-plan``
STAGE_CHOICES: tuple[str, ...] = (*STAGES, *(f"spec-{s}" for s in STAGES))


def parse_stage(text: str) -> Stage:
    """``plan``, ``spec-plan`` or ``/spec-plan`` (any case) -> ``plan``."""
    word = text.strip().lower().lstrip("/")
    if word.startswith("spec-"):
        word = word[len("spec-") :]
    for stage in STAGES:
        if stage == word:
            return stage
    raise CommandError(f"unknown stage {text!r}; stages: {', '.join(STAGES)} (or spec-<stage>)")


def stages_from(start: Stage) -> tuple[Stage, ...]:
    """The stages a pipeline runs when it starts at ``start``."""
    return STAGES[STAGES.index(start) :]


def previous_stages(stage: Stage) -> tuple[Stage, ...]:
    return STAGES[: STAGES.index(stage)]


def validate_spec_id(spec_id: str) -> str:
    """A spec id is one safe path component: it never escapes the specs or evidence dir
    (the rule lives in :mod:`.specid`, shared with the resume plugin)."""
    problem = spec_id_error(spec_id)
    if problem is not None:
        raise CommandError(problem)
    return spec_id


def check_branch_of(spec_id: str, branch_id: str, command: str) -> str:
    """``branch_id`` when it is shaped like a branch id of ``spec_id``, else a clear error."""
    parsed = parse_branch_id(branch_id)
    if parsed is None:
        raise CommandError(
            f"/{command}: {branch_id!r} is not a branch id "
            f"(<SPEC-ID>-<YYYYMMDDHHMMSS>-<8 hex>, see /branches {spec_id})"
        )
    if parsed[0] != spec_id:
        raise CommandError(
            f"/{command}: {branch_id} is a branch of {parsed[0]}, not of {spec_id} "
            f"(see /branches {spec_id})"
        )
    return branch_id


def resume_hint(
    spec_id: str, stage: Stage, branch_id: str | None = None, *, single: bool = False
) -> str:
    """The exact line that re-runs a halted ``stage``: on a child of ``branch_id`` (the
    stage and the later ones run again, the earlier ones are inherited); ``single``
    re-runs just that stage, as the ``/spec-<stage>`` command that halted."""
    spec_id = validate_spec_id(spec_id)
    on = f" {branch_id}" if branch_id else ""
    if single:
        return f"/spec-{stage} {spec_id}{on}"
    return f"/spec-auto {spec_id} --from {stage}{on}"


def continue_hint(
    spec_id: str,
    stage: Stage,
    branch_id: str | None,
    *,
    single: bool = False,
    start: Stage | None = None,
) -> str:
    """The exact line that continues a cancelled run on the same branch: the finished
    answers are replayed from the store, the rest run. ``start`` is where a pipeline
    began when that is not where a resume of the branch would begin."""
    spec_id = validate_spec_id(spec_id)
    on = f" --resume {branch_id}" if branch_id else ""
    if single:
        return f"/spec-{stage} {spec_id}{on}"
    return f"/spec-auto {spec_id}{on}" + (f" --from {start}" if start else "")
