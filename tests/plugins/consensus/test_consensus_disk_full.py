"""Stage Markdown and evidence on a full disk (a real tmpfs): the stage fails with one
line naming the file it could not write (never a hidden temp name), and leaves neither
temp files nor half an evidence set behind."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import REPO, without_demo_outputs
from tests.helpers.smallfs import fill, small_fs

pytestmark = pytest.mark.e2e

SPEC = "SPEC-KIT-DEMO"


def _run(cwd: Path, line: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTSHELL_", "CODEX_"))}
    env.update(
        AGENTSHELL_HOME=str(cwd.parent / "home"),
        AGENTSHELL_TELEMETRY_SINKS="null",
        AGENTSHELL_DISABLE_PLUGINS="faults,resume",
        **extra,
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


def _one_error(done: subprocess.CompletedProcess[str]) -> str:
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out
    for noise in ("Traceback", "OSError", ".tmp"):
        assert noise not in out
    return errors[0]


def test_stage_markdown_on_a_full_disk_names_the_file(isolated_env: Path) -> None:
    with small_fs(isolated_env / "project", "1m") as project:
        shutil.copytree(REPO / "docs" / SPEC, project / "docs" / SPEC, ignore=without_demo_outputs)
        fill(project)
        line = _one_error(_run(project, f"/spec-plan {SPEC}"))
        target = project / "docs" / SPEC / "plan.md"
        assert f"cannot write {target}: No space left on device" in line
        assert sorted(p.name for p in (project / "docs" / SPEC).iterdir()) == ["spec.md"]


def test_evidence_on_a_full_disk_names_the_file_and_keeps_no_half_set(
    isolated_env: Path,
) -> None:
    project = isolated_env / "project"
    shutil.copytree(REPO / "docs" / SPEC, project / "docs" / SPEC, ignore=without_demo_outputs)
    with small_fs(isolated_env / "evidence", "1m") as evidence:
        folder = evidence / "consensus" / SPEC
        folder.mkdir(parents=True)
        (project / "agentshell.toml").write_text(
            f'[plugins.consensus]\nevidence = true\nevidence_dir = "{evidence}"\n'
        )
        fill(evidence)
        line = _one_error(_run(project, f"/spec-plan {SPEC}"))
        assert re.search(
            rf"cannot write {re.escape(str(folder))}/[^/ ]+\.jsonl?: No space left on device",
            line,
        ), line
        assert list(folder.iterdir()) == []  # no agent file without its synthesis, no temp


def _killed_writer(target: Path) -> Path:
    """A real process killed in the middle of an atomic write of ``target`` (stopped in
    fsync, then SIGKILLed): returns the temp file it left."""
    code = (
        "import os, sys\n"
        "from agentshell.files import atomic_write\n"
        "os.fsync = lambda fd: (print('writing', flush=True), sys.stdin.read())\n"
        f"atomic_write({str(target)!r}, 'half')\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline() == "writing\n"
    left = list(target.parent.glob(f".{target.name}.{child.pid}.*.tmp"))
    child.kill()
    child.wait()
    assert len(left) == 1
    return left[0]


def test_a_run_clears_temp_files_of_killed_writers_but_not_of_live_ones(
    isolated_env: Path,
) -> None:
    project = isolated_env / "project"
    shutil.copytree(REPO / "docs" / SPEC, project / "docs" / SPEC, ignore=without_demo_outputs)
    evidence = project / "evidence"
    folder = evidence / "consensus" / SPEC
    folder.mkdir(parents=True)
    (project / "agentshell.toml").write_text(
        f'[plugins.consensus]\nevidence = true\nevidence_dir = "{evidence}"\n'
    )
    stale_evidence = _killed_writer(folder / "plan_20260101T000000000Z_gemini.json")
    stale_markdown = _killed_writer(project / "docs" / SPEC / "plan.md")
    # a writer that is still running (another shell writing this spec right now)
    live = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)  # fmt: skip
    try:
        live_tmp = folder / f".plan_20260101T000000001Z_claude.json.{live.pid}.abcd1234.tmp"
        live_tmp.write_text("in progress")
        done = _run(project, f"/spec-plan {SPEC}")
        assert done.returncode == 0, done.stdout + done.stderr
        assert not stale_evidence.exists()
        assert not stale_markdown.exists()
        assert live_tmp.exists()
    finally:
        live.kill()
        live.wait()
