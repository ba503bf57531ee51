"""Every hook is documented in docs/hooks.md, and every hook is exercised: one
in-process plugin implements all of them (sync and async) and the test drives a shell
through start, commands, a successful and a failing agent call, the toolbar and stop."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel

from agentshell.agents import AgentCall, AgentRequest, AgentResponse, AgentSpec
from agentshell.commands import Command
from agentshell.errors import FatalAgentError
from agentshell.hookspecs import HOOK_NAMES
from agentshell.plugins import hookimpl
from tests.helpers.paths import REPO

DOCS = REPO / "docs" / "hooks.md"


def test_hook_list_matches_the_design() -> None:
    assert set(HOOK_NAMES) == {
        "register_commands",
        "register_agent_backends",
        "register_telemetry_sinks",
        "register_auth_providers",
        "register_config",
        "shell_started",
        "shell_stopping",
        "work_completed",
        "before_agent_call",
        "after_agent_call",
        "agent_call_failed",
        "status_segments",
        "handle_text",
    }


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_every_hook_is_documented(hook: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert re.search(rf"^### `{hook}\(", text, re.MULTILINE), f"{hook} has no section in {DOCS}"


class EchoBackend:
    async def complete(self, call: AgentCall) -> AgentResponse:
        if call.request.prompt == "fail":
            raise FatalAgentError("refused on purpose")
        return AgentResponse(agent=call.agent.name, content=f"echo: {call.request.prompt}")

    async def aclose(self) -> None:
        pass


class NullSink:
    def handle(self, event: Any) -> None:
        pass

    def close(self) -> None:
        pass


class Everything(BaseModel):
    flavour: str = "all"


class Provider:
    async def get_credentials(self, account: str | None = None) -> None:
        return None

    async def on_unauthorized(self, account: str | None = None) -> None:
        return None

    def login_command(self, account: str | None = None) -> str:
        return "/login"


class AllHooks:
    """Implements every hook; records each call."""

    __name__ = "all-hooks"

    def __init__(self) -> None:
        self.called: dict[str, list[Any]] = {}

    def _seen(self, hook: str, *args: Any) -> None:
        self.called.setdefault(hook, []).append(args)

    @hookimpl
    def register_commands(self, register: Any) -> None:
        self._seen("register_commands")
        register(Command("everything", lambda ctx: 0, help="from the all-hooks plugin"))

    @hookimpl
    async def register_agent_backends(self, register: Any) -> None:  # async on purpose
        self._seen("register_agent_backends")
        register("echo", lambda shell: EchoBackend())

    @hookimpl
    def register_telemetry_sinks(self, register: Any) -> None:
        self._seen("register_telemetry_sinks")
        register("allhooks-null", lambda shell, settings: NullSink())

    @hookimpl
    def register_auth_providers(self, register: Any) -> None:
        self._seen("register_auth_providers")
        register("allhooks-auth", lambda shell: Provider())

    @hookimpl
    def register_config(self, register: Any) -> None:
        self._seen("register_config")
        register("everything", Everything)

    @hookimpl
    async def shell_started(self, shell: Any) -> None:
        self._seen("shell_started", shell)

    @hookimpl
    def shell_stopping(self, shell: Any) -> None:
        self._seen("shell_stopping", shell)

    @hookimpl
    async def work_completed(self, shell: Any, context: dict[str, Any]) -> None:
        self._seen("work_completed", shell, context)

    @hookimpl
    def before_agent_call(self, call: AgentCall) -> None:
        self._seen("before_agent_call", call.request.prompt, call.attempt)

    @hookimpl
    async def after_agent_call(self, call: AgentCall, response: AgentResponse) -> None:
        self._seen("after_agent_call", response.content)

    @hookimpl
    def agent_call_failed(self, call: AgentCall, error: BaseException) -> None:
        self._seen("agent_call_failed", type(error).__name__)

    @hookimpl(tryfirst=True)  # before an installed chat plugin, which takes any text
    async def handle_text(self, shell: Any, text: str) -> int | None:
        self._seen("handle_text", text)
        return 0 if text.startswith("hello") else None

    @hookimpl
    def status_segments(self, shell: Any) -> list[str]:
        self._seen("status_segments")
        return ["all", "hooks"]


async def test_every_hook_is_called(make_shell: Any) -> None:
    plugin = AllHooks()
    shell = await make_shell(plugins=[plugin], config='[telemetry]\nsinks = ["allhooks-null"]\n')
    assert shell.plugins.infos["all-hooks"].state == "loaded"
    assert sorted(shell.plugins.infos["all-hooks"].hooks) == sorted(HOOK_NAMES)
    assert shell.commands.get("everything").plugin == "all-hooks"
    assert shell.plugin_config("everything") == Everything()
    assert "allhooks-auth" in shell.auth.provider_names
    assert plugin.called["shell_started"] == [(shell,)]

    spec = AgentSpec(name="echoer", backend="echo")
    response = await shell.runner.run(spec, AgentRequest(prompt="hello"))
    assert response.content == "echo: hello"
    assert plugin.called["before_agent_call"] == [("hello", 1)]
    assert plugin.called["after_agent_call"] == [("echo: hello",)]

    with pytest.raises(FatalAgentError):
        await shell.runner.run(spec, AgentRequest(prompt="fail"))
    assert plugin.called["agent_call_failed"] == [("FatalAgentError",)]

    assert "all | hooks" in shell.status_text()

    assert await shell.execute("hello there") == 0
    assert await shell.execute("exit") == 1  # a bare word means /quit: never sent as text
    assert plugin.called["handle_text"] == [("hello there",)]

    await shell.work_completed({"stage": "plan", "trace_parent": "t1"})
    assert plugin.called["work_completed"] == [(shell, {"stage": "plan", "trace_parent": "t1"})]

    await shell.stop()
    assert plugin.called["shell_stopping"] == [(shell,)]
    assert sorted(plugin.called) == sorted(HOOK_NAMES)
