"""``metrics.tokens`` (the documents' TokenMetrics) is emitted when each stage's
consensus completes — right after that stage's ``consensus.synthesized``, before its
``pipeline.stage_completed`` and before the next stage's first call — not later, when
the next stage happens to start or the shell stops. The consensus and metrics plugins
meet only through the host's generic ``work_completed`` hook. The recorded demo agents
answer (replay backend), the whole shell is real."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from agentshell import AgentCallStarted
from speckit_consensus.events import ConsensusSynthesized, PipelineStageCompleted
from speckit_consensus.stages import STAGES
from speckit_metrics.events import MetricsTokens
from tests.helpers.events import ListSinkPlugin
from tests.helpers.paths import REPO, without_demo_outputs

CONFIG = '[telemetry]\nsinks = ["list"]\n\n[plugins.consensus]\ndemo_latency_scale = 0\n'
CALLS = {"plan": 3, "tasks": 3, "implement": 4, "validate": 3, "audit": 3, "unlock": 3}


def index(events: list[Any], kind: type, stage: str) -> int:
    [found] = [i for i, e in enumerate(events) if isinstance(e, kind) and e.stage == stage]
    return found


async def test_metrics_tokens_is_emitted_as_each_stage_reaches_its_verdict(
    make_shell: Any, output: Any, isolated_env: Path
) -> None:
    shutil.copytree(
        REPO / "docs" / "SPEC-KIT-DEMO",
        isolated_env / "docs" / "SPEC-KIT-DEMO",
        ignore=without_demo_outputs,
    )
    sinks = ListSinkPlugin()
    shell = await make_shell(plugins=[sinks], config=CONFIG)
    assert await shell.execute("/spec-auto SPEC-KIT-DEMO") == 0, output.errors
    assert shell.telemetry.flush(30)  # every event emitted so far has reached the sink
    events = sinks.events
    tokens = sinks.of(MetricsTokens)
    # all six while the shell still runs: none waits for the next stage or the stop
    assert [(e.spec_id, e.stage) for e in tokens] == [("SPEC-KIT-DEMO", s) for s in STAGES]
    turns = 0
    for n, stage in enumerate(STAGES):
        synthesized = index(events, ConsensusSynthesized, stage)
        metrics = index(events, MetricsTokens, stage)
        completed = index(events, PipelineStageCompleted, stage)
        assert synthesized < metrics < completed, stage
        assert metrics == synthesized + 1, stage  # nothing in between
        if n + 1 < len(STAGES):
            following = STAGES[n + 1]
            first_call = min(
                i
                for i, e in enumerate(events)
                if isinstance(e, AgentCallStarted) and e.labels.get("spec_kit.stage") == following
            )
            assert metrics < first_call, stage
        # the session's totals at that moment: every call of this stage is counted
        turns += CALLS[stage]
        event = tokens[n]
        assert event.turn_count == turns, stage
        assert event.total.total_tokens > 0 and event.estimated_next_prompt_tokens > 0
    await shell.stop()
    # the stop adds none: every stage was closed when its consensus completed
    assert len(sinks.of(MetricsTokens)) == len(STAGES)


async def test_a_halted_stage_still_gets_its_metrics_before_the_halt(
    make_shell: Any, output: Any, isolated_env: Path
) -> None:
    shutil.copytree(
        REPO / "docs" / "SPEC-KIT-CONFLICT",
        isolated_env / "docs" / "SPEC-KIT-CONFLICT",
        ignore=without_demo_outputs,
    )
    sinks = ListSinkPlugin()
    shell = await make_shell(plugins=[sinks], config=CONFIG)
    assert await shell.execute("/spec-auto SPEC-KIT-CONFLICT") == 3
    assert shell.telemetry.flush(30)
    tokens = sinks.of(MetricsTokens)
    assert [e.stage for e in tokens] == list(STAGES[: STAGES.index("audit") + 1])
    events = sinks.events
    audit = index(events, MetricsTokens, "audit")
    assert index(events, ConsensusSynthesized, "audit") + 1 == audit
