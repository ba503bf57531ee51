"""``[plugins.faults]``: switching fault injection on and targeting it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FaultsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: inject faults even without CODEX_FAULTS_SCOPE=spec_kit
    enabled: bool = False
    #: only these agents get faults (empty: every agent)
    agents: list[str] = Field(default_factory=list)
    #: only calls of these stages (call.context["stage"]) get faults (empty: any call)
    stages: list[str] = Field(default_factory=list)
