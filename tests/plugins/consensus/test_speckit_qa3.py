"""Regressions from the third spec-kit QA pass; each test failed before its fix.

Real parts only: the replay backend with the recorded demo answers, the loopback
OpenAI-protocol server, the real SQLite resume store, and the real CLI in a subprocess
for the documented fault-injection examples (read from docs/faults.md itself, so the
test runs exactly what the documentation shows).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentshell import format_usd
from agentshell.agents import AgentCall
from agentshell.plugins import hookimpl
from tests.helpers.paths import REPO
from tests.helpers.recordings import DEMO, recorded, stage_of
from tests.servers.openai_server import OpenAIServer, ScriptedReply, make_usage

CONFLICT = "SPEC-KIT-CONFLICT"
QUIET = "[telemetry]\nsinks = []\n\n[retry]\nattempts = 1\n\n"
FAST = QUIET + "[plugins.consensus]\ndemo_latency_scale = 0\n"
EVIDENCE = Path("docs/SPEC-OPS-004-integrated-coder-hooks/evidence/consensus")


def copy_spec(cwd: Path, spec: str, *, only_spec_md: bool = False) -> Path:
    target = cwd / "docs" / spec
    if only_spec_md:
        target.mkdir(parents=True)
        shutil.copy(REPO / "docs" / spec / "spec.md", target)
    else:
        shutil.copytree(REPO / "docs" / spec, target)
    return target


def clear(output: Any) -> None:
    for buffer in (output.out_buffer, output.err_buffer):
        buffer.seek(0)
        buffer.truncate()


class Prompts:
    """A test plugin: the prompt of every agent call, by stage."""

    __name__ = "qa3_prompts"

    def __init__(self) -> None:
        self.by_stage: dict[str, list[str]] = {}

    @hookimpl
    def before_agent_call(self, call: AgentCall) -> None:
        self.by_stage.setdefault(str(call.context.get("stage")), []).append(call.request.prompt)


# -- 1. a late start without the earlier stages' results -----------------------------


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


# -- 2. evidence files damaged on disk are bad input, not bugs ----------------------


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


# -- 3. the documented fault-injection examples, verbatim ---------------------------


def doc_examples() -> tuple[list[str], str]:
    """The ``sh`` and ``toml`` blocks of docs/faults.md's Example section."""
    text = (REPO / "docs" / "faults.md").read_text(encoding="utf-8")
    section = text.split("## Example", 1)[1]
    shells = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    tomls = re.findall(r"```toml\n(.*?)```", section, re.DOTALL)
    assert len(shells) == 2 and len(tomls) == 1, "docs/faults.md examples changed shape"
    return shells, tomls[0]


