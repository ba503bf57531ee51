"""After a halt: the block says what to change before resuming (with commands that
run), and ``/spec-consensus`` shows the verdict even with the evidence off (the
default), from the summary the resume store keeps; without the resume plugin it
says what to enable.

Real parts: the shell with the consensus and resume plugins, the recorded demo agents
(SPEC-KIT-CONFLICT halts at audit on a conflict), a real SQLite store.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from speckit_resume.migrations import MIGRATIONS
from speckit_resume.store import Store
from tests.helpers.speckit import clear, copy_spec, json_out

SPEC = "SPEC-KIT-CONFLICT"
FAST = (
    '[telemetry]\nsinks = []\n\n[plugins.resume]\npath = "resume.sqlite3"\n\n'
    "[plugins.consensus]\ndemo_latency_scale = 0\n"
)


def line(text: str, label: str) -> str:
    found = re.findall(rf"^\s*{re.escape(label)}: (.+)$", text, re.MULTILINE)
    assert len(found) == 1, text
    return str(found[0])


@pytest.fixture
def project(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy_spec(isolated_env, SPEC, only_spec_md=True)
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,replay,resume")
    return isolated_env


async def test_conflict_halt_with_evidence_off_says_what_to_change_first(
    make_shell: Any, output: Any, project: Path
) -> None:
    shell = await make_shell(config=FAST)
    assert await shell.execute(f"/spec-auto {SPEC}") == 3
    text = output.text
    block = text[text.index("halted at audit") :]
    assert "evidence is off" not in block  # the store keeps the verdict: nothing is lost
    assert line(block, "details") == f"/spec-consensus {SPEC} audit"
    assert "before resuming, change one of:" in block
    assert line(block, "the spec") == f"edit docs/{SPEC}/spec.md"
    assert (project / "docs" / SPEC / "spec.md").is_file()  # the file named exists
    branch = re.search(rf"{SPEC}-\d{{14}}-[0-9a-f]{{8}}", line(block, "resume with"))
    assert branch is not None
    goal = line(block, "the goal")
    assert goal == f'/spec-auto {SPEC} --from audit {branch.group(0)} --consensus "<GOAL>"'
    agents = re.search(r"the agents \(now ([\w, ]+)\): (.+)$", block, re.MULTILINE)
    assert agents is not None, block
    assert agents.group(1) == "gemini, claude, gpt_pro"
    assert "[plugins.consensus.stages.audit] agents" in agents.group(2)
    assert agents.group(2).endswith("then /config reload")
    # the guidance comes before the resume line, which stays the block's last line
    assert block.index("before resuming") < block.index("resume with:")
    assert block.rstrip().splitlines()[-1].lstrip().startswith("resume with:")


async def test_spec_consensus_works_after_a_conflict_halt_with_evidence_off(
    make_shell: Any, output: Any, project: Path
) -> None:
    shell = await make_shell(config=FAST)
    assert await shell.execute(f"/spec-auto {SPEC}") == 3
    halted = output.text
    conflicts = re.findall(r"^    conflict: (.+)$", halted, re.MULTILINE)
    assert len(conflicts) == 2
    assert not (project / "docs" / "SPEC-OPS-004-integrated-coder-hooks").exists()  # no evidence
    clear(output)
    assert await shell.execute(f"/spec-consensus {SPEC} audit") == 0, output.errors
    shown = output.text
    assert shown.startswith(f"{SPEC} audit: conflict (recorded ")
    assert "from the resume store's summary" in shown
    assert re.findall(r"^  conflict: (.+)$", shown, re.MULTILINE) == conflicts
    assert "  agents: gemini=valid, claude=valid, gpt_pro=valid" in shown
    assert "  reason: agents' decisions contradict each other" in shown
    clear(output)
    assert await shell.execute(f"/spec-consensus {SPEC} spec-audit --json") == 0
    data = json_out(output)
    assert data["status"] == "conflict"
    assert data["source"] == "resume store"
    assert data["conflicts"] == conflicts
    assert data["aggregator"] == "gpt_pro"
    assert data["synthesis_path"] is None
    # a stage that never ran names the command that produces it
    clear(output)
    assert await shell.execute(f"/spec-consensus {SPEC} unlock") != 0
    assert f"no unlock result for {SPEC} yet (run /spec-unlock {SPEC})" in output.errors


async def test_spec_consensus_survives_a_new_session(
    make_shell: Any, output: Any, project: Path
) -> None:
    first = await make_shell(config=FAST)
    assert await first.execute(f"/spec-auto {SPEC}") == 3
    await first.stop()
    clear(output)
    second = await make_shell(config=FAST)
    assert await second.execute(f"/spec-consensus {SPEC} audit") == 0, output.errors
    assert "audit: conflict" in output.text


async def test_evidence_of_the_same_run_is_re_evaluated_not_the_summary(
    make_shell: Any, output: Any, project: Path
) -> None:
    shell = await make_shell(config=FAST + "evidence = true\n")
    assert await shell.execute(f"/spec-auto {SPEC}") == 3
    assert "  synthesis: docs/SPEC-OPS-004" in output.text
    clear(output)
    assert await shell.execute(f"/spec-consensus {SPEC} audit --json") == 0
    data = json_out(output)
    assert data["status"] == "conflict"
    assert "source" not in data
    assert data["synthesis_path"].endswith("synthesis.json")


async def test_without_resume_plugin_and_evidence_off_it_says_what_to_enable(
    make_shell: Any, output: Any, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,replay")
    shell = await make_shell(config=FAST)
    assert await shell.execute(f"/spec-auto {SPEC}") == 3
    # nothing keeps the verdict: the halt says so instead of offering /spec-consensus
    assert "  synthesis: evidence is off" in output.text
    assert "details:" not in output.text
    assert "before resuming, change one of:" in output.text
    clear(output)
    assert await shell.execute(f"/spec-consensus {SPEC} audit") != 0
    error = output.errors
    assert "evidence is off" in error
    assert "SPEC_KIT_TELEMETRY_ENABLED=1" in error
    assert "the resume plugin" in error
    assert "Traceback" not in error and len(error.strip().splitlines()) == 1


async def test_the_printed_goal_line_runs_on_a_child_branch_with_the_new_goal(
    make_shell: Any, output: Any, project: Path
) -> None:
    shell = await make_shell(config=FAST)
    assert await shell.execute(f"/spec-auto {SPEC}") == 3
    goal_line = line(output.text, "the goal").replace("<GOAL>", "ship it without R3")
    halted_branch = re.search(r"--from audit (\S+)", goal_line)
    assert halted_branch is not None
    clear(output)
    await shell.execute(goal_line)
    assert "usage" not in output.errors and "error" not in output.errors, output.errors
    assert "▶ audit" in output.text and "▶ plan" not in output.text
    branch = re.search(rf"branch ({SPEC}-\S+)", output.text)
    assert branch is not None
    store = shell.state["speckit.resume"].store
    assert store.branch_goal(branch.group(1)) == "ship it without R3"
    assert store.lineage(branch.group(1)) == (halted_branch.group(1), "audit")


async def test_spec_auto_takes_the_goal_once(make_shell: Any, output: Any, project: Path) -> None:
    shell = await make_shell(config=FAST)
    assert await shell.execute(f'/spec-auto {SPEC} ship it --consensus "other"') != 0
    assert "give the goal once" in output.errors


def test_a_store_from_before_summaries_reads_an_empty_summary(tmp_path: Path) -> None:
    path = tmp_path / "resume.sqlite3"
    old = Store(path, migrations=MIGRATIONS[:4])  # as the previous release left it
    start = old.begin_run(spec_id=SPEC, goal=None, from_stage=None, resume=False, branch_id=None)
    with old.write() as conn:  # the insert of that release: no summary column yet
        conn.execute(
            "INSERT INTO stage_results(run_id, branch_id, spec_id, stage, status, agreements,"
            " conflicts, synthesis_path, created_at) VALUES (?, ?, ?, 'audit', 'conflict',"
            " '[\"a\"]', '[\"c\"]', NULL, 1.0)",
            (start.run_id, start.branch_id, SPEC),
        )
    old.close()
    with sqlite3.connect(path) as conn:
        assert "summary" not in {r[1] for r in conn.execute("PRAGMA table_info(stage_results)")}
    store = Store(path)  # migration 5 adds the column; the old row keeps no summary
    try:
        assert store.schema_versions()[-1] == MIGRATIONS[-1].version
        found = store.latest_stage_summary(SPEC, "audit")
        assert found is not None
        assert (found["status"], found["conflicts"], found["summary"]) == ("conflict", ["c"], {})
    finally:
        store.close()
