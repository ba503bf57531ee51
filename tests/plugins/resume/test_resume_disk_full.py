"""The resume store's disk fills in the middle of ``/spec-auto`` (a real 512 KiB tmpfs):
the run fails with one line naming the store and the cause instead of reporting
consensus, what was stored stays whole, and ``--resume`` once there is space again
replays exactly what was stored."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import REPO, without_demo_outputs
from tests.helpers.smallfs import small_fs

pytestmark = pytest.mark.e2e

SPEC = "SPEC-KIT-DEMO"


def _run(cwd: Path, line: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTSHELL_", "CODEX_"))}
    env.update(
        AGENTSHELL_HOME=str(cwd / "home"),
        AGENTSHELL_TELEMETRY_SINKS="null",
        AGENTSHELL_DISABLE_PLUGINS="faults",
    )
    return subprocess.run(
        [sys.executable, "-m", "agentshell", "run", line],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_spec_auto_fails_with_one_line_when_the_resume_store_disk_fills(
    isolated_env: Path,
) -> None:
    shutil.copytree(REPO / "docs" / SPEC, isolated_env / "docs" / SPEC, ignore=without_demo_outputs)
    with small_fs(isolated_env / "store", "512k") as fs:
        db = fs / "resume.sqlite3"
        (isolated_env / "agentshell.toml").write_text(f'[plugins.resume]\npath = "{db}"\n')

        full = _run(isolated_env, f"/spec-auto {SPEC}")
        out = full.stdout + full.stderr
        assert full.returncode != 0, out
        assert "reached consensus" not in out
        errors = [line for line in out.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, out
        assert str(db) in errors[0] and "database or disk is full" in errors[0]
        for noise in ("Traceback", "OperationalError", "raised", ".tmp"):
            assert noise not in out

        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            stored = conn.execute(
                "SELECT COUNT(*) FROM agent_outputs WHERE status = 'ok'"
            ).fetchone()[0]
        assert stored > 0, "the disk filled before any output: the test proves nothing"

        subprocess.run(["mount", "-o", "remount,size=8m", str(fs)], check=True)
        again = _run(isolated_env, f"/spec-auto {SPEC} --resume")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "all stages from plan reached consensus" in again.stdout
        # every stored answer is replayed, none is asked again
        assert again.stdout.count("cached)") == stored
