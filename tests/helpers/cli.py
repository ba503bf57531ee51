"""The environment for running ``agentshell`` in a child process."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def child_env(home: Path, *, sinks: str | None = "null", **extra: str) -> dict[str, str]:
    """``os.environ`` without the developer's ``AGENTSHELL_*`` and ``CODEX_*`` settings
    (they would change what the child does), with ``home`` as AGENTSHELL_HOME, the repo
    importable (test plugins), telemetry to ``sinks`` (None: the default) and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTSHELL_", "CODEX_"))}
    env.update(AGENTSHELL_HOME=str(home), PYTHONPATH=str(REPO))
    if sinks is not None:
        env["AGENTSHELL_TELEMETRY_SINKS"] = sinks
    env.update(extra)
    return env
