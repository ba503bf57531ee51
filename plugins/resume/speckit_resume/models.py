"""The records the store reads and writes (pydantic: they cross the plugin boundary)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from agentshell.errors import AgentshellError

RunStatus = Literal["ok", "halted", "failed", "cancelled"]
RUN_STATUSES: tuple[str, ...] = ("ok", "halted", "failed", "cancelled")


class StoreError(AgentshellError):
    """A store problem worth one clear line (newer schema, unusable file...)."""


class RunStart(BaseModel):
    run_id: str
    spec_id: str
    branch_id: str
    parent_branch_id: str | None
    fork_stage: str | None
    resumed: bool


class StoredOutput(BaseModel):
    id: int
    run_id: str
    branch_id: str
    spec_id: str
    stage: str
    agent: str
    model: str | None
    prompt_hash: str
    prompt_version: str | None
    content: str | None
    parsed: Any | None
    usage: dict[str, Any]
    cost_usd: float | None
    valid: bool | None
    created_at: float
    recorded: bool = False


class OutputRecord(BaseModel):
    """One agent output (or failure) to store."""

    run_id: str
    branch_id: str
    spec_id: str
    stage: str
    agent: str
    prompt_hash: str
    model: str | None = None
    role: str | None = None
    prompt_version: str | None = None
    content: str | None = None
    parsed: Any | None = None
    usage: dict[str, Any] = {}
    cost_usd: float | None = None
    latency_ms: float | None = None
    attempts: int = 1
    status: Literal["ok", "error"] = "ok"
    error: str | None = None
    created_at: float | None = None
    recorded: bool = False  # a recorded demo answer (replay backend), not a live model


class BranchRow(BaseModel):
    branch_id: str
    spec_id: str
    parent_branch_id: str | None
    fork_stage: str | None
    goal: str | None
    created_at: float


class RunRow(BaseModel):
    run_id: str
    branch_id: str
    goal: str | None
    from_stage: str | None
    resumed: bool
    replayed: int
    replayed_tokens: int = 0  # of the answers replayed from the store (not in ``tokens``)
    started_at: float
    finished_at: float | None
    status: str
    calls: int = 0
    errors: int = 0
    tokens: int = 0
    cost_usd: float | None = None  # None: nothing priced (recorded answers, or no calls)
    unpriced: int = 0  # live answers whose price is unknown: the total is then unknown
    recorded: int = 0


__all__ = [
    "RUN_STATUSES",
    "BranchRow",
    "OutputRecord",
    "RunRow",
    "RunStart",
    "RunStatus",
    "StoreError",
    "StoredOutput",
]
