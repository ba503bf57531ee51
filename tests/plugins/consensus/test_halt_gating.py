"""Halt gating on an earlier verdict: ``/spec-auto <SPEC> --from <stage>`` loads the
latest verdict of every earlier stage and refuses to start on one in ``halt_on`` (and
always on ``failed``) unless ``--force``; the verdict is found with the resume plugin
off and evidence off, in the evidence (new and old file names) and in the resume store.

Plan is made degraded for real: the faults plugin drops claude's only attempt at plan,
so the recorded demo agents run and one of them is missing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from speckit_consensus.evidence import SynthesisRecord
from speckit_consensus.markdown import read_meta
from tests.helpers.paths import REPO

DEMO = "SPEC-KIT-DEMO"
EVIDENCE = Path("docs/SPEC-OPS-004-integrated-coder-hooks/evidence/consensus") / DEMO
FAST = "[telemetry]\nsinks = []\n\n[plugins.consensus]\ndemo_latency_scale = 0\n"
# claude's one attempt at plan is dropped: plan is degraded (2 of 3 valid, quorum met)
DEGRADE_PLAN = (
    FAST + '\n[retry]\nattempts = 1\n\n[plugins.faults]\nagents = ["claude"]\nstages = ["plan"]\n'
)
FAULTS = {"CODEX_FAULTS_SCOPE": "spec_kit", "CODEX_FAULTS": "disconnect:1"}
NO_FAULTS = {"CODEX_FAULTS_SCOPE": "", "CODEX_FAULTS": ""}  # later shells of a test


@pytest.fixture
def spec_dir(isolated_env: Path) -> Path:
    target = isolated_env / "docs" / DEMO
    target.mkdir(parents=True)
    shutil.copy(REPO / "docs" / DEMO / "spec.md", target / "spec.md")
    return target


def clear(output: Any) -> None:
    for buffer in (output.out_buffer, output.err_buffer):
        buffer.seek(0)
        buffer.truncate()


async def degrade_plan(make_shell: Any, output: Any, env: dict[str, str]) -> Any:
    shell = await make_shell(config=DEGRADE_PLAN, env={**FAULTS, **env})
    assert await shell.execute(f"/spec-plan {DEMO}") == 3
    assert "! plan: degraded — 2/3 agents valid" in output.text
    clear(output)
    return shell


# where the verdict is read from, each case with the others out of reach
SOURCES = {
    # same session, resume plugin off, evidence off: the plugin's own session record
    "session": ({"AGENTSHELL_DISABLE_PLUGINS": "resume"}, False, False, "this session"),
    # a new session, resume off, evidence off: the stage Markdown's status comment
    "markdown": (
        {"AGENTSHELL_DISABLE_PLUGINS": "resume"},
        True,
        False,
        f"docs/{DEMO}/plan.md",
    ),
    # a new session, resume off, no Markdown: the evidence's synthesis record
    "evidence": (
        {"AGENTSHELL_DISABLE_PLUGINS": "resume", "SPEC_KIT_TELEMETRY_ENABLED": "1"},
        True,
        True,
        f"{EVIDENCE}/spec-plan_",
    ),
    # a new session, evidence off, no Markdown: what the resume plugin publishes
    "resume store": ({}, True, True, "resume store, branch SPEC-KIT-DEMO-"),
}


@pytest.mark.parametrize("source", list(SOURCES))
async def test_from_a_later_stage_halts_on_an_earlier_degraded_verdict(
    make_shell: Any, output: Any, spec_dir: Path, source: str
) -> None:
    env, new_session, drop_markdown, shown = SOURCES[source]
    shell = await degrade_plan(make_shell, output, env)
    if drop_markdown:
        (spec_dir / "plan.md").unlink()
    if new_session:
        await shell.stop()
        shell = await make_shell(config=FAST, env=NO_FAULTS)
    assert await shell.execute(f"/spec-auto {DEMO} --from tasks") == 3
    lines = output.text.splitlines()
    assert lines[0] == "halted before tasks: plan is degraded"
    assert lines[1].startswith("  plan: degraded (latest verdict 20")
    assert shown in lines[1]
    assert f"  re-run it with: /spec-auto {DEMO} --from plan" in lines
    assert f"  or start anyway: /spec-auto {DEMO} --from tasks --force" in lines
    assert "▶ tasks" not in output.text  # nothing ran, no agent was asked
    assert not (spec_dir / "tasks.md").exists()


async def test_force_goes_on_with_a_warning_and_the_run_records_it(
    make_shell: Any, output: Any, spec_dir: Path
) -> None:
    shell = await degrade_plan(make_shell, output, {"SPEC_KIT_TELEMETRY_ENABLED": "1"})
    assert await shell.execute(f"/spec-auto {DEMO} --from tasks --force") == 0
    assert (
        "warning: --force: tasks starts although plan is degraded; this run records it "
        "(forced over plan=degraded)"
    ) in output.errors.splitlines()
    assert "✓ unlock: ok" in output.text
    assert (
        f"✓ {DEMO}: all stages from tasks reached consensus (forced over plan degraded)"
        in output.text
    )
    for stage in ("tasks", "implement", "validate", "audit", "unlock"):
        meta = read_meta(spec_dir / f"{stage}.md")
        assert meta is not None and meta.forced_over == {"plan": "degraded"}, stage
        [path] = sorted(EVIDENCE.glob(f"spec-{stage}_*_synthesis.json"))
        record = SynthesisRecord.model_validate_json(path.read_text())
        assert record.forced_over == {"plan": "degraded"}
    # plan's own record went past nothing
    [plan] = EVIDENCE.glob("spec-plan_*_synthesis.json")
    assert json.loads(plan.read_text())["forced_over"] == {}


async def test_force_without_from_is_a_usage_error(
    make_shell: Any, output: Any, spec_dir: Path
) -> None:
    shell = await make_shell(config=FAST)
    assert await shell.execute(f"/spec-auto {DEMO} --force") == 1
    assert "--force goes with --from STAGE" in output.errors
    assert "▶" not in output.text


async def test_a_failed_earlier_stage_halts_even_when_halt_on_leaves_it_out(
    make_shell: Any, output: Any, spec_dir: Path
) -> None:
    config = (
        FAST.replace("[plugins.consensus]\n", '[plugins.consensus]\nhalt_on = ["conflict"]\n')
        + '\n[retry]\nattempts = 1\n\n[plugins.faults]\nagents = ["claude", "gemini"]\n'
        'stages = ["plan"]\n'
    )
    shell = await make_shell(
        config=config,
        env={**FAULTS, "CODEX_FAULTS": "disconnect:2", "AGENTSHELL_DISABLE_PLUGINS": "resume"},
    )
    assert await shell.execute(f"/spec-plan {DEMO}") == 3
    assert "plan: failed" in output.text
    clear(output)
    # evidence off, no resume store, no plan.md: the session's own record knows
    assert await shell.execute(f"/spec-auto {DEMO} --from tasks") == 3
    assert output.text.splitlines()[0] == "halted before tasks: plan is failed"
    assert "(latest verdict" in output.text and "this session)" in output.text


async def test_a_degraded_stage_outside_halt_on_does_not_gate(
    make_shell: Any, output: Any, spec_dir: Path
) -> None:
    await degrade_plan(make_shell, output, {})
    shell = await make_shell(
        config=FAST.replace(
            "[plugins.consensus]\n", '[plugins.consensus]\nhalt_on = ["conflict", "failed"]\n'
        ),
        env=NO_FAULTS,
    )
    assert await shell.execute(f"/spec-auto {DEMO} --from tasks") == 0
    assert "halted" not in output.text and "✓ unlock: ok" in output.text


async def test_an_earlier_stage_without_any_verdict_warns_and_runs(
    make_shell: Any, output: Any, spec_dir: Path
) -> None:
    # a hand-written plan (no status comment) and no verdict anywhere for it
    (spec_dir / "plan.md").write_text("# Plan\n\nwritten by hand\n")
    shell = await make_shell(config=FAST)
    assert await shell.execute(f"/spec-auto {DEMO} --from tasks") == 0
    assert (
        f"warning: no verdict recorded for plan of {DEMO} (no status in this session, the "
        "stage Markdown, the evidence or the resume store): tasks is not gated on it"
    ) in output.errors.splitlines()
    assert "✓ unlock: ok" in output.text


def to_old_names(folder: Path, stage: str) -> Path:
    """Rewrite a stage's evidence as an earlier release wrote it: ``<stage>_<ts>_…``
    names, paths inside the record to match, and no ``synthesisPath`` key."""
    [synthesis] = folder.glob(f"spec-{stage}_*_synthesis.json")
    for path in folder.glob(f"spec-{stage}_*"):
        path.rename(path.with_name(path.name.removeprefix("spec-")))
    old = synthesis.with_name(synthesis.name.removeprefix("spec-"))
    data = json.loads(old.read_text())
    data.pop("synthesisPath")
    data.pop("forced_over")
    for key in ("synthesis_path", "telemetry_path"):
        data[key] = data[key].replace(f"/spec-{stage}_", f"/{stage}_")
    for ref in data["agents"]:
        ref["path"] = ref["path"].replace(f"/spec-{stage}_", f"/{stage}_")
    old.write_text(json.dumps(data, indent=2))
    return old


async def test_evidence_under_the_old_names_is_still_read(
    make_shell: Any, output: Any, spec_dir: Path
) -> None:
    # the evidence of a degraded plan, as an earlier release named it; no resume store
    shell = await degrade_plan(
        make_shell,
        output,
        {"SPEC_KIT_TELEMETRY_ENABLED": "1", "AGENTSHELL_DISABLE_PLUGINS": "resume"},
    )
    await shell.stop()
    old = to_old_names(EVIDENCE, "plan")
    assert not list(EVIDENCE.glob("spec-plan_*"))
    (spec_dir / "plan.md").unlink()
    shell = await make_shell(config=FAST, env={**NO_FAULTS, "AGENTSHELL_DISABLE_PLUGINS": ""})
    # /spec-consensus re-evaluates it
    assert await shell.execute(f"/spec-consensus {DEMO} plan") == 0
    assert f"{DEMO} plan: degraded (recorded " in output.text
    assert "missing: claude" in output.text and f"synthesis: {old}" in output.text
    clear(output)
    # the --from gate (with the resume plugin loaded, whose store knows nothing of it)
    assert shell.state.get("speckit.resume") is not None
    assert await shell.execute(f"/spec-auto {DEMO} --from tasks") == 3
    assert output.text.splitlines()[1].endswith(f", {old})")
    clear(output)
    # /spec-status shows it
    assert await shell.execute(f"/spec-status {DEMO}") == 0
    assert "degraded" in output.text
    # a newer record under the new name wins over the old one
    clear(output)
    assert await shell.execute(f"/spec-plan {DEMO}") == 0
    assert await shell.execute(f"/spec-consensus {DEMO} plan") == 0
    assert f"synthesis: {EVIDENCE}/spec-plan_" in output.text


async def test_the_newest_verdict_wins_to_the_millisecond(
    make_shell: Any, output: Any, spec_dir: Path
) -> None:
    """A stage Markdown and a synthesis record of two runs in the same second: the one
    written later decides, whichever place it is in."""
    import datetime as dt

    from speckit_consensus.markdown import _META

    shell = await degrade_plan(
        make_shell,
        output,
        {"SPEC_KIT_TELEMETRY_ENABLED": "1", "AGENTSHELL_DISABLE_PLUGINS": "resume"},
    )
    await shell.stop()
    [synthesis] = EVIDENCE.glob("spec-plan_*_synthesis.json")
    recorded = dt.datetime.fromisoformat(json.loads(synthesis.read_text())["created_at"])
    markdown = spec_dir / "plan.md"
    text = markdown.read_text()
    meta = json.loads(_META.match(text.splitlines()[0]).group(1))  # type: ignore[union-attr]

    def rewrite_markdown(status: str, offset_ms: int) -> None:
        when = recorded.replace(microsecond=500_000) + dt.timedelta(milliseconds=offset_ms)
        meta.update(status=status, generated_at=when.isoformat(timespec="milliseconds"))
        line = f"<!-- speckit-consensus: {json.dumps(meta)} -->"
        markdown.write_text("\n".join([line, *text.splitlines()[1:]]) + "\n")

    synthesis_data = json.loads(synthesis.read_text())
    at = recorded.replace(microsecond=500_000)
    synthesis_data["created_at"] = at.isoformat()
    synthesis.write_text(json.dumps(synthesis_data))

    # the Markdown (ok) is 40 ms newer than the degraded record: no halt
    rewrite_markdown("ok", 40)
    shell = await make_shell(config=FAST, env=NO_FAULTS)
    assert await shell.execute(f"/spec-auto {DEMO} --from unlock") == 0
    assert "halted" not in output.text
    await shell.stop()
    clear(output)
    # the Markdown is 40 ms older: the degraded record decides
    rewrite_markdown("ok", -40)
    shell = await make_shell(config=FAST, env=NO_FAULTS)
    assert await shell.execute(f"/spec-auto {DEMO} --from unlock") == 3
    assert output.text.splitlines()[0] == "halted before unlock: plan is degraded"
    assert f"{EVIDENCE}/spec-plan_" in output.text.splitlines()[1]
