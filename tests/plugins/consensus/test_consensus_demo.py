"""The offline demo (recorded agents, replay backend, no keys) through the real CLI,
the resume-store contract, and a run with every built-in plugin loaded."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from speckit_consensus.stages import STAGES
from tests.helpers.paths import REPO, without_demo_outputs

FAST = "[telemetry]\nsinks = []\n\n[plugins.consensus]\ndemo_latency_scale = 0\n"


@pytest.fixture
def demo(isolated_env: Path) -> Path:
    for spec in ("SPEC-KIT-DEMO", "SPEC-KIT-CONFLICT"):
        shutil.copytree(
            REPO / "docs" / spec, isolated_env / "docs" / spec, ignore=without_demo_outputs
        )
    (isolated_env / "agentshell.toml").write_text(FAST)
    return isolated_env


def cli(*commands: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPEC_KIT_TELEMETRY_ENABLED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "agentshell", "run", *commands],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.e2e
def test_demo_runs_offline_through_the_cli(demo: Path) -> None:
    done = cli("/spec-auto SPEC-KIT-DEMO", cwd=demo)
    assert done.returncode == 0, done.stderr
    for stage in STAGES:
        assert f"✓ {stage}: ok" in done.stdout
        assert (demo / "docs" / "SPEC-KIT-DEMO" / f"{stage}.md").is_file()
    assert "(recorded)" in done.stdout
    evidence = demo / "docs/SPEC-OPS-004-integrated-coder-hooks/evidence/consensus/SPEC-KIT-DEMO"
    assert len(list(evidence.glob("*_synthesis.json"))) == 6
    assert '"recorded": true' in next(evidence.glob("spec-plan_*_gemini.json")).read_text()


@pytest.mark.e2e
def test_conflict_demo_halts_at_audit_with_a_working_resume_line(demo: Path) -> None:
    halted = cli("/spec-auto SPEC-KIT-CONFLICT", cwd=demo)
    assert halted.returncode == 3, halted.stderr
    assert "halted at audit: consensus conflict" in halted.stdout
    assert "resume with: /spec-auto SPEC-KIT-CONFLICT --from audit" in halted.stdout
    assert "unlock" not in halted.stdout.split("halted at audit")[0].split("▶ audit")[1]
    # the recordings still disagree, so resuming halts at audit again — but it parses and runs
    again = cli("/spec-auto SPEC-KIT-CONFLICT --from audit", cwd=demo)
    assert again.returncode == 3 and "▶ plan" not in again.stdout and "▶ audit" in again.stdout


class FakeResume:
    """A test double for the resume plugin's published object: this test checks the
    calls the consensus plugin makes (the real store is tested in test_resume_*)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def begin_run(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("begin_run", kw))
        return {
            "run_id": "run-1",
            "branch_id": "B-1",
            "parent_branch_id": None,
            "fork_stage": "validate",
        }

    def finish_run(self, run_id: str, status: str) -> None:
        self.calls.append(("finish_run", {"run_id": run_id, "status": status}))

    def record_stage(self, **kw: Any) -> None:
        self.calls.append(("record_stage", kw))

    def record_validation(self, **kw: Any) -> None:
        self.calls.append(("record_validation", kw))


async def test_resume_contract(
    make_shell: Any, output: Any, demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,replay")
    shell = await make_shell()
    fake = FakeResume()
    shell.state["speckit.resume"] = fake
    assert await shell.execute("/spec-auto SPEC-KIT-CONFLICT --resume") == 3
    kinds = [k for k, _ in fake.calls]
    begin = fake.calls[0][1]
    assert begin == {
        "spec_id": "SPEC-KIT-CONFLICT",
        "goal": None,
        "from_stage": None,
        "resume": True,
    }
    # --resume with no --from starts where the store says the branch forks
    stages = [kw["stage"] for k, kw in fake.calls if k == "record_stage"]
    assert stages == ["validate", "audit"]
    assert kinds.count("record_validation") == 6 and kinds[-1] == "finish_run"
    assert fake.calls[-1][1] == {"run_id": "run-1", "status": "halted"}
    audit = [kw for k, kw in fake.calls if k == "record_stage"][-1]
    assert audit["status"] == "conflict" and audit["conflicts"] and audit["branch_id"] == "B-1"
    validation = next(kw for k, kw in fake.calls if k == "record_validation")
    assert validation["valid"] and len(validation["prompt_hash"]) == 64
    assert await shell.execute("/spec-plan SPEC-KIT-DEMO --consensus 'small'") == 0
    assert fake.calls[-1] == ("finish_run", {"run_id": "run-1", "status": "ok"})
    begin = next(kw for k, kw in reversed(fake.calls) if k == "begin_run")
    assert begin["from_stage"] == "plan" and begin["goal"] == "small"


async def test_demo_with_every_builtin_plugin_loaded(
    make_shell: Any, output: Any, demo: Path
) -> None:
    shell = await make_shell()
    assert await shell.execute("/spec-auto SPEC-KIT-DEMO") == 0, output.errors
    assert "✓ unlock: ok" in output.text
    assert await shell.execute("/spec-status") == 0
    assert output.text.count("│ ok ") >= 6
