"""What a stage reads before it runs: a late start without the earlier stages' results
is allowed but warns and tells the agents so; evidence files damaged on disk are bad
input (a one-line error naming the file), never a bug. Real parts only: the replay
backend with the recorded demo answers and the real files on disk."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from agentshell import AgentCall, hookimpl
from tests.helpers.paths import REPO
from tests.helpers.recordings import DEMO
from tests.helpers.speckit import FAST, clear, copy_spec

CONFLICT = "SPEC-KIT-CONFLICT"


EVIDENCE = Path("docs/SPEC-OPS-004-integrated-coder-hooks/evidence/consensus")


class Prompts:
    """A test plugin: the prompt of every agent call, by stage."""

    __name__ = "prompt_recorder"

    def __init__(self) -> None:
        self.by_stage: dict[str, list[str]] = {}

    @hookimpl
    def before_agent_call(self, call: AgentCall) -> None:
        self.by_stage.setdefault(str(call.context.get("stage")), []).append(call.request.prompt)


async def test_a_late_start_without_earlier_results_warns_and_tells_the_agents(
    make_shell: Any, output: Any, isolated_env: Path
) -> None:
    spec_dir = copy_spec(isolated_env, DEMO, only_spec_md=True)
    prompts = Prompts()
    shell = await make_shell(plugins=[prompts], config=FAST)
    assert await shell.execute(f"/spec-auto {DEMO} --from unlock") == 0  # allowed ...
    warning = (
        "warning: unlock runs without earlier results: plan, tasks, implement, validate, "
        f"audit have none in docs/{DEMO}/ (the agents are told so); /spec-auto {DEMO} "
        "runs every stage in order"
    )
    assert warning in output.errors.splitlines()  # ... but never silently
    assert prompts.by_stage["unlock"]
    for prompt in prompts.by_stage["unlock"]:
        assert "(no result from plan, tasks, implement, validate, audit: those stages" in prompt
    # the single-stage command is the same path; one missing stage is named alone
    (spec_dir / "unlock.md").unlink()
    shutil.copy(REPO / "docs" / DEMO / "spec.md", spec_dir / "plan.md")
    clear(output)
    prompts.by_stage.clear()
    assert await shell.execute(f"/spec-tasks {DEMO}") == 0
    assert "warning" not in output.errors  # plan has a result: nothing is missing
    clear(output)
    assert await shell.execute(f"/spec-validate {DEMO}") == 0
    assert (
        f"warning: validate runs without earlier results: implement has none in docs/{DEMO}/"
    ) in output.errors
    assert all(
        "(no result from implement: that stage has not run" in p
        for p in prompts.by_stage["validate"]
    )
    # a full run from plan has nothing to warn about
    clear(output)
    assert await shell.execute(f"/spec-auto {DEMO}") == 0
    assert "warning" not in output.errors


async def test_damaged_evidence_gives_one_line_errors_naming_the_file(
    make_shell: Any, output: Any, isolated_env: Path
) -> None:
    copy_spec(isolated_env, CONFLICT)
    shell = await make_shell(config=FAST, env={"SPEC_KIT_TELEMETRY_ENABLED": "1"})
    assert await shell.execute(f"/spec-auto {CONFLICT}") == 3  # halts at audit
    folder = EVIDENCE / CONFLICT
    gemini = sorted(folder.glob("spec-audit_*_gemini.json"))[-1]
    synthesis = sorted(folder.glob("spec-audit_*_synthesis.json"))[-1]
    cases = [
        (gemini, b"[]", f"{gemini}: not agent evidence: expected a JSON object, found a list"),
        (gemini, b'{"agent": 3}', f"{gemini}: not agent evidence: spec_id: Field required"),
        (gemini, b"\xff\xfe", f"{gemini}: not UTF-8 text (invalid start byte at byte 0)"),
        (synthesis, b"nope{", f"{synthesis}: invalid JSON: Expecting value: line 1 column 1"),
        (synthesis, b'"x"', f"{synthesis}: not a synthesis record: expected a JSON object"),
    ]
    good = {path: path.read_bytes() for path in (gemini, synthesis)}
    for path, data, message in cases:
        path.write_bytes(data)
        clear(output)
        assert await shell.execute(f"/spec-consensus {CONFLICT} audit") == 1
        errors = output.errors.splitlines()
        assert len(errors) == 1 and errors[0].startswith(f"error: {message}"), errors
        assert "a bug" not in output.errors and "ValidationError" not in output.errors
        path.write_bytes(good[path])
    assert await shell.execute(f"/spec-consensus {CONFLICT} audit") == 0  # restored: fine

    # /spec-status: a damaged synthesis is named once and skipped; a binary stage file
    # is no crash either; the table still shows every stage
    synthesis.write_bytes(b"nope{")
    (isolated_env / "docs" / CONFLICT / "plan.md").write_bytes(b"\xff\xfe\x00")
    fresh = await make_shell(config=FAST)  # no in-memory results: read from disk
    clear(output)
    assert await fresh.execute(f"/spec-status {CONFLICT}") == 0
    assert output.errors.splitlines() == [
        f"warning: {synthesis}: invalid JSON: Expecting value: line 1 column 1 (char 0); ignored"
    ]
    assert "│ audit     │ conflict" in output.text  # from audit.md, the stage file
    assert "│ plan      │ ok" in output.text  # from the evidence, plan.md is unreadable
