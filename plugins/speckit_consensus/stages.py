"""Stage names, their order, and the one parser every command (and every printed
resume hint) goes through — so a hint the plugin prints is always one it accepts."""

from __future__ import annotations

import re
from typing import Literal

from agentshell.errors import CommandError

Stage = Literal["plan", "tasks", "implement", "validate", "audit", "unlock"]
STAGES: tuple[Stage, ...] = ("plan", "tasks", "implement", "validate", "audit", "unlock")

#: every spelling the parser accepts: ``plan``, ``spec-plan`` and ``/spec-plan``
STAGE_CHOICES: tuple[str, ...] = (*STAGES, *(f"spec-{s}" for s in STAGES))

_SPEC_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


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
    """A spec id is one safe path component: it never escapes the specs or evidence dir."""
    if not _SPEC_ID.match(spec_id) or ".." in spec_id:
        raise CommandError(
            f"invalid spec id {spec_id!r}: use letters, digits, '.', '_' or '-' "
            "(start with a letter or digit, no '..', at most 128 characters)"
        )
    return spec_id


def resume_hint(spec_id: str, stage: Stage) -> str:
    """The exact line that resumes a halted pipeline at ``stage``."""
    return f"/spec-auto {validate_spec_id(spec_id)} --from {stage}"
