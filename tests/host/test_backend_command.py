"""The ``command`` backend with small real scripts as CLI agents (tests/agents/):
stdin and argument prompts, exit codes, signals, timeouts and cancellation. Process
checks read /proc: every process an agent started must be gone afterwards."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from agentshell.agents import AgentCall, AgentRequest, AgentSpec, Delta
from agentshell.backends.command import CommandBackend, _Lines, make_backend
from agentshell.config import RetrySettings
from agentshell.errors import AgentDisconnected, AgentTimeout, BadAgentOutput, FatalAgentError
from tests.agents.harness import ShellStub, make_harness, make_shell_stub, pid_alive, read_pids
from tests.helpers.paths import AGENTS

AGENTS = AGENTS
PY = sys.executable


@pytest.fixture
def stub(tmp_path: Path) -> ShellStub:
    return make_shell_stub(tmp_path / "data", cwd=tmp_path)


def cli(name: str, script: str, *args: str, **options: Any) -> AgentSpec:
    timeout_s = options.pop("timeout_s", 20.0)
    return AgentSpec(
        name=name,
        backend="command",
        model="cli",
        timeout_s=timeout_s,
        options={"command": [PY, str(AGENTS / script), *args], **options},
    )


async def complete(stub: ShellStub, spec: AgentSpec, prompt: str = "hello") -> Any:
    backend = CommandBackend(stub)
    try:
        return await backend.complete(AgentCall(agent=spec, request=AgentRequest(prompt=prompt)))
    finally:
        await backend.aclose()


async def wait_for_pids(path: Path, roles: set[str], bound_s: float = 30.0) -> dict[str, int]:
    # bound_s only bounds a hang: two Python start-ups can take seconds on a loaded machine
    deadline = asyncio.get_running_loop().time() + bound_s
    while asyncio.get_running_loop().time() < deadline:
        pids = read_pids(path)
        if roles <= set(pids):
            return pids
        await asyncio.sleep(0.01)
    raise AssertionError(f"the agent never recorded {roles}: {read_pids(path)}")


async def test_prompt_on_stdin(stub: ShellStub) -> None:
    response = await complete(stub, cli("echo", "echo_agent.py"), "what is up")
    assert response.content.strip() == "echo: what is up"
    assert response.usage.is_empty and response.agent == "echo"


async def test_prompt_as_argument_with_env(stub: ShellStub) -> None:
    spec = cli("echo", "echo_agent.py", prompt_mode="arg", env={"ECHO_PREFIX": "arg"})
    response = await complete(stub, spec, "as an argument")
    assert response.content.strip() == "arg: as an argument"


async def test_prompt_template_and_string_command(stub: ShellStub) -> None:
    spec = AgentSpec(
        name="t",
        backend="command",
        options={
            "command": f"{PY} {AGENTS / 'echo_agent.py'} --prompt={{prompt}}",
            "prompt_mode": "template",
        },
    )
    response = await complete(stub, spec, "templated")
    assert response.content.strip() == "echo: --prompt=templated"


async def test_system_text_goes_first(stub: ShellStub) -> None:
    backend = CommandBackend(stub)
    request = AgentRequest(prompt="the question", system="the rules")
    response = await backend.complete(AgentCall(agent=cli("e", "echo_agent.py"), request=request))
    assert response.content.strip() == "echo: the rules\n\nthe question"


async def test_exit_code_is_fatal_with_redacted_last_stderr_line(stub: ShellStub) -> None:
    with pytest.raises(FatalAgentError) as info:
        await complete(stub, cli("bad", "fail_agent.py", "3"))
    message = str(info.value)
    assert "exited with code 3" in message and "fatal: model refused" in message
    assert "sk-test-1234567890abcdef" not in message and "warming up" not in message


async def test_killed_by_signal_is_a_retryable_disconnect(stub: ShellStub) -> None:
    h = make_harness({"command": make_backend}, shell=stub, retry=RetrySettings(attempts=2))
    with pytest.raises(AgentDisconnected, match="killed by signal SIGKILL"):
        await h.runner.run(cli("sig", "fail_agent.py", "--signal"), AgentRequest(prompt="x"))
    assert len(h.notes) == 1 and "(attempt 2/2)" in h.notes[0]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"command": ["/no/such/agent-binary"]}, "command not found: /no/such/agent-binary"),
        ({"command": []}, "`command` is empty"),
        ({}, "needs `command"),
        ({"command": ["echo"], "prompt_mode": "telepathy"}, "prompt_mode must be"),
        ({"command": ["echo", "x"], "prompt_mode": "template"}, "needs {prompt}"),
        ({"command": "echo 'unclosed"}, "cannot parse command"),
    ],
)
async def test_misconfiguration_is_fatal(
    stub: ShellStub, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(FatalAgentError, match=message.replace("(", r"\(").replace("{", r"\{")):
        await complete(stub, AgentSpec(name="m", backend="command", options=options))


async def test_empty_and_oversized_output_are_bad_output(stub: ShellStub) -> None:
    with pytest.raises(BadAgentOutput, match="printed nothing"):
        await complete(stub, AgentSpec(name="q", backend="command", options={"command": ["true"]}))
    spec = cli("big", "echo_agent.py", max_output_bytes=100)
    with pytest.raises(BadAgentOutput, match="output too large"):
        await complete(stub, spec, "x" * 1000)


async def test_timeout_kills_the_process_group(stub: ShellStub, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    spec = cli(
        "slow",
        "sleep_agent.py",
        "60",
        "--child",
        # long enough for the agent AND its grandchild to start (two interpreter
        # start-ups) before the time-out ends the group, even on a loaded 2-core machine;
        # with 0.5 s the time-out could win the race and the child was never recorded
        timeout_s=3.0,
        env={"AGENT_PID_FILE": str(pid_file)},
    )
    h = make_harness({"command": make_backend}, shell=stub, retry=RetrySettings(attempts=1))
    task = asyncio.create_task(h.runner.run(spec, AgentRequest(prompt="zz")))
    pids = await wait_for_pids(pid_file, {"agent", "child"})
    with pytest.raises(AgentTimeout):
        await task
    assert not any(pid_alive(pid) for pid in pids.values()), pids


async def test_sigterm_ignoring_agent_and_grandchild_get_sigkill(
    stub: ShellStub, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    spec = cli(
        "stubborn", "stubborn_agent.py", kill_grace_s=0.3, env={"AGENT_PID_FILE": str(pid_file)}
    )
    h = make_harness({"command": make_backend}, shell=stub)
    task = asyncio.create_task(h.runner.run(spec, AgentRequest(prompt="x")))
    pids = await wait_for_pids(pid_file, {"agent", "child"})
    assert all(pid_alive(pid) for pid in pids.values())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not any(pid_alive(pid) for pid in pids.values()), pids
    failed: Any = h.events("agent.call.failed")[0]
    assert failed.error_type == "cancelled"


async def test_cancelling_a_fan_out_kills_every_subprocess(stub: ShellStub, tmp_path: Path) -> None:
    specs, files = [], []
    for i in range(4):
        pid_file = tmp_path / f"pids{i}"
        files.append(pid_file)
        script = "stubborn_agent.py" if i % 2 else "sleep_agent.py"
        args = () if i % 2 else ("60", "--child")
        specs.append(
            cli(f"a{i}", script, *args, kill_grace_s=0.3, env={"AGENT_PID_FILE": str(pid_file)})
        )
    h = make_harness({"command": make_backend}, shell=stub)
    task = asyncio.create_task(h.runner.run_many(specs, AgentRequest(prompt="x")))
    pids = [pid for f in files for pid in (await wait_for_pids(f, {"agent", "child"})).values()]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(pids) == 8 and not any(pid_alive(pid) for pid in pids)


async def test_leftover_children_of_a_finished_agent_are_ended(
    stub: ShellStub, tmp_path: Path
) -> None:
    # The agent answers at once but leaves a sleeping child behind in its group.
    pid_file = tmp_path / "pids"
    code = (
        "import subprocess,sys; "
        f"p = subprocess.Popen([sys.executable, {str(AGENTS / 'sleep_agent.py')!r}, '60'], "
        "stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
        f"open({str(pid_file)!r}, 'a').write(f'child {{p.pid}}\\n'); print('done')"
    )
    spec = AgentSpec(
        name="leaky",
        backend="command",
        options={
            "command": [PY, "-c", code],
            "kill_grace_s": 0.3,
            "env": {"AGENT_PID_FILE": str(pid_file)},
        },
    )
    response = await complete(stub, spec)
    assert response.content.strip() == "done"
    pids = read_pids(pid_file)
    assert "child" in pids and not any(pid_alive(pid) for pid in pids.values()), pids


async def test_cwd_option(stub: ShellStub, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    spec = AgentSpec(
        name="pwd",
        backend="command",
        options={"command": [PY, "-c", "import os; print(os.getcwd())"], "cwd": "sub"},
    )
    response = await complete(stub, spec)
    assert Path(response.content.strip()) == (tmp_path / "sub").resolve()


# -- streaming ------------------------------------------------------------------------


async def test_stdout_streams_line_by_line_while_the_agent_runs(
    stub: ShellStub, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    spec = cli("liner", "lines_agent.py", str(gate), "first line", "second\nand no newline")
    h = make_harness({"command": make_backend}, shell=stub)
    got: list[Delta] = []
    first = asyncio.Event()

    def on_delta(delta: Delta) -> None:
        got.append(delta)
        first.set()

    task = asyncio.create_task(h.runner.run(spec, AgentRequest(prompt="hi"), on_delta=on_delta))
    try:
        await asyncio.wait_for(first.wait(), 30)
        # the agent waits for the gate: it cannot have finished
        assert not task.done()
        assert got == [Delta("first line\n")]
    finally:
        gate.touch()
    response = await task
    assert got == [Delta("first line\n"), Delta("second\n"), Delta("and no newline")]
    assert response.content == "first line\nsecond\nand no newline"
    await h.runner.aclose()


def test_lines_are_decoded_across_chunk_edges() -> None:
    got: list[str] = []
    lines = _Lines(got.append)
    encoded = "naïve café\nrésumé".encode()
    cut = encoded.index("é".encode()) + 1  # in the middle of a two-byte character
    lines.feed(encoded[:cut])
    lines.feed(encoded[cut:])
    lines.end()
    assert got == ["naïve café\n", "résumé"]
