"""QA regressions around a resumed demo run and /config reload: each failed before its
fix. Real parts: the replay backend with the recorded demo answers, the real SQLite
resume store, the metrics plugin."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from agentshell.agents import AgentCall, AgentResponse
from agentshell.plugins import hookimpl
from tests.helpers.paths import REPO
from tests.helpers.recordings import DEMO

CONFIG = (
    "[telemetry]\nsinks = []\n\n[retry]\nattempts = 1\n\n"
    '[plugins.resume]\npath = "resume.sqlite3"\n\n'
    "[plugins.consensus]\ndemo_latency_scale = {scale}\n"
)


class Calls:
    """A test plugin: the agent spec and the response of every finished call."""

    def __init__(self) -> None:
        self.seen: list[tuple[AgentCall, AgentResponse]] = []

    @hookimpl
    def after_agent_call(self, call: AgentCall, response: AgentResponse) -> None:
        self.seen.append((call, response))


@pytest.fixture
def demo(isolated_env: Path) -> Path:
    shutil.copytree(REPO / "docs" / DEMO, isolated_env / "docs" / DEMO)
    return isolated_env


async def test_resume_replays_are_no_loop_and_recorded_answers_cost_recorded(
    make_shell: Any, output: Any, demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,replay,resume,metrics")
    calls = Calls()
    shell = await make_shell(plugins=[calls], config=CONFIG.format(scale=0))
    assert await shell.execute(f"/spec-auto {DEMO}") == 0, output.errors
    calls.seen.clear()
    output.out_buffer.seek(0)
    output.out_buffer.truncate()
    assert await shell.execute(f"/spec-auto {DEMO} --resume") == 0, output.errors
    replayed = [r for _, r in calls.seen if r.cached]
    assert len(replayed) == 19 and all(r.recorded for r in replayed)
    # a recorded answer served again from the store is still unpriced, never $0
    assert all(r.cost_usd is None for r in replayed)
    assert "$0.0000" not in output.text
    stage_lines = [ln for ln in output.text.splitlines() if " agents valid, " in ln]
    assert len(stage_lines) == 6
    assert all(" tok, recorded" in ln for ln in stage_lines), stage_lines
    assert await shell.execute(f"/spec-status {DEMO}") == 0
    status_rows = [ln for ln in output.text.splitlines() if ln.startswith("│ ") and "│ ok " in ln]
    assert len(status_rows) >= 6
    assert all(ln.rstrip().endswith("│ recorded │") for ln in status_rows[-6:]), status_rows
    # every replay is counted, but replaying each stored answer once is no loop
    output.out_buffer.seek(0)
    output.out_buffer.truncate()
    assert await shell.execute("/metrics --json") == 0
    text = output.text
    report = json.loads(text[text.index("{") :])
    assert report["session"]["replay_updates"] == 19
    assert report["session"]["loop_warning"] is None
    output.out_buffer.seek(0)
    output.out_buffer.truncate()
    assert await shell.execute("/metrics") == 0
    assert "loop" not in output.text and "warning" not in output.text


async def test_config_reload_applies_demo_latency_scale(
    make_shell: Any, output: Any, demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,replay")
    calls = Calls()
    shell = await make_shell(plugins=[calls], config=CONFIG.format(scale=0))
    assert shell.agents["gemini"].options["latency_scale"] == 0
    Path("agentshell.toml").write_text(CONFIG.format(scale=0.0001), encoding="utf-8")  # noqa: ASYNC240
    await shell.reload_config()
    assert await shell.execute(f"/spec-plan {DEMO}") == 0, output.errors
    used = {c.agent.name: c.agent.options for c, _ in calls.seen}
    assert set(used) == {"gemini", "claude", "gpt_pro"}
    assert all(o["latency_scale"] == 0.0001 and o["honour_latency"] for o in used.values())
    assert shell.agents["claude"].options["latency_scale"] == 0.0001