def run_documented(command: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], list[Any]]:
    """Run a documented ``VAR=value ... agentshell run "..."`` line; also return the
    telemetry events it wrote."""
    words = shlex.split(command.replace("\\\n", " "))
    env = dict(os.environ)
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    assert words[:2] == ["agentshell", "run"], words
    done = subprocess.run(
        [sys.executable, "-m", "agentshell", *words[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    home = Path(os.environ["AGENTSHELL_HOME"])
    events = [
        json.loads(line)
        for path in home.rglob("telemetry.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return done, events


def _names(events: list[Any], name: str) -> list[Any]:
    return [e for e in events if e.get("type") == name]


@pytest.mark.e2e
@pytest.mark.slow  # two subprocess runs with real retry sleeps: ~4 s each
def test_documented_fault_example_completes_ok_with_three_retries(isolated_env: Path) -> None:
    (example, _), _toml = doc_examples()
    copy_spec(isolated_env, DEMO)
    done, events = run_documented(example, isolated_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fault injection on (CODEX_FAULTS_SCOPE=spec_kit): disconnect:1,429:1,timeout:1" in (
        done.stdout
    )
    assert done.stdout.count("fault injected: ") == 3
    assert "✓ plan: ok — 3/3 agents valid" in done.stdout
    assert "gave up" not in done.stdout + done.stderr
    retries = _names(events, "agent.call.retry")
    assert len(_names(events, "fault.injected")) == 3 and len(retries) == 3, events
    rate_limited = [e for e in retries if e["error_type"] == "rate_limited"]
    # the reset hint (one second after injection) plus at most 0.25 s of jitter; the
    # lower bound is only "it waited for the hint", not a timing check
    assert len(rate_limited) == 1 and 0 < rate_limited[0]["delay_s"] <= 1.251
    assert [e["reset_at"] is not None for e in _names(events, "fault.injected")].count(True) == 1


@pytest.mark.e2e
@pytest.mark.slow
def test_documented_six_fault_example_lands_on_claude_and_succeeds(isolated_env: Path) -> None:
    (_, example), toml = doc_examples()
    copy_spec(isolated_env, DEMO)
    (isolated_env / "agentshell.toml").write_text(toml, encoding="utf-8")
    done, events = run_documented(example, isolated_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "✓ plan: ok" in done.stdout
    retries = _names(events, "agent.call.retry")
    assert [e["agent"] for e in retries] == ["claude"] * 6
    assert [e["attempt"] for e in retries] == [1, 2, 3, 4, 5, 6]
    finished = [e for e in _names(events, "agent.call.finished") if e["agent"] == "claude"]
    assert [e["attempts"] for e in finished] == [7]


async def test_off_warns_one_line_per_bad_fault_entry(make_shell: Any, output: Any) -> None:
    await make_shell(config=QUIET, env={"CODEX_FAULTS": "bogus, flood:3,disconnect:x"})
    warnings = output.errors.splitlines()
    assert len(warnings) == 3, warnings
    for warning, entry in zip(warnings, ("'bogus'", "'flood:3'", "'disconnect:x'"), strict=True):
        assert warning.startswith(
            f"warning: fault injection is off; CODEX_FAULTS: ignored entry {entry}:"
        )
        assert warning.count("ignored entry") == 1


# -- 4. /faults after /faults set ---------------------------------------------------


async def test_faults_show_where_the_plan_came_from_and_a_bad_set_is_rejected(
    make_shell: Any, output: Any
) -> None:
    shell = await make_shell(
        config=QUIET,
        env={"CODEX_FAULTS_SCOPE": "spec_kit", "CODEX_FAULTS": "disconnect:3,bogus:1,x"},
    )
    clear(output)
    assert await shell.execute("/faults") == 0
    assert re.search(r"│ active plan +│ CODEX_FAULTS +│", output.text)
    assert "disconnect:3,bogus:1,x (2 entries ignored, see below)" in output.text
    assert await shell.execute("/faults set timeout:2") == 0
    clear(output)
    assert await shell.execute("/faults") == 0
    assert re.search(r"│ active plan +│ /faults set timeout:2 +│", output.text)
    # the environment's problems stay the environment's, never the set's
    assert (
        "│ CODEX_FAULTS            │ disconnect:3,bogus:1,x (replaced by /faults set; 2 entries "
        "ignored, see below)"
    ) in output.text
    assert "problem: CODEX_FAULTS: ignored entry 'bogus:1'" in output.text
    clear(output)
    assert await shell.execute("/faults set bogus:1, 429:1") == 1
    assert output.errors.splitlines() == [
        "error: /faults set rejected, nothing changed (remaining stays "
        "disconnect:0,429:0,timeout:2, from /faults set timeout:2): entry 'bogus:1': unknown "
        "kind 'bogus' (kinds: disconnect, 429 (or rate_limit), timeout)"
    ]
    clear(output)
    assert await shell.execute("/faults clear") == 0
    assert await shell.execute("/faults") == 0
    assert re.search(r"│ active plan +│ /faults clear +│", output.text)
    assert "(replaced by /faults clear; 2 entries ignored" in output.text


# -- 5. one money format everywhere -------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "decimals", "text"),
    [
        (0.00099, 4, "$0.00099"),
        (0.00098999999, 4, "$0.00099"),  # float noise of a sum rounds to 4 digits
        (0.001, 2, "$0.001"),
        (0.0123, 4, "$0.0123"),
        (0.5, 4, "$0.5000"),
        (2.0, 2, "$2.00"),
        (0.0, 4, "$0.00"),
    ],
)
def test_format_usd(amount: float, decimals: int, text: str) -> None:
    assert format_usd(amount, decimals) == text


def _house_agents(server: OpenAIServer) -> str:
    roles = {"gemini": "researcher", "claude": "synthesizer", "gpt_pro": "aggregator"}
    return "".join(
        f'[agents.{name}]\nbackend = "openai"\nbase_url = "{server.base_url}"\n'
        f'model = "house-model-1"\nrole = "{role}"\n\n'
        for name, role in roles.items()
    )


async def test_a_cost_reads_the_same_in_the_stage_line_history_status_and_metrics(
    make_shell: Any,
    output: Any,
    isolated_env: Path,
    openai_server: OpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,openai,resume,metrics")
    copy_spec(isolated_env, DEMO)

    def responder(request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply:
        # 110 input tokens at $3/Mtok: $0.00033 a call, $0.00099 for the stage
        content = recorded(stage_of(request), headers["x-agent-name"])
        return ScriptedReply(content=content, usage=make_usage(110, 0))

    openai_server.set_responder(responder)
    config = (
        QUIET
        + _house_agents(openai_server)
        + '[plugins.resume]\npath = "resume.sqlite3"\n\n'
        + "[plugins.metrics.prices.house-model-1]\ninput_per_mtok = 3.0\noutput_per_mtok = 3.0\n"
    )
    shell = await make_shell(config=config)
    assert await shell.execute(f"/spec-plan {DEMO}") == 0
    stage_line = next(line for line in output.text.splitlines() if "plan: ok" in line)
    assert ", $0.00099 → " in stage_line
    for command, where in (
        (f"/history {DEMO}", "/history"),
        (f"/spec-status {DEMO}", "/spec-status"),
        ("/metrics", "/metrics"),
    ):
        clear(output)
        assert await shell.execute(command) == 0
        assert "$0.00099" in output.text, where
        assert "$0.0010" not in output.text, where


# -- 6. cancelled is its own outcome -------------------------------------------------


async def test_a_cancelled_call_is_labelled_and_counted_as_cancelled(
    make_shell: Any,
    output: Any,
    isolated_env: Path,
    openai_server: OpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,openai,metrics")
    copy_spec(isolated_env, DEMO)
    arrived: list[str] = []
    both = asyncio.Event()
    loop = asyncio.get_running_loop()

    def responder(request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply:
        arrived.append(headers["x-agent-name"])
        if len(arrived) == 2:  # both workers are in flight
            loop.call_soon_threadsafe(both.set)
        return ScriptedReply(
            content=recorded(stage_of(request), headers["x-agent-name"]), delay_s=30
        )

    openai_server.set_responder(responder)
    shell = await make_shell(config=QUIET + _house_agents(openai_server))
    task = asyncio.create_task(shell.execute(f"/spec-plan {DEMO}"))
    await asyncio.wait_for(both.wait(), 30)  # a bound for a hang, not a timing check
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    lines = output.text.splitlines()
    for agent, role in (("gemini", "researcher"), ("claude", "synthesizer")):
        assert any(
            re.fullmatch(rf"  plan · {agent} \({role}\) cancelled after \d+\.\ds", line)
            for line in lines
        ), lines
    assert "failed after" not in output.text
    clear(output)
    assert await shell.execute("/metrics") == 0
    assert "0 (1 cancelled)" in output.text and "failed" not in output.text
    clear(output)
    assert await shell.execute("/metrics --json") == 0
    report = json.loads(output.text)
    assert report["session"]["cancelled"] == 2 and report["session"]["failures"] == 0
    assert report["agents"]["gemini"]["cancelled"] == 1
