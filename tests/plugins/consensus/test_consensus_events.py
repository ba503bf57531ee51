"""The consensus plugin's span mapping: a run span, stage spans under it keyed by the
stage's trace_parent, consensus results and halts on them, errors where a run or a
quorum failed. (The collector round trip is in tests/host/test_telemetry_otlp.py.)"""

from __future__ import annotations

from agentshell import AddSpanEvent, EndSpan, StartSpan
from speckit_consensus.events import (
    ConsensusSynthesized,
    PipelineHalted,
    PipelineRunFinished,
    PipelineRunStarted,
    PipelineStageCompleted,
    PipelineStageStarted,
    call_labels,
    run_key,
)

IDS = {"spec_id": "S-1", "run_id": "r1", "branch_id": "S-1-20260101000000-1a2b3c4d"}


def test_a_run_opens_a_root_span_and_its_stages_hang_under_it() -> None:
    [run] = PipelineRunStarted(command="spec-auto", stages=["plan", "tasks"], **IDS).span_ops()
    assert isinstance(run, StartSpan) and run.parent is None
    assert (run.key, run.name) == (run_key("r1"), "invoke_workflow spec-auto")
    assert run.attributes["spec_kit.branch_id"] == IDS["branch_id"]
    assert run.attributes["spec_kit.stages"] == ["plan", "tasks"]
    [stage] = PipelineStageStarted(stage="plan", trace_parent="tp", **IDS).span_ops()
    assert isinstance(stage, StartSpan)
    assert (stage.key, stage.parent, stage.name) == ("tp", run.key, "invoke_agent plan")
    assert stage.attributes["spec_kit.stage"] == "plan"


def test_a_stage_closes_with_its_consensus_and_fails_without_quorum() -> None:
    ok = ConsensusSynthesized(spec_id="S-1", stage="plan", status="ok", trace_parent="tp")
    [end] = ok.span_ops()
    assert isinstance(end, EndSpan) and end.key == "tp" and end.error is None
    assert end.attributes["spec_kit.consensus.status"] == "ok"
    failed = ok.model_copy(update={"status": "failed"})
    assert [op.error for op in failed.span_ops() if isinstance(op, EndSpan)] == ["quorum not met"]
    assert ok.model_copy(update={"trace_parent": None}).span_ops() == ()


def test_a_halt_marks_the_run_and_a_failed_run_is_an_error() -> None:
    halted = PipelineHalted(
        stage="audit", status="conflict", reason="r", resume_command="/x", **IDS
    )
    [mark] = halted.span_ops()
    assert isinstance(mark, AddSpanEvent) and (mark.key, mark.name) == (run_key("r1"), "halted")
    assert mark.attributes["spec_kit.halt.resume_command"] == "/x"
    for status, error in (("halted", None), ("ok", None), ("failed", "the run failed")):
        [end] = PipelineRunFinished(status=status, **IDS).span_ops()
        assert isinstance(end, EndSpan) and end.key == run_key("r1") and end.error == error
    completed = PipelineStageCompleted(spec_id="S-1", stage="plan", status="ok")
    assert completed.span_ops() == ()


def test_call_labels_name_spec_and_stage() -> None:
    assert call_labels("S-1", "plan") == {"spec_kit.spec_id": "S-1", "spec_kit.stage": "plan"}
