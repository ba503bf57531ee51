"""Branch ids, stage order and the inheritance rule — pure functions, no I/O.

A branch is one line of pipeline attempts for a spec. A child branch is forked from
its parent at a stage: the stages *before* the fork are inherited from the parent (and,
transitively, from the parent's own ancestors up to each link's fork point); the stage
at the fork and every later stage belong to the child alone. Siblings never share.
"""

from __future__ import annotations

from collections.abc import Callable

# one spec-id rule, one branch-id shape and one stage order for both plugins: the
# consensus plugin's public modules (same distribution), so what the pipeline accepts
# is what the store takes
from speckit_consensus.specid import (
    check_spec_id,
    is_valid_spec_id as valid_spec_id,
    new_branch_id,
    parse_branch_id,
)
from speckit_consensus.stages import STAGES


def normalize_stage(stage: str) -> str:
    """``plan`` or ``spec-plan`` -> ``plan``; anything else is a ValueError."""
    name = stage.strip().lower().removeprefix("spec-")
    if name not in STAGES:
        raise ValueError(f"unknown stage {stage!r} (stages: {', '.join(STAGES)})")
    return name


def stage_index(stage: str) -> int | None:
    try:
        return STAGES.index(stage)
    except ValueError:
        return None


#: branch id -> (parent branch id, fork stage), or None when the branch is unknown
Lineage = Callable[[str], tuple[str | None, str | None] | None]


def eligible_branches(branch_id: str, stage: str, lineage: Lineage) -> list[str]:
    """The branches whose outputs for ``stage`` a call on ``branch_id`` may reuse,
    nearest first: the branch itself, then each ancestor as long as ``stage`` comes
    before every fork point on the way up (the minimum of the fork stages so far)."""
    chain = [branch_id]
    index = stage_index(stage)
    if index is None:  # an unknown stage is never inherited
        return chain
    limit = len(STAGES)
    current = branch_id
    seen = {branch_id}
    while True:
        info = lineage(current)
        if info is None:
            break
        parent, fork = info
        if parent is None or parent in seen:
            break
        fork_index = stage_index(fork) if fork else None
        limit = min(limit, fork_index if fork_index is not None else 0)
        if index >= limit:  # limit only shrinks going up: no further ancestor qualifies
            break
        chain.append(parent)
        seen.add(parent)
        current = parent
    return chain


def ancestors(branch_id: str, lineage: Lineage) -> list[str]:
    """Every ancestor of ``branch_id`` (parent first), cycles cut."""
    out: list[str] = []
    seen = {branch_id}
    current = branch_id
    while True:
        info = lineage(current)
        if info is None or info[0] is None or info[0] in seen:
            return out
        current = info[0]
        seen.add(current)
        out.append(current)


__all__ = [
    "STAGES",
    "Lineage",
    "ancestors",
    "check_spec_id",
    "eligible_branches",
    "new_branch_id",
    "normalize_stage",
    "parse_branch_id",
    "stage_index",
    "valid_spec_id",
]
