"""The spec-kit documents' own commands, run exactly as they are written there: the
"Next Session Prompt" through ``agentshell run`` (passes on SPEC-KIT-DEMO, halts on
SPEC-KIT-CONFLICT), then their evidence checks — the ``jq`` and ``find`` lines —
verbatim in a shell, against the evidence that run wrote under a temporary cwd."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from speckit_consensus.stages import STAGES
from tests.helpers.paths import REPO, without_demo_outputs

pytestmark = pytest.mark.e2e

FAST = "[telemetry]\nsinks = []\n\n[plugins.consensus]\ndemo_latency_scale = 0\n"

# the documents' lines, character for character
NEXT_SESSION_PROMPT = (
    "/set-env SPEC_KIT_TELEMETRY_ENABLED=1",
    '/spec-plan SPEC-KIT-DEMO --consensus "Validate halt gating"',
    "/spec-auto SPEC-KIT-DEMO --from plan",
)
JQ_CHECK = (
    "jq '.status, .missing_agents, .consensus.conflicts' "
    "docs/SPEC-OPS-004-integrated-coder-hooks/evidence/consensus/SPEC-KIT-DEMO/"
    "spec-plan_*_synthesis.json"
)
FIND_CHECK = (
    "find docs/SPEC-OPS-004-integrated-coder-hooks/evidence/consensus/SPEC-KIT-DEMO "
    "-maxdepth 1 -type f | sort"
)
FILE = re.compile(
    r"^docs/SPEC-OPS-004-integrated-coder-hooks/evidence/consensus/SPEC-KIT-DEMO/"
    r"spec-(plan|tasks|implement|validate|audit|unlock)_\d{8}T\d{9}Z_"
    r"(gemini\.json|claude\.json|gpt_pro\.json|gpt_codex\.json|telemetry\.jsonl|synthesis\.json)$"
)


@pytest.fixture
def work(isolated_env: Path) -> Path:
    for spec in ("SPEC-KIT-DEMO", "SPEC-KIT-CONFLICT"):
        shutil.copytree(
            REPO / "docs" / spec, isolated_env / "docs" / spec, ignore=without_demo_outputs
        )
    (isolated_env / "agentshell.toml").write_text(FAST)
    return isolated_env


def agentshell_run(*lines: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentshell", "run", *lines],
        cwd=cwd,
        env=dict(os.environ),  # no SPEC_KIT_TELEMETRY_ENABLED: the prompt's /set-env sets it
        capture_output=True,
        text=True,
        timeout=120,
    )


def sh(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """One line as a user types it into a POSIX shell (globs, quotes, pipes)."""
    return subprocess.run(
        ["/bin/sh", "-c", line], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_next_session_prompt_runs_as_written_and_the_evidence_checks_pass(work: Path) -> None:
    assert shutil.which("jq"), "jq is needed (apt-get install jq; .ci/run installs it)"
    assert "SPEC_KIT_TELEMETRY_ENABLED" not in os.environ
    done = agentshell_run(*NEXT_SESSION_PROMPT, cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "✓ plan: ok" in done.stdout
    assert "✓ SPEC-KIT-DEMO: all stages from plan reached consensus" in done.stdout

    jq = sh(JQ_CHECK, work)
    assert jq.returncode == 0, jq.stderr
    # two plan runs (/spec-plan, then /spec-auto --from plan): each record's three values
    assert jq.stdout.split() == ['"ok"', "[]", "[]"] * 2

    found = sh(FIND_CHECK, work)
    assert found.returncode == 0, found.stderr
    files = found.stdout.splitlines()
    assert files == sorted(files) and all(FILE.match(f) for f in files), files
    # plan twice, every later stage once: three agents (four at implement), telemetry, synthesis
    per_stage = {stage: sum(f"/spec-{stage}_" in f for f in files) for stage in STAGES}
    assert per_stage == {
        "plan": 10,
        "tasks": 5,
        "implement": 6,
        "validate": 5,
        "audit": 5,
        "unlock": 5,
    }


def test_next_session_prompt_halts_on_the_conflicting_spec(work: Path) -> None:
    lines = [line.replace("SPEC-KIT-DEMO", "SPEC-KIT-CONFLICT") for line in NEXT_SESSION_PROMPT]
    done = agentshell_run(*lines, cwd=work)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "halted at audit: consensus conflict" in done.stdout
    assert "▶ unlock" not in done.stdout
    folder = work / "docs/SPEC-OPS-004-integrated-coder-hooks/evidence/consensus/SPEC-KIT-CONFLICT"
    jq = sh(
        "jq -r .status "
        "docs/SPEC-OPS-004-integrated-coder-hooks/evidence/consensus/SPEC-KIT-CONFLICT/"
        "spec-audit_*_synthesis.json",
        work,
    )
    assert jq.stdout.split() == ["conflict"], jq.stderr
    assert len(list(folder.glob("spec-plan_*_synthesis.json"))) == 2
