"""End to end: /spec-auto through the real ``openai`` backend against the loopback
OpenAI-protocol server (tests/servers/openai_server.py). Each agent's answer is the
recorded demo answer for its stage unless a test overrides it; nothing is mocked."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from agentshell import AgentCallFinished, ConfigError, hookimpl
from speckit_consensus.events import (
    ConsensusSynthesized,
    PipelineHalted,
    PipelineRunFinished,
    PipelineRunStarted,
    PipelineStageCompleted,
    PipelineStageStarted,
)
from speckit_consensus.evidence import (
    AgentEvidence,
    SynthesisRecord,
    TelemetryAgentLine,
    TelemetryStageLine,
)
from speckit_consensus.stages import STAGES, parse_stage
from tests.helpers.events import ListSinkPlugin
from tests.helpers.recordings import recorded, stage_of
from tests.servers.openai_server import OpenAIServer, ScriptedReply, make_usage

pytestmark = pytest.mark.e2e

SPEC = "SPEC-E2E"
ROLES = {
    "gemini": "researcher",
    "claude": "synthesizer",
    "gpt_codex": "coder",
    "gpt_pro": "aggregator",
}
EVIDENCE = Path("docs/SPEC-OPS-004-integrated-coder-hooks/evidence/consensus") / SPEC
NAME = re.compile(
    r"^spec-(plan|tasks|implement|validate|audit|unlock)_\d{8}T\d{9}Z_([a-z0-9_]+)\.(json|jsonl)$"
)


class Agents:
    """The server's responder: each agent answers its recorded answer for the stage the
    prompt names, unless ``override[(stage, agent)]`` says otherwise."""

    def __init__(self) -> None:
        self.override: dict[tuple[str, str], ScriptedReply] = {}
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply:
        agent = headers.get("x-agent-name", "")
        stage = stage_of(request)
        with self.lock:
            self.seen.append((stage, agent))
        reply = self.override.get((stage, agent))
        if reply is not None:
            return reply
        return ScriptedReply(
            content=recorded(stage, agent), usage=make_usage(1200, 300, cached_tokens=200)
        )

    def stages_called(self) -> list[str]:
        return list(dict.fromkeys(stage for stage, _ in self.seen))


class Recorder(ListSinkPlugin):
    """A test plugin: an in-process telemetry sink named "list", and the context of
    every agent call as before_agent_call sees it."""

    __name__ = "recorder"

    def __init__(self) -> None:
        super().__init__()
        self.contexts: list[dict[str, Any]] = []
        self.prompts: list[str] = []

    @hookimpl
    def before_agent_call(self, call: Any) -> None:
        self.contexts.append(dict(call.context))
        self.prompts.append(call.request.prompt)


def config(
    server: OpenAIServer, *, evidence: bool = True, extra: str = "", sink: bool = False
) -> str:
    agents = "".join(
        f'[agents.{name}]\nbackend = "openai"\nbase_url = "{server.base_url}"\n'
        f'model = "{name}-model"\nrole = "{role}"\ntimeout = 10\n\n'
        for name, role in ROLES.items()
    )
    sinks = '["list"]' if sink else "[]"
    return (
        f"[telemetry]\nsinks = {sinks}\n\n"
        "[retry]\nattempts = 2\nbase_delay_s = 0\nmax_delay_s = 0\n\n"
        f"{agents}[plugins.consensus]\nevidence = {str(evidence).lower()}\n{extra}"
    )


@pytest.fixture
def spec_dir(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,openai,replay")
    folder = isolated_env / "docs" / SPEC
    folder.mkdir(parents=True)
    (folder / "spec.md").write_text("# SPEC-E2E\n\n- **R1** `/history` lists past commands.\n")
    return folder


@pytest.fixture
def agents(openai_server: OpenAIServer) -> Agents:
    responder = Agents()
    openai_server.set_responder(responder)
    return responder


def resume_lines(text: str) -> list[str]:
    return re.findall(r"resume with: (.+)$", text, re.MULTILINE)


async def test_full_pipeline_reaches_ok_with_evidence_and_telemetry(
    make_shell: Any, output: Any, openai_server: OpenAIServer, agents: Agents, spec_dir: Path
) -> None:
    rec = Recorder()
    shell = await make_shell(plugins=[rec], config=config(openai_server, sink=True))
    assert await shell.execute(f"/spec-auto {SPEC} ship the history command") == 0, output.errors
    assert agents.stages_called() == list(STAGES)
    assert len(agents.seen) == 19 == openai_server.call_count
    for stage in STAGES:
        assert f"✓ {stage}: ok" in output.text
        assert (spec_dir / f"{stage}.md").read_text().count("**Consensus:** ok") == 1
    # every call carries the context other plugins rely on; prompt_hash is the prompt's
    for ctx, prompt in zip(rec.contexts, rec.prompts, strict=True):
        assert {
            "spec_id",
            "stage",
            "run_id",
            "branch_id",
            "prompt_hash",
            "prompt_version",
            "role",
            "trace_parent",
        } <= set(ctx)
        assert ctx["prompt_hash"] == hashlib.sha256(prompt.encode()).hexdigest()
        assert ctx["spec_id"] == SPEC and ctx["prompt_version"] == f"20251002-{ctx['stage']}-a"
        assert re.fullmatch(rf"{SPEC}-\d{{14}}-[0-9a-f]{{8}}", ctx["branch_id"])
        assert "ship the history command" in prompt
    assert len({c["run_id"] for c in rec.contexts}) == 1
    assert len({c["trace_parent"] for c in rec.contexts}) == 6
    # previous stages' results reach later prompts
    impl_prompt = next(
        p for c, p in zip(rec.contexts, rec.prompts, strict=True) if c["stage"] == "implement"
    )
    assert "### plan" in impl_prompt and "### tasks" in impl_prompt
    # artefacts: names and JSON shapes match the documented models
    files = sorted(p.name for p in EVIDENCE.iterdir())
    assert len(files) == 19 + 12
    assert all(NAME.match(f) for f in files), files
    for path in EVIDENCE.glob("*_synthesis.json"):
        record = SynthesisRecord.model_validate_json(path.read_text())
        assert record.status == "ok" and record.missing_agents == []
        assert record.synthesis_path == str(path) == record.synthesisPath
        assert record.totals.total_tokens == 1500 * len(record.agents)
        for ref in record.agents:
            assert ref.path is not None
            ev = AgentEvidence.model_validate_json((shell.cwd / ref.path).read_text())
            assert ev.state == "valid" and ev.output is not None and not ev.recorded
        lines = [
            json.loads(x) for x in (shell.cwd / record.telemetry_path).read_text().splitlines()
        ]
        for line in lines[:-1]:
            agent_line = TelemetryAgentLine.model_validate(line)
            assert (
                agent_line.prompt_tokens == 1200
                and agent_line.cache_hit
                and agent_line.status == "ok"
            )
        stage_line = TelemetryStageLine.model_validate(lines[-1])
        assert stage_line.schemaVersion == "2.0" and stage_line.consensus.status == "ok"
        assert record.synthesis_path in stage_line.artifacts
    # telemetry reached the sink: each stage and each agent
    assert shell.telemetry.flush(30)  # returns once every sink has caught up
    synthesized = rec.of(ConsensusSynthesized)
    assert [e.stage for e in synthesized] == list(STAGES)
    assert all(e.status == "ok" and e.trace_parent for e in synthesized)
    assert [e.stage for e in rec.of(PipelineStageCompleted)] == list(STAGES)
    finished = rec.of(AgentCallFinished)
    assert len(finished) == 19
    assert {(e.labels["spec_kit.spec_id"], e.labels["spec_kit.stage"]) for e in finished} == {
        (SPEC, stage) for stage in STAGES
    }
    assert not rec.of(PipelineHalted)
    # the run's trace: opened first, closed last; each stage opened with the key its
    # calls carry (trace_parent) and closed by its consensus.synthesized
    [started], [ended] = rec.of(PipelineRunStarted), rec.of(PipelineRunFinished)
    assert rec.events.index(started) < rec.events.index(ended) == len(rec.events) - 1
    assert started.stages == list(STAGES) and (started.command, ended.status) == ("spec-auto", "ok")
    stage_started = rec.of(PipelineStageStarted)
    assert [e.trace_parent for e in stage_started] == [e.trace_parent for e in synthesized]
    assert {e.run_id for e in stage_started} == {started.run_id}
    assert {c["trace_parent"] for c in rec.contexts} == {e.trace_parent for e in stage_started}


async def test_conflict_halts_and_the_printed_resume_line_continues_there(
    make_shell: Any, output: Any, openai_server: OpenAIServer, agents: Agents, spec_dir: Path
) -> None:
    rec = Recorder()
    agents.override[("audit", "gemini")] = ScriptedReply(
        content="Here is my audit:\n```json\n"
        + recorded("audit", "gemini", recommendation="reject")
        + "\n```"
    )
    shell = await make_shell(plugins=[rec], config=config(openai_server, sink=True))
    assert await shell.execute(f"/spec-auto {SPEC}") == 3
    assert agents.stages_called() == ["plan", "tasks", "implement", "validate", "audit"]
    assert "halted at audit: consensus conflict" in output.text
    assert (
        "recommendation differs between agents: claude=approve, gemini=reject, gpt_pro=approve"
        in output.text
    )
    [hint] = resume_lines(output.text)
    assert hint == f"/spec-auto {SPEC} --from audit"
    synthesis = re.search(r"synthesis: (\S+_synthesis\.json)", output.text)
    assert (
        synthesis is not None
        and SynthesisRecord.model_validate_json((shell.cwd / synthesis.group(1)).read_text()).status
        == "conflict"
    )
    assert shell.telemetry.flush(30)  # returns once every sink has caught up
    [halted] = rec.of(PipelineHalted)
    assert halted.stage == "audit" and halted.resume_command == hint
    # the agents now agree; the printed line resumes at audit and runs to the end
    del agents.override[("audit", "gemini")]
    agents.seen.clear()
    assert await shell.execute(hint) == 0
    assert agents.stages_called() == ["audit", "unlock"]
    assert "✓ unlock: ok" in output.text


async def test_invalid_json_from_one_agent_degrades_and_halts(
    make_shell: Any, output: Any, openai_server: OpenAIServer, agents: Agents, spec_dir: Path
) -> None:
    agents.override[("tasks", "claude")] = ScriptedReply(content="The tasks look fine to me.")
    shell = await make_shell(config=config(openai_server))
    assert await shell.execute(f"/spec-auto {SPEC}") == 3
    assert agents.stages_called() == ["plan", "tasks"]
    assert "halted at tasks: consensus degraded" in output.text
    assert "missing: claude — no JSON object in the answer" in output.text
    assert resume_lines(output.text) == [f"/spec-auto {SPEC} --from tasks"]
    # /spec-consensus re-evaluates the evidence to the same verdict
    assert await shell.execute(f"/spec-consensus {SPEC} spec-tasks --json") == 0
    data = json.loads(output.text[output.text.rindex("\n{\n") + 1 :])
    assert data["status"] == "degraded" and data["missing_agents"] == ["claude"]
    assert data["conflicts"] == [] and data["synthesis_path"].endswith("_synthesis.json")


async def test_http_400_is_a_missing_agent_and_from_accepts_spec_prefix(
    make_shell: Any, output: Any, openai_server: OpenAIServer, agents: Agents, spec_dir: Path
) -> None:
    agents.override[("implement", "gpt_codex")] = ScriptedReply(
        status=400, error_message="model overloaded"
    )
    shell = await make_shell(config=config(openai_server))
    assert await shell.execute(f"/spec-auto {SPEC} --from spec-implement") == 3
    assert agents.stages_called() == ["implement"]
    assert "implement: degraded — 3/4 agents valid" in output.text
    assert re.search(r"missing: gpt_codex — \w+: .*model overloaded", output.text)
    assert not (spec_dir / "plan.md").exists()


async def test_quorum_not_met_fails_and_keeps_the_earlier_result(
    make_shell: Any, output: Any, openai_server: OpenAIServer, agents: Agents, spec_dir: Path
) -> None:
    (spec_dir / "plan.md").write_text("earlier plan\n")
    for agent in ("gemini", "claude"):
        agents.override[("plan", agent)] = ScriptedReply(status=400)
    shell = await make_shell(config=config(openai_server, evidence=False))
    assert await shell.execute(f"/spec-plan {SPEC}") == 3
    assert "plan: failed — 0/3 agents valid" in output.text
    assert "reason: quorum not met: 0 valid of 2 required" in output.text
    assert "missing: gpt_pro — not asked: no valid answers to aggregate" in output.text
    assert "evidence is off" in output.text
    assert (spec_dir / "plan.md").read_text() == "earlier plan\n"
    assert ("plan", "gpt_pro") not in agents.seen


async def test_halt_on_is_configurable(
    make_shell: Any, output: Any, openai_server: OpenAIServer, agents: Agents, spec_dir: Path
) -> None:
    agents.override[("validate", "gemini")] = ScriptedReply(content="{}")
    shell = await make_shell(
        config=config(openai_server, extra='halt_on = ["conflict", "failed"]\n')
    )
    assert await shell.execute(f"/spec-auto {SPEC} --from validate") == 0
    assert "validate: degraded" in output.text and "✓ unlock: ok" in output.text


async def test_every_printed_resume_hint_parses(
    make_shell: Any, output: Any, openai_server: OpenAIServer, agents: Agents, spec_dir: Path
) -> None:
    for stage in STAGES:
        agents.override[(stage, "gemini")] = ScriptedReply(content="not json")
    shell = await make_shell(config=config(openai_server, evidence=False))
    for stage in STAGES:
        # --force: past the gate on the earlier (degraded) stages, to each stage's own halt
        assert await shell.execute(f"/spec-auto {SPEC} --from {stage} --force") == 3
    hints = resume_lines(output.text)
    assert len(hints) == len(STAGES)
    for stage, hint in zip(STAGES, hints, strict=True):
        command, args = shell.commands.resolve(hint)
        assert command.name == "spec-auto" and args.spec_id == SPEC
        assert parse_stage(args.values["from"]) == stage
    # the gate's own lines: re-run the earliest blocked stage, or start anyway
    assert await shell.execute(f"/spec-auto {SPEC} --from unlock") == 3
    rerun = re.findall(r"re-run it with: (.+)$", output.text, re.MULTILINE)[-1]
    anyway = re.findall(r"or start anyway: (.+)$", output.text, re.MULTILINE)[-1]
    command, args = shell.commands.resolve(rerun)
    assert command.name == "spec-auto" and args.values["from"] == "plan"
    command, args = shell.commands.resolve(anyway)
    assert command.name == "spec-auto" and args.values["from"] == "unlock" and args.force


@pytest.mark.parametrize(
    "line", ["/spec-auto ../evil", "/spec-plan a/b", "/spec-consensus .. plan", "/spec-status x/y"]
)
async def test_bad_spec_ids_are_one_line_errors_and_write_nothing(
    make_shell: Any,
    output: Any,
    openai_server: OpenAIServer,
    agents: Agents,
    spec_dir: Path,
    line: str,
) -> None:
    shell = await make_shell(config=config(openai_server))
    before = sorted(p for p in Path(shell.cwd).parent.rglob("*"))
    assert await shell.execute(line) == 1
    assert "invalid spec id" in output.errors and output.errors.count("\n") == 1
    assert sorted(p for p in Path(shell.cwd).parent.rglob("*")) == before
    assert openai_server.call_count == 0


async def test_missing_spec_unknown_stage_and_unknown_agent(
    make_shell: Any, output: Any, openai_server: OpenAIServer, agents: Agents, spec_dir: Path
) -> None:
    shell = await make_shell(config=config(openai_server))
    assert await shell.execute("/spec-auto NOPE") == 1
    assert "no spec 'NOPE': docs/NOPE/spec.md does not exist" in output.errors
    assert await shell.execute(f"/spec-auto {SPEC} --from review") == 1
    assert "unknown stage 'review'" in output.errors
    await shell.stop()
    # an unknown agent is a config error before anything runs, not when a stage does
    with pytest.raises(ConfigError, match="agent 'ghost' is not configured"):
        await make_shell(config=config(openai_server, extra='agents = ["ghost"]\n'))


async def test_status_and_completion(
    make_shell: Any, output: Any, openai_server: OpenAIServer, agents: Agents, spec_dir: Path
) -> None:
    (spec_dir.parent / "OTHER").mkdir()
    (spec_dir.parent / "OTHER" / "spec.md").write_text("# other\n")
    (spec_dir.parent / "not-a-spec").mkdir()
    shell = await make_shell(config=config(openai_server, evidence=False))
    assert await shell.execute(f"/spec-tasks {SPEC} --consensus 'keep it small'") == 0
    assert await shell.execute(f"/spec-status {SPEC}") == 0
    rows = {
        line.split("│")[1].strip(): line for line in output.text.splitlines() if line.count("│") > 5
    }
    assert "ok" in rows["tasks"] and "—" in rows["plan"]
    command = shell.commands.get("spec-auto")
    assert list(command.args[0].complete(shell, "")) == ["OTHER", SPEC]
    assert list(command.args[0].complete(shell, "SP")) == [SPEC]
    from_opt = next(o for o in command.options if o.name == "--from")
    assert list(from_opt.complete(shell, "spec-a")) == ["spec-audit"]
    assert list(from_opt.complete(shell, "i")) == ["implement"]


async def test_spec_consensus_without_evidence_names_the_setting_and_its_section(
    make_shell: Any, output: Any, openai_server: OpenAIServer, agents: Agents, spec_dir: Path
) -> None:
    shell = await make_shell(config=config(openai_server, evidence=False))
    assert await shell.execute(f"/spec-plan {SPEC}") == 0  # ran, but kept no evidence
    assert await shell.execute(f"/spec-consensus {SPEC} plan") == 1
    assert "evidence is off" in output.errors
    assert "SPEC_KIT_TELEMETRY_ENABLED=1 or [plugins.consensus] evidence = true" in output.errors
    assert output.errors.rstrip().endswith(f"then run /spec-plan {SPEC}")
