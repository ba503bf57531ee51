"""The ``[plugins.resume]`` configuration section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ResumeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    #: the SQLite file; default ``<data dir>/speckit/resume.sqlite3``; a relative path is
    #: taken from the working directory (so a project can keep its own store)
    path: str | None = None
    #: how long a write waits for another process holding the lock before retrying
    busy_timeout_ms: int = Field(default=5000, ge=0, le=600_000)
    #: FULL survives power loss; NORMAL survives a killed process and is faster
    synchronous: Literal["FULL", "NORMAL"] = "FULL"


__all__ = ["ResumeSettings"]
