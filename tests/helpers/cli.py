"""The environment for running ``agentshell`` in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pexpect

from tests.helpers.paths import REPO


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


def agentshell(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``agentshell ARGS`` in a child process; stdin is ``stdin`` or closed (never the
    test runner's terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "agentshell", *args],
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def spawn_repl(
    home: Path,
    *plugins: str,
    timeout: float = 30,
    dimensions: tuple[int, int] = (40, 140),
    cwd: Path | None = None,
    **env: str,
) -> pexpect.spawn[str]:
    """The interactive shell in a real pty (rows x columns ``dimensions``, no
    cursor-position requests), with each of ``plugins`` loaded by ``-p``."""
    args = ["-m", "agentshell"]
    for plugin in plugins:
        args += ["-p", plugin]
    return pexpect.spawn(
        sys.executable,
        args,
        env=child_env(home, **{"PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm", **env}),
        encoding="utf-8",
        timeout=timeout,
        dimensions=dimensions,
        cwd=str(cwd) if cwd is not None else None,
    )


def run_in(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``agentshell ARGS`` run in ``cwd`` (its ``agentshell.toml`` applies) with
    ``cwd/home`` as AGENTSHELL_HOME; stdin closed."""
    return subprocess.run(
        [sys.executable, "-m", "agentshell", *args],
        env=child_env(cwd / "home"),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
