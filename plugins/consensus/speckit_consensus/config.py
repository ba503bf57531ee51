"""``[plugins.consensus]``: where specs and evidence live, when /spec-auto halts, and
per-stage agents, roles, aggregator, quorum, timeout and prompt template."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from .stages import STAGES, Stage

Status = Literal["ok", "degraded", "conflict", "failed"]

SECTION = "consensus"
EVIDENCE_ENV = "SPEC_KIT_TELEMETRY_ENABLED"
HALT_DEFAULT: tuple[Status, ...] = ("conflict", "degraded", "failed")


class StageSettings(BaseModel):
    """``[plugins.consensus.stages.<stage>]`` (falls back to the section-wide values)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    agents: list[str] | None = None
    roles: dict[str, str] = Field(default_factory=dict)  # agent -> role for this stage
    aggregator: str | None = None
    quorum: int | None = Field(default=None, ge=1)
    timeout_s: float | None = Field(default=None, gt=0, alias="timeout")
    template: str | None = None  # a shipped prompt version ("20251002-plan-a") or a file path


class ConsensusSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    specs_dir: str = "docs"
    evidence_dir: str = "docs/SPEC-OPS-004-integrated-coder-hooks/evidence"
    evidence: bool = False
    halt_on: list[Status] = Field(default_factory=lambda: list(HALT_DEFAULT))
    agents: list[str] | None = None  # every stage's agents unless the stage sets its own
    aggregator: str | None = None
    # validate_default: the stage checks below also cover stages left to their defaults
    stages: dict[Stage, StageSettings] = Field(default_factory=dict, validate_default=True)
    # the recorded demo agents replay their recorded latency scaled by this (0: none)
    demo_latency_scale: float = Field(default=0.05, ge=0)

    @field_validator("stages")
    @classmethod
    def _stages_resolve(
        cls, stages: dict[Stage, StageSettings], info: ValidationInfo
    ) -> dict[Stage, StageSettings]:
        """What would otherwise fail only when a stage runs, caught when the config is
        checked: each stage's agents exist, have a known role, hold the aggregator, and
        are at least the quorum. Needs the host config (``info.context["config"]``)."""
        config = (info.context or {}).get("config")
        if config is None:
            return stages
        problems = stage_problems(
            stages,
            agents=info.data.get("agents"),
            aggregator=info.data.get("aggregator"),
            configured=getattr(config, "agents", {}),
        )
        if problems:
            raise ValueError("; ".join(problems))
        return stages

    def stage(self, stage: Stage) -> StageSettings:
        return self.stages.get(stage) or StageSettings()

    def evidence_enabled(self, environ: Mapping[str, str] | None = None) -> bool:
        env = os.environ if environ is None else environ
        return self.evidence or env.get(EVIDENCE_ENV, "").strip().lower() in {"1", "true", "yes"}


_CANONICAL_ROLES = {"researcher", "synthesizer", "coder", "aggregator"}


def stage_problems(
    stages: Mapping[Stage, StageSettings],
    *,
    agents: list[str] | None,
    aggregator: str | None,
    configured: Mapping[str, Any],
) -> list[str]:
    """One line per stage whose agents would not resolve (see agents.resolve, which
    says the same at run time): ``configured`` is the host's ``[agents]``."""
    from .agents import DEFAULT_AGENTS, default_names

    roles: dict[str, str] = {name: role for name, (role, _) in DEFAULT_AGENTS.items()}
    known = set(DEFAULT_AGENTS)
    for name, cfg in configured.items():
        if getattr(cfg, "enabled", True):
            known.add(name)
            roles[name] = getattr(cfg, "role", "") or roles.get(name, "")
        else:  # a disabled agent is gone, its demo namesake with it
            known.discard(name)
    problems: list[str] = []
    roles_known = ", ".join(sorted(_CANONICAL_ROLES))
    # one line per problem, naming every stage it affects ("agent 'x' is not configured")
    bad: dict[str, list[str]] = {}
    for stage in STAGES:
        cfg = stages.get(stage) or StageSettings()
        names = cfg.agents or agents or default_names(stage)
        unknown = [n for n in names if n not in known]
        if unknown:
            listed = ", ".join(sorted(known)) or "none"
            what = f"agent {unknown[0][:40]!r} is not configured (known: {listed})"
            bad.setdefault(what, []).append(stage)
            continue
        for name in names:
            text = cfg.roles.get(name) or roles.get(name) or "synthesizer"
            if text.strip().lower() in _CANONICAL_ROLES:
                continue
            from .schemas import normalize_role  # only for an unusual role: it is heavy

            if normalize_role(text) is None:
                what = f"agent {name} has unknown role {text[:40]!r} (roles: {roles_known})"
                bad.setdefault(what, []).append(stage)
        chosen = cfg.aggregator or aggregator
        if chosen is not None and chosen not in names:
            problems.append(f"stage {stage}: aggregator {chosen!r} is not one of {names}")
        if cfg.quorum is not None and cfg.quorum > len(names):
            problems.append(
                f"stage {stage}: quorum {cfg.quorum} exceeds its {len(names)} agents "
                f"({', '.join(names)})"
            )
    return [
        f"{'stages' if len(where) > 1 else 'stage'} {', '.join(where)}: {what}"
        for what, where in bad.items()
    ] + problems
