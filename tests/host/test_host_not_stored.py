"""A plugin that could not durably store an answer says so with ``NotStored`` from
``after_agent_call``: the call fails with that message (every other implementation
still sees the answer), where any other error in the hook stays a warning."""

from __future__ import annotations

from typing import Any

import pytest

from agentshell.agents import AgentCall, AgentRequest, AgentResponse, AgentSpec
from agentshell.errors import NotStored
from agentshell.plugins import hookimpl
from agentshell.sinks.null import NullSink


class EchoBackend:
    async def complete(self, call: AgentCall) -> AgentResponse:
        return AgentResponse(agent=call.agent.name, content=f"echo: {call.request.prompt}")

    async def aclose(self) -> None:
        pass


class Store:
    __name__ = "store"

    def __init__(self, error: Exception) -> None:
        self.error = error

    @hookimpl
    def register_agent_backends(self, register: Any) -> None:
        register("echo", lambda shell: EchoBackend())

    @hookimpl
    def register_telemetry_sinks(self, register: Any) -> None:
        register("quiet", lambda shell, settings: NullSink())

    @hookimpl(tryfirst=True)
    def after_agent_call(self, call: AgentCall, response: AgentResponse) -> None:
        raise self.error


class Watcher:
    __name__ = "watcher"

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl(trylast=True)
    def after_agent_call(self, call: AgentCall, response: AgentResponse) -> None:
        self.seen.append(response.content)


async def test_not_stored_in_after_agent_call_fails_the_call(make_shell: Any, output: Any) -> None:
    watcher = Watcher()
    error = NotStored("cannot store the answer in /data/x.db: database or disk is full")
    shell = await make_shell(
        plugins=[Store(error), watcher], config='[telemetry]\nsinks = ["quiet"]\n'
    )
    spec = AgentSpec(name="echoer", backend="echo")
    with pytest.raises(NotStored, match="database or disk is full"):
        await shell.runner.run(spec, AgentRequest(prompt="hello"))
    assert watcher.seen == ["echo: hello"]  # the other plugins still had the answer
    assert "raised" not in output.text + output.errors  # not a plugin warning


async def test_other_errors_in_after_agent_call_stay_warnings(make_shell: Any, output: Any) -> None:
    watcher = Watcher()
    shell = await make_shell(
        plugins=[Store(RuntimeError("boom")), watcher], config='[telemetry]\nsinks = ["quiet"]\n'
    )
    spec = AgentSpec(name="echoer", backend="echo")
    response = await shell.runner.run(spec, AgentRequest(prompt="hello"))
    assert response.content == "echo: hello"
    assert "hook after_agent_call raised" in output.text + output.errors


async def test_a_command_failing_with_not_stored_exits_non_zero_with_its_line(
    make_shell: Any, output: Any
) -> None:
    from agentshell.commands import Command

    async def ask(ctx: Any) -> int:
        await ctx.shell.runner.run(
            AgentSpec(name="echoer", backend="echo"), AgentRequest(prompt="x")
        )
        return 0

    class Asker:
        __name__ = "asker"

        @hookimpl
        def register_commands(self, register: Any) -> None:
            register(Command("ask", ask, help="ask the echo agent"))

    error = NotStored("cannot store the answer in /data/x.db: database or disk is full")
    shell = await make_shell(
        plugins=[Store(error), Asker()], config='[telemetry]\nsinks = ["quiet"]\n'
    )
    assert await shell.execute("/ask") == 1
    assert output.errors.strip().splitlines() == [f"error: {error}"]
