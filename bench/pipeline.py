"""Benchmark: a full six-stage ``/spec-auto`` over recorded (replay) agents with zero
latency — 3 agents + an aggregator per stage — with evidence on, in a temp directory.

Agent time is ~0 here, so the wall time is the pipeline's own overhead: prompt
rendering, validation, synthesis, Markdown, evidence files (fsync'd atomic writes),
telemetry and progress output. Target: under 0.5 s for the whole run.

Run: ``python bench/pipeline.py [--runs 7]``. Prints medians over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 0.5

CONFIG = """
[telemetry]
sinks = []

[agents.claude_b]
backend = "replay"
model = "claude-sonnet-4-5"
role = "synthesizer"
dir = "{recordings}"
name = "claude"
honour_latency = false

[plugins.consensus]
evidence = true
demo_latency_scale = 0
agents = ["gemini", "claude", "claude_b", "gpt_pro"]

[plugins.consensus.stages.implement]
agents = ["gemini", "claude", "gpt_codex", "gpt_pro"]
"""


async def one_run(work: Path) -> tuple[float, dict[str, float], float]:
    from agentshell.output import Output
    from agentshell.shell import Shell
    from agentshell.telemetry import AgentCallFinished
    from speckit_consensus.events import PipelineStageCompleted

    sink_events: list[object] = []

    class Collect:
        def handle(self, event: object) -> None:
            sink_events.append(event)

        def close(self) -> None:
            pass

    out = io.StringIO()
    shell = Shell(mode="run", cwd=work, output=Output(out, out))
    await shell.start()
    shell.telemetry.add_sink("bench", Collect())
    start = time.perf_counter()
    code = await shell.execute("/spec-auto SPEC-KIT-DEMO")
    wall = time.perf_counter() - start
    shell.telemetry.flush()
    await shell.stop()
    if code != 0:
        raise SystemExit(f"/spec-auto failed ({code}):\n{out.getvalue()}")
    stages = {e.stage: e.duration_s for e in sink_events if isinstance(e, PipelineStageCompleted)}
    agent_ms = sum(e.latency_ms for e in sink_events if isinstance(e, AgentCallFinished))
    return wall, stages, agent_ms / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    ns = parser.parse_args()
    from speckit_consensus.agents import RECORDINGS_DIR

    walls: list[float] = []
    per_stage: dict[str, list[float]] = {}
    agents: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        os.environ["AGENTSHELL_HOME"] = str(home)
        os.environ["AGENTSHELL_LOAD_PLUGINS"] = "consensus,replay"
        for i in range(ns.runs + 1):  # the first run warms imports and caches
            work = Path(tmp) / f"run{i}"
            shutil.copytree(REPO / "docs" / "SPEC-KIT-DEMO", work / "docs" / "SPEC-KIT-DEMO")
            (work / "agentshell.toml").write_text(CONFIG.format(recordings=RECORDINGS_DIR))
            wall, stages, agent_s = asyncio.run(one_run(work))
            if i == 0:
                continue
            walls.append(wall)
            agents.append(agent_s)
            for stage, seconds in stages.items():
                per_stage.setdefault(stage, []).append(seconds)
    wall = statistics.median(walls)
    agent = statistics.median(agents)
    print(f"/spec-auto SPEC-KIT-DEMO, 6 stages, 3 agents + aggregator, evidence on, {ns.runs} runs")
    for stage, values in per_stage.items():
        print(f"  {stage:<10} {statistics.median(values) * 1000:7.1f} ms (median)")
    print(f"  total wall          {wall * 1000:7.1f} ms (median; min {min(walls) * 1000:.1f})")
    print(f"  agent time (replay) {agent * 1000:7.1f} ms (sum of backend latencies)")
    overhead = wall - agent
    print(
        f"  overhead            {overhead * 1000:7.1f} ms — target < {TARGET_S * 1000:.0f} ms: "
        f"{'met' if overhead < TARGET_S else 'MISSED'} (ratio {overhead / TARGET_S:.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
