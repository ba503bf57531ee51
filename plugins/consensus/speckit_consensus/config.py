"""``[plugins.consensus]``: where specs and evidence live, when /spec-auto halts, and
per-stage agents, roles, aggregator, quorum, timeout and prompt template."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .stages import Stage

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
    stages: dict[Stage, StageSettings] = Field(default_factory=dict)
    # the recorded demo agents replay their recorded latency scaled by this (0: none)
    demo_latency_scale: float = Field(default=0.05, ge=0)

    def stage(self, stage: Stage) -> StageSettings:
        return self.stages.get(stage) or StageSettings()

    def evidence_enabled(self, environ: Mapping[str, str] | None = None) -> bool:
        env = os.environ if environ is None else environ
        return self.evidence or env.get(EVIDENCE_ENV, "").strip().lower() in {"1", "true", "yes"}
