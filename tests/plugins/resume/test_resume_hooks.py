"""The resume plugin through the real hook path: a started shell with the entry-point
plugins, the real openai backend and the loopback OpenAI server. Agent calls carry the
context the consensus plugin sets; the server's call counts show what was replayed."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agentshell import AgentRequest
from speckit_resume.service import ResumeService
from tests.servers.openai_server import OpenAIServer, ScriptedReply

CONFIG = """
[agents.a1]
backend = "openai"
model = "m-one"
base_url = "{url}"

[agents.a2]
backend = "openai"
model = "m-two"
base_url = "{url}"

[retry]
attempts = 1

[plugins.resume]
path = "state/resume.sqlite3"
synchronous = "NORMAL"
"""

ENV = {"AGENTSHELL_LOAD_PLUGINS": "builtins,openai,resume"}


async def _shell(make_shell: Any, server: OpenAIServer, extra: str = "") -> Any:
    return await make_shell(config=CONFIG.format(url=server.base_url) + extra, env=ENV)


def _ctx(run: dict[str, Any], stage: str, prompt_hash: str = "p1") -> dict[str, Any]:
    return {
        "spec_id": run["spec_id"],
        "stage": stage,
        "run_id": run["run_id"],
        "branch_id": run["branch_id"],
        "prompt_hash": prompt_hash,
        "prompt_version": "20251002-plan-a",
        "role": "researcher",
    }


def _clear(output: Any) -> None:
    output.out_buffer.seek(0)
    output.out_buffer.truncate(0)


def _json_out(output: Any) -> Any:
    text = output.text
    _clear(output)
    return json.loads(text)


async def test_outputs_are_committed_at_once_and_replayed_on_the_branch(
    make_shell: Any, openai_server: OpenAIServer, isolated_env: Path
) -> None:
    openai_server.script("a1", [ScriptedReply(content='{"answer": 1}', model="m-one-2025")])
    shell = await _shell(make_shell, openai_server)
    api = shell.state["speckit.resume"]
    assert isinstance(api, ResumeService)
    assert api.path == isolated_env / "state" / "resume.sqlite3"
    run = api.begin_run(spec_id="SPEC-H", goal="demo", from_stage=None, resume=False)
    a1 = shell.agents["a1"]
    request = AgentRequest(prompt="plan it", expect_json=True)

    first = await shell.runner.run(a1, request, _ctx(run, "plan"))
    assert not first.cached and first.parsed == {"answer": 1}
    # committed before the call returned: an independent connection sees it
    with sqlite3.connect(api.path) as conn:
        row = conn.execute(
            "SELECT stage, agent, model, prompt_hash, prompt_version, role, content, parsed,"
            " status FROM agent_outputs"
        ).fetchone()
    assert row == (
        "plan",
        "a1",
        "m-one-2025",
        "p1",
        "20251002-plan-a",
        "researcher",
        '{"answer": 1}',
        '{"answer":1}',
        "ok",
    )

    again = await shell.runner.run(a1, request, _ctx(run, "plan"))
    assert again.cached and again.content == first.content and again.parsed == {"answer": 1}
    assert again.usage == first.usage and again.model == "m-one-2025"
    assert openai_server.count_for("a1") == 1  # no second backend call

    # another prompt, stage or agent goes to the backend
    await shell.runner.run(a1, request, _ctx(run, "plan", prompt_hash="p2"))
    await shell.runner.run(a1, request, _ctx(run, "tasks"))
    await shell.runner.run(shell.agents["a2"], request, _ctx(run, "plan"))
    assert openai_server.count_for("a1") == 3 and openai_server.count_for("a2") == 1

    # a resume continues the branch and replays; a fresh run of the spec does not
    resumed = api.begin_run(spec_id="SPEC-H", goal=None, from_stage=None, resume=True)
    assert resumed["branch_id"] == run["branch_id"]
    assert (await shell.runner.run(a1, request, _ctx(resumed, "plan"))).cached
    fresh = api.begin_run(spec_id="SPEC-H", goal=None, from_stage=None, resume=False)
    assert not (await shell.runner.run(a1, request, _ctx(fresh, "plan"))).cached
    assert openai_server.count_for("a1") == 4

    # a child forked at tasks inherits the fresh branch's plan, not its tasks
    await shell.runner.run(a1, request, _ctx(fresh, "tasks"))
    child = api.begin_run(spec_id="SPEC-H", goal=None, from_stage="spec-tasks", resume=False)
    assert child["parent_branch_id"] == fresh["branch_id"] and child["fork_stage"] == "tasks"
    assert (await shell.runner.run(a1, request, _ctx(child, "plan"))).cached
    assert not (await shell.runner.run(a1, request, _ctx(child, "tasks"))).cached
    assert openai_server.count_for("a1") == 6

    api.finish_run(run["run_id"], "halted")
    api.finish_run(resumed["run_id"], "ok")
    assert await shell.execute("/history SPEC-H --json") == 0
    history = _json_out(shell.output)
    by_run = {r["run_id"]: r for r in history["runs"]}
    assert by_run[run["run_id"]]["status"] == "halted"
    assert by_run[run["run_id"]]["calls"] == 4
    assert by_run[resumed["run_id"]]["replayed"] == 1
    assert by_run[resumed["run_id"]]["calls"] == 0
    assert by_run[run["run_id"]]["tokens"] > 0


async def test_invalid_outputs_are_called_again(
    make_shell: Any, openai_server: OpenAIServer
) -> None:
    shell = await _shell(make_shell, openai_server)
    api = shell.state["speckit.resume"]
    run = api.begin_run(spec_id="SPEC-V", goal=None, from_stage=None, resume=False)
    a1 = shell.agents["a1"]
    request = AgentRequest(prompt="x")
    await shell.runner.run(a1, request, _ctx(run, "plan"))
    api.record_validation(
        branch_id=run["branch_id"],
        spec_id="SPEC-V",
        stage="plan",
        agent="a1",
        prompt_hash="p1",
        valid=False,
        error="missing questions",
    )
    assert not (await shell.runner.run(a1, request, _ctx(run, "plan"))).cached
    api.record_validation(
        branch_id=run["branch_id"],
        spec_id="SPEC-V",
        stage="plan",
        agent="a1",
        prompt_hash="p1",
        valid=True,
        error=None,
    )
    assert (await shell.runner.run(a1, request, _ctx(run, "plan"))).cached
    assert openai_server.count_for("a1") == 2


async def test_failures_and_cancellations_are_stored_for_history(
    make_shell: Any, openai_server: OpenAIServer, output: Any
) -> None:
    openai_server.script("a1", [ScriptedReply(status=500, error_message="engine exploded")])
    openai_server.script("a2", [ScriptedReply(delay_s=30)])
    shell = await _shell(make_shell, openai_server)
    api = shell.state["speckit.resume"]
    run = api.begin_run(spec_id="SPEC-F", goal=None, from_stage=None, resume=False)
    outcomes = await shell.runner.run_many(
        [shell.agents["a1"]], AgentRequest(prompt="x"), _ctx(run, "plan")
    )
    assert not outcomes[0].ok
    task = asyncio.create_task(
        shell.runner.run(shell.agents["a2"], AgentRequest(prompt="y"), _ctx(run, "plan"))
    )
    for _ in range(3000):  # until the server holds a2's request (bounded)
        if openai_server.count_for("a2"):
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await shell.execute("/history SPEC-F --json") == 0
    history = _json_out(output)
    errors = {e["agent"]: e["error"] for e in history["errors"]}
    assert "engine exploded" in errors["a1"] and errors["a2"] == "cancelled"
    assert history["runs"][0]["errors"] == 2
    # failures are never replayed
    openai_server.script("a1", [ScriptedReply(content="fine")])
    assert not (
        await shell.runner.run(shell.agents["a1"], AgentRequest(prompt="x"), _ctx(run, "plan"))
    ).cached


async def test_calls_without_a_run_are_left_alone(
    make_shell: Any, openai_server: OpenAIServer
) -> None:
    shell = await _shell(make_shell, openai_server)
    api = shell.state["speckit.resume"]
    await shell.runner.run(shell.agents["a1"], AgentRequest(prompt="x"), {"stage": "plan"})
    # a run id this shell never handed out (another process's): neither read nor written
    foreign = {
        "spec_id": "S",
        "stage": "plan",
        "run_id": "nope",
        "branch_id": "S-1-x",
        "prompt_hash": "p",
    }
    await shell.runner.run(shell.agents["a1"], AgentRequest(prompt="x"), foreign)
    assert not api.opened  # no pipeline ran: no database was even created
    assert not api.path.exists()


async def test_disabled_publishes_nothing(
    make_shell: Any, openai_server: OpenAIServer, output: Any
) -> None:
    extra = "enabled = false\n"
    shell = await make_shell(config=CONFIG.format(url=openai_server.base_url) + extra, env=ENV)
    assert "speckit.resume" not in shell.state
    assert await shell.execute("/branches SPEC-1") == 1
    assert "resume store is disabled" in output.errors


async def test_commands(make_shell: Any, openai_server: OpenAIServer, output: Any) -> None:
    shell = await _shell(make_shell, openai_server)
    api = shell.state["speckit.resume"]
    run = api.begin_run(spec_id="SPEC-C", goal="g", from_stage=None, resume=False)
    for stage in ("plan", "tasks", "implement"):
        for name in ("a1", "a2"):
            await shell.runner.run(shell.agents[name], AgentRequest(prompt=stage), _ctx(run, stage))
        api.record_stage(
            run_id=run["run_id"],
            branch_id=run["branch_id"],
            spec_id="SPEC-C",
            stage=stage,
            status="conflict" if stage == "implement" else "ok",
            agreements=["a"],
            conflicts=[],
            synthesis_path=None,
        )
    api.finish_run(run["run_id"], "halted")
    child = api.begin_run(spec_id="SPEC-C", goal="g", from_stage="implement", resume=False)
    await shell.runner.run(shell.agents["a1"], AgentRequest(prompt="i"), _ctx(child, "implement"))

    assert await shell.execute("/branches SPEC-C --json") == 0
    tree = _json_out(output)
    assert tree["current"] == child["branch_id"]
    root_row, child_row = tree["branches"]
    assert root_row["stages"]["implement"] == "conflict" and root_row["last_status"] == "halted"
    assert child_row["depth"] == 1 and child_row["fork_stage"] == "implement"
    assert child_row["stages"] == {
        "plan": "inherited ok",
        "tasks": "inherited ok",
        "implement": "partial (1)",
        "validate": "-",
        "audit": "-",
        "unlock": "-",
    }

    assert await shell.execute("/resume SPEC-C --json") == 0
    plan = {s["stage"]: s for s in _json_out(output)["stages"]}
    assert [(r["agent"], r["from_branch"]) for r in plan["plan"]["reuse"]] == [
        ("a1", run["branch_id"]),
        ("a2", run["branch_id"]),
    ]
    assert [r["agent"] for r in plan["implement"]["reuse"]] == ["a1"]  # the child's own
    assert plan["validate"]["reuse"] == []

    # the human-readable forms render
    assert await shell.execute("/branches SPEC-C") == 0
    assert child["branch_id"] in output.text and "inherited ok" in output.text
    assert await shell.execute(f"/resume SPEC-C {run['branch_id']}") == 0
    assert await shell.execute("/history SPEC-C") == 0
    assert "halted" in output.text

    # bad input: one clear line each
    for line, message in [
        ("/branches 'bad id!'", "invalid spec id"),
        ("/branches SPEC-C prune", "--keep N is required"),
        ("/branches SPEC-C prune --keep x", "takes a number"),
        ("/branches SPEC-C prune --keep 0", "at least 1"),
        ("/branches SPEC-C explode", "unknown action"),
        ("/resume SPEC-C SPEC-Z-20250101000000-abcdef12", "is not a branch of SPEC-C"),
        ("/resume SPEC-NONE", "no runs of SPEC-NONE"),
    ]:
        assert await shell.execute(line) == 1, line
        assert message in output.errors, line

    _clear(output)
    assert await shell.execute("/branches prune SPEC-C --keep 1 --json") == 0
    assert _json_out(output) == {"deleted": [], "outputs": 0}  # the parent is an ancestor
    api.begin_run(spec_id="SPEC-C", goal=None, from_stage=None, resume=False)
    assert await shell.execute("/branches SPEC-C prune --keep 1 --json") == 0
    pruned = _json_out(output)
    assert sorted(pruned["deleted"]) == sorted([run["branch_id"], child["branch_id"]])
    assert pruned["outputs"] == 7


async def test_costs_from_the_pricing_plugin_and_no_secrets_in_the_store(
    make_shell: Any, openai_server: OpenAIServer, output: Any
) -> None:
    from agentshell import register_secret
    from tests.servers.openai_server import make_usage

    secret = "sk-resume-test-0123456789abcdef"
    register_secret(secret)
    openai_server.script(
        "a1",
        [
            ScriptedReply(
                content=json.dumps({"note": f"the key is {secret}"}),
                usage=make_usage(1000, 500),
                model="gpt-4o-mini",
            )
        ],
    )
    config = CONFIG.format(url=openai_server.base_url).replace('"m-one"', '"gpt-4o-mini"')
    shell = await make_shell(
        config=config, env={"AGENTSHELL_LOAD_PLUGINS": "builtins,openai,resume,metrics"}
    )
    api = shell.state["speckit.resume"]
    run = api.begin_run(spec_id="SPEC-COST", goal=None, from_stage=None, resume=False)
    request = AgentRequest(prompt="x", expect_json=True)
    live = await shell.runner.run(shell.agents["a1"], request, _ctx(run, "plan"))
    assert live.cost_usd and live.cost_usd > 0
    replay = await shell.runner.run(shell.agents["a1"], request, _ctx(run, "plan"))
    assert replay.cached and replay.cost_usd == 0.0
    assert secret not in replay.content and "****" in replay.content
    assert replay.parsed == {"note": "the key is ****"}
    assert await shell.execute("/history SPEC-COST --json") == 0
    (row,) = _json_out(output)["runs"]
    assert row["cost_usd"] == pytest.approx(live.cost_usd)
    assert row["replayed"] == 1 and row["calls"] == 1
    raw = api.path.read_bytes() + api.path.with_name(api.path.name + "-wal").read_bytes()
    assert secret.encode() not in raw


async def test_completion_of_spec_ids_and_branches(
    make_shell: Any, openai_server: OpenAIServer
) -> None:
    shell = await _shell(make_shell, openai_server)
    api = shell.state["speckit.resume"]
    resume, branches = shell.commands.get("resume"), shell.commands.get("branches")
    assert list(branches.args[0].complete(shell, "SP")) == []  # no store yet, none created
    assert not api.path.exists()
    one = api.begin_run(spec_id="SPEC-A1", goal=None, from_stage=None, resume=False)
    two = api.begin_run(spec_id="SPEC-B2", goal=None, from_stage=None, resume=False)
    assert list(branches.args[0].complete(shell, "SPEC-")) == ["SPEC-A1", "SPEC-B2"]
    assert list(resume.args[0].complete(shell, "SPEC-B")) == ["SPEC-B2"]
    assert list(resume.args[1].complete(shell, "SPEC-A")) == [one["branch_id"]]
    assert list(resume.args[1].complete(shell, two["branch_id"][:-3])) == [two["branch_id"]]


async def test_a_broken_store_is_one_line_and_loses_nothing(
    make_shell: Any, openai_server: OpenAIServer, output: Any, isolated_env: Path
) -> None:
    junk = b"not a database, and it stays as it is " * 50
    (isolated_env / "state").mkdir()
    (isolated_env / "state" / "resume.sqlite3").write_bytes(junk)
    shell = await _shell(make_shell, openai_server)
    assert await shell.execute("/history SPEC-1") == 1
    lines = [line for line in output.errors.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: resume store ")
    assert "Traceback" not in output.errors
    assert (isolated_env / "state" / "resume.sqlite3").read_bytes() == junk
