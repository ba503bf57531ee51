"""speckit_resume: branch-aware resume of spec-kit pipelines on SQLite.

Publishes a :class:`~speckit_resume.service.ResumeService` at
``shell.state["speckit.resume"]`` for the consensus plugin (and the chat conversations'
API at ``shell.state["speckit.resume.conversations"]``, see conversations.py), answers
agent calls from the store when the branch already has a valid output for the same
prompt, and commits every fresh output the moment it arrives (docs/resume.md has the exact rule).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from agentshell.agents import AgentCall, AgentResponse
from agentshell.errors import NotStored
from agentshell.plugins import hookimpl

from .conversations import CONVERSATIONS_KEY, Conversations
from .service import STATE_KEY, ResumeService, service_for
from .settings import ResumeSettings

if TYPE_CHECKING:
    from agentshell import Register, Shell

SECTION = "resume"


@hookimpl
def register_config(register: Register) -> None:
    register(SECTION, ResumeSettings)


@hookimpl
def register_commands(register: Register) -> None:
    from .commands import commands

    for command in commands():
        register(command)


@hookimpl
def shell_started(shell: Shell) -> None:
    settings = shell.plugin_config(SECTION)
    if not isinstance(settings, ResumeSettings) or not settings.enabled:
        shell.state.pop(STATE_KEY, None)
        shell.state.pop(CONVERSATIONS_KEY, None)
        return
    service = ResumeService(settings, data_dir=shell.data_dir, cwd=shell.cwd)
    shell.state[STATE_KEY] = service
    # chat conversations live in the same file (the chat plugin's history)
    shell.state[CONVERSATIONS_KEY] = Conversations(lambda: service.store, path=str(service.path))


@hookimpl
def shell_stopping(shell: Shell) -> None:
    shell.state.pop(CONVERSATIONS_KEY, None)
    service = shell.state.pop(STATE_KEY, None)
    if isinstance(service, ResumeService):
        service.close()


# tryfirst: a stored answer replaces the backend, so injected backend faults and other
# caches come after it
@hookimpl(tryfirst=True)
async def before_agent_call(call: AgentCall) -> AgentResponse | None:
    service = service_for(call.context)
    if service is None:
        return None
    # a worker thread: another process may hold the write lock and the loop must not wait
    return await asyncio.to_thread(service.replay, call)


# trylast: pricing plugins set response.cost_usd in their after_agent_call first
@hookimpl(trylast=True)
async def after_agent_call(call: AgentCall, response: AgentResponse) -> None:
    service = service_for(call.context)
    if service is not None:
        await asyncio.to_thread(service.save_response, call, response)


@hookimpl(trylast=True)
def agent_call_failed(call: AgentCall, error: BaseException) -> None:
    # synchronous on purpose: this also runs while the caller is being cancelled
    service = service_for(call.context)
    if service is not None:
        # a failure row is never replayed, so losing it loses no answer; the stage
        # already fails on the write that mattered (a full disk fails both)
        with contextlib.suppress(NotStored):
            service.save_failure(call, error)
