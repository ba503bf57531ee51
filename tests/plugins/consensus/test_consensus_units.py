"""Stage parsing, spec ids, schemas vs prompts, prompt rendering, evidence names,
stage Markdown, configuration, and the recorded demo answers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agentshell import CommandError
from speckit_consensus import prompts
from speckit_consensus.agents import RECORDINGS_DIR, resolve
from speckit_consensus.config import ConsensusSettings
from speckit_consensus.evidence import EvidenceWriter, slug
from speckit_consensus.markdown import StageMeta, read_meta, render_stage, strip_meta
from speckit_consensus.schemas import SCHEMAS, required_fields, validate_output
from speckit_consensus.stages import STAGES, parse_stage, resume_hint, validate_spec_id
from speckit_consensus.synthesis import AgentResult, synthesize
from tests.helpers.paths import REPO
from tests.helpers.recordings import DEMO
from tests.helpers.speckit import STORE_AT_SCALE, FinishedCalls, copy_spec


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_spelling_parses(stage: str) -> None:
    assert parse_stage(stage) == stage
    assert parse_stage(f"spec-{stage}") == stage
    assert parse_stage(f"/spec-{stage.upper()}") == stage


def test_unknown_stage_is_a_clear_error() -> None:
    with pytest.raises(CommandError, match="unknown stage 'review'; stages: plan, tasks"):
        parse_stage("review")


@pytest.mark.parametrize(
    "bad", ["", "..", "a/b", "../x", "a\\b", ".hidden", "-x", "a..b", "x" * 129, "a b"]
)
def test_bad_spec_ids_are_rejected(bad: str) -> None:
    with pytest.raises(CommandError, match="invalid spec id"):
        validate_spec_id(bad)


def test_good_spec_ids_and_resume_hint() -> None:
    assert validate_spec_id("SPEC-KIT-DEMO") == "SPEC-KIT-DEMO"
    assert validate_spec_id("spec_1.2") == "spec_1.2"
    assert resume_hint("SPEC-X", "audit") == "/spec-auto SPEC-X --from audit"


@pytest.mark.parametrize(("stage", "role"), [(s, r) for s in STAGES for r in SCHEMAS[s]])
def test_prompt_asks_for_every_required_field(tmp_path: Path, stage: str, role: str) -> None:
    """The defect this guards against: checks requiring fields the prompt never asked for."""
    template = prompts.load_template(stage, None, tmp_path)  # type: ignore[arg-type]
    text = prompts.render(
        template,
        spec_id="S",
        stage=stage,  # type: ignore[arg-type]
        role=role,  # type: ignore[arg-type]
        goal=None,
        context="C",
        previous="P",  # type: ignore[arg-type]
    )
    shape = json.loads(text.split("```json\n")[-1].split("\n```")[0])
    for name in required_fields(stage, role):  # type: ignore[arg-type]
        assert name in shape, f"{stage}/{role}: {name} required but not asked for"
    assert f"STAGE: {stage}" in text and f"ROLE: {role}" in text
    assert "${" not in text
    assert template.version == f"20251002-{stage}-a"


def test_previous_outputs_are_truncated_with_a_marker(tmp_path: Path) -> None:
    (tmp_path / "plan.md").write_text("x" * 6000)
    (tmp_path / "tasks.md").write_text("short")
    text = prompts.previous_outputs(tmp_path, "implement")
    assert "[... truncated 1000 characters ...]" in text
    assert "x" * 5000 in text and "x" * 5001 not in text
    assert "### tasks\n\nshort" in text
    assert prompts.previous_outputs(tmp_path, "plan") == "(none yet)"


def test_user_template_by_path_and_missing_template(tmp_path: Path) -> None:
    (tmp_path / "my-plan-v2.md").write_text("Plan ${SPEC_ID} as ${ROLE}; costs $5\n${OUTPUT_SHAPE}")
    template = prompts.load_template("plan", "my-plan-v2.md", tmp_path)
    assert template.version == "my-plan-v2"
    text = prompts.render(
        template, spec_id="S1", stage="plan", role="researcher", goal="g", context="", previous=""
    )
    assert text.startswith("Plan S1 as researcher; costs $5")
    with pytest.raises(CommandError, match="prompt template 'nope' for stage plan not found"):
        prompts.load_template("plan", "nope", tmp_path)


def test_validation_reasons() -> None:
    assert validate_output("plan", "researcher", None)[1] == "no JSON object in the answer"
    assert validate_output("plan", "researcher", [1])[1] == "JSON list, not an object in the answer"
    _, reason = validate_output("plan", "researcher", {"stage": "plan", "questions": []})
    assert reason is not None and "research_summary" in reason
    _, reason = validate_output(
        "tasks",
        "synthesizer",
        {"stage": "plan", "tasks": [{"id": "1", "title": "t", "acceptance": "a"}]},
    )
    assert reason == "answer is for stage 'plan', expected 'tasks'"


def test_every_recording_is_schema_valid() -> None:
    files = sorted(RECORDINGS_DIR.glob("*/*/*.json"))
    assert len(files) == 38
    roles = {
        "gemini": "researcher",
        "claude": "synthesizer",
        "gpt_codex": "coder",
        "gpt_pro": "aggregator",
    }
    for path in files:
        data = json.loads(path.read_text())
        stage = path.parent.name
        output, reason = validate_output(stage, roles[path.stem], data["content"])  # type: ignore[arg-type]
        assert output is not None, f"{path}: {reason}"
        assert data["usage"]["total_tokens"] > 0


def test_slugs_and_reserved_names(tmp_path: Path) -> None:
    assert slug("GPT-Pro 5") == "gpt_pro_5"
    assert slug("claude") == "claude"
    writer = EvidenceWriter(tmp_path, "S", "plan", tmp_path)
    assert writer.agent_slug("synthesis") == "agent_synthesis"
    assert writer.agent_slug("gpt-pro") == "gpt_pro"
    assert writer.agent_slug("gpt_pro") == "gpt_pro_2"


def test_stage_markdown_round_trips_its_status() -> None:
    results = [
        AgentResult(
            agent="a", role="researcher", state="valid", output={"stage": "plan"}, recorded=True
        ),
        AgentResult(
            agent="b", role="synthesizer", state="failed", reason="AgentTimeout: no answer"
        ),
    ]
    syn = synthesize("plan", results, aggregator=None, quorum=1)
    meta = StageMeta(
        stage="plan",
        status=syn.status,
        generated_at="2025-10-02T10:00:00+00:00",
        prompt_version="v",
    )
    text = render_stage(spec_id="S", synthesis=syn, results=results, meta=meta)
    assert "# Plan — S" in text and "b: AgentTimeout: no answer" in text
    assert "Agents: a (researcher)\n" in text
    # provenance is in the status comment only: a replayed (cached) answer of the same
    # recorded output renders the same body, so the next stage's prompt hash is stable
    cached = [r.model_copy(update={"cached": True, "recorded": False}) for r in results]
    again = render_stage(spec_id="S", synthesis=syn, results=cached, meta=meta)
    assert strip_meta(again) == strip_meta(text)


def test_read_meta(tmp_path: Path) -> None:
    meta = StageMeta(
        stage="audit", status="conflict", generated_at="t", prompt_version="v", total_tokens=5
    )
    path = tmp_path / "audit.md"
    path.write_text(f"<!-- speckit-consensus: {meta.model_dump_json()} -->\n# x\n")
    assert read_meta(path) == meta
    path.write_text("# hand written\n")
    assert read_meta(path) is None


def test_config_defaults_and_errors() -> None:
    s = ConsensusSettings()
    assert s.specs_dir == "docs"
    assert s.evidence_dir == "docs/SPEC-OPS-004-integrated-coder-hooks/evidence"
    assert s.halt_on == ["conflict", "degraded", "failed"]
    assert not s.evidence_enabled({})
    assert s.evidence_enabled({"SPEC_KIT_TELEMETRY_ENABLED": "1"})
    with pytest.raises(ValidationError):
        ConsensusSettings.model_validate({"halt_on": ["broken"]})
    with pytest.raises(ValidationError):
        ConsensusSettings.model_validate({"stages": {"review": {}}})


def test_resolve_stage_agents() -> None:
    from speckit_consensus.agents import default_agent_specs

    agents = {spec.name: spec for spec in default_agent_specs()}
    plan = resolve("implement", ConsensusSettings(), agents)
    assert [(s.name, r) for s, r in plan.workers] == [
        ("gemini", "researcher"),
        ("claude", "synthesizer"),
        ("gpt_codex", "coder"),
    ]
    assert plan.aggregator is not None and plan.aggregator.name == "gpt_pro" and plan.quorum == 3
    plan = resolve("plan", ConsensusSettings(), agents)
    assert plan.names == ["gemini", "claude", "gpt_pro"] and plan.quorum == 2
    custom = ConsensusSettings.model_validate(
        {
            "stages": {
                "plan": {
                    "agents": ["gemini", "claude"],
                    "aggregator": "claude",
                    "quorum": 1,
                    "timeout": 5,
                }
            }
        }
    )
    plan = resolve("plan", custom, agents)
    assert (
        plan.aggregator is not None
        and plan.aggregator.name == "claude"
        and plan.aggregator.timeout_s == 5
    )
    assert plan.quorum == 1
    with pytest.raises(CommandError, match="agent 'ghost' is not configured"):
        resolve("plan", ConsensusSettings(agents=["ghost"]), agents)
    with pytest.raises(CommandError, match="quorum 4 exceeds the 3 agents"):
        resolve(
            "plan", ConsensusSettings.model_validate({"stages": {"plan": {"quorum": 4}}}), agents
        )
    with pytest.raises(CommandError, match="unknown role 'poet'"):
        resolve(
            "plan",
            ConsensusSettings.model_validate({"stages": {"plan": {"roles": {"gemini": "poet"}}}}),
            agents,
        )


DOC = REPO / "docs" / "spec-kit.md"


def test_documented_agent_shapes_match_the_models() -> None:
    from speckit_consensus.schemas import output_shape

    text = DOC.read_text()
    found = re.findall(r"<!-- shape: (\w+)/(\w+) -->\n\*\*\w+\*\*\n\n```json\n(.*?)\n```", text)
    assert {(s, r) for s, r, _ in found} == {(s, r) for s in STAGES for r in SCHEMAS[s]}
    for stage, role, block in found:
        assert json.loads(block) == json.loads(output_shape(stage, role, f"20251002-{stage}-a"))  # type: ignore[arg-type]


def test_documented_artefact_fields_match_the_models() -> None:
    from speckit_consensus import evidence

    text = DOC.read_text()
    tables = re.findall(r"<!-- fields: (\w+) -->\n((?:\|.*\n)+)", text)
    assert {name for name, _ in tables} == {
        "AgentEvidence",
        "SynthesisRecord",
        "TelemetryAgentLine",
        "TelemetryStageLine",
        "StageConsensus",
    }
    for name, table in tables:
        documented = re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE)
        assert documented == list(getattr(evidence, name).model_fields), name


def test_previous_outputs_leave_out_the_volatile_status_comment(tmp_path: Path) -> None:
    """Same results -> same later prompts (the resume store reuses outputs by prompt hash)."""
    results = [AgentResult(agent="a", role="researcher", state="valid", output={"stage": "plan"})]
    syn = synthesize("plan", results, aggregator=None, quorum=1)
    texts = []
    for run in ("r1", "r2"):
        meta = StageMeta(
            stage="plan", status=syn.status, generated_at=run, prompt_version="v", run_id=run
        )
        (tmp_path / "plan.md").write_text(
            render_stage(spec_id="S", synthesis=syn, results=results, meta=meta)
        )
        texts.append(prompts.previous_outputs(tmp_path, "tasks"))
    assert texts[0] == texts[1]
    assert "speckit-consensus" not in texts[0] and "# Plan — S" in texts[0]


CONFIG = STORE_AT_SCALE


@pytest.fixture
def demo(isolated_env: Path) -> Path:
    copy_spec(isolated_env)
    return isolated_env


async def test_config_reload_applies_demo_latency_scale(
    make_shell: Any, output: Any, demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,replay")
    calls = FinishedCalls()
    shell = await make_shell(plugins=[calls], config=CONFIG.format(scale=0))
    assert shell.agents["gemini"].options["latency_scale"] == 0
    Path("agentshell.toml").write_text(CONFIG.format(scale=0.0001), encoding="utf-8")  # noqa: ASYNC240
    await shell.reload_config()
    assert await shell.execute(f"/spec-plan {DEMO}") == 0, output.errors
    used = {c.agent.name: c.agent.options for c, _ in calls.seen}
    assert set(used) == {"gemini", "claude", "gpt_pro"}
    assert all(o["latency_scale"] == 0.0001 and o["honour_latency"] for o in used.values())
    assert shell.agents["claude"].options["latency_scale"] == 0.0001
