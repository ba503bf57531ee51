"""Shared pieces of the spec-kit plugin tests: quiet configurations, copies of the demo
specs, the captured output cleared between commands, responders and agent tables for
the loopback OpenAI server, and a test plugin that records every finished call."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from agentshell import AgentCall, AgentResponse, hookimpl
from tests.helpers.paths import REPO, without_demo_outputs
from tests.helpers.recordings import DEMO, recorded, stage_of
from tests.servers.openai_server import OpenAIServer, ScriptedReply

QUIET = "[telemetry]\nsinks = []\n\n[retry]\nattempts = 1\n\n"  # no sinks, no retries
FAST = QUIET + "[plugins.consensus]\ndemo_latency_scale = 0\n"  # and no demo latency
# with a resume store in the working directory; {scale}: the demo agents' latency scale
STORE_AT_SCALE = (
    QUIET + '[plugins.resume]\npath = "resume.sqlite3"\n\n'
    "[plugins.consensus]\ndemo_latency_scale = {scale}\n"
)
BRANCH = re.compile(rf"branch ({re.escape(DEMO)}-\d{{14}}-[0-9a-f]{{8}})")


def copy_spec(cwd: Path, spec: str = DEMO, *, only_spec_md: bool = False) -> Path:
    """Copy ``docs/<spec>`` of the repository (or only its spec.md) under ``cwd``."""
    target = cwd / "docs" / spec
    if only_spec_md:
        target.mkdir(parents=True)
        shutil.copy(REPO / "docs" / spec / "spec.md", target)
    else:
        shutil.copytree(REPO / "docs" / spec, target, ignore=without_demo_outputs)
    return target


def clear(output: Any) -> None:
    for buffer in (output.out_buffer, output.err_buffer):
        buffer.seek(0)
        buffer.truncate()


def json_out(output: Any) -> Any:
    """The JSON object a ``--json`` command printed last."""
    text = output.text
    return json.loads(text[text.index("{") :])


async def history(shell: Any, output: Any, spec: str = DEMO) -> dict[str, Any]:
    """``/history <spec> --json``, with the output cleared before and after."""
    clear(output)
    assert await shell.execute(f"/history {spec} --json") == 0
    data: dict[str, Any] = json.loads(output.text)
    clear(output)
    return data


def branch_of(output: Any) -> str:
    """The branch id of the last run the output announced."""
    found = BRANCH.findall(output.text)
    assert found, output.text
    return str(found[-1])


def answer_recorded(request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply:
    """A responder: each agent gives its recorded answer for the stage asked."""
    return ScriptedReply(content=recorded(stage_of(request), headers["x-agent-name"]))


def openai_agents(server: OpenAIServer, roles: bool = True) -> str:
    """The three demo agents as ``openai`` agents of ``server`` (with their roles)."""
    names = {"gemini": "researcher", "claude": "synthesizer", "gpt_pro": "aggregator"}
    return "".join(
        f'[agents.{name}]\nbackend = "openai"\nbase_url = "{server.base_url}"\n'
        f'model = "{name}-model"\n' + (f'role = "{role}"\n' if roles else "") + "\n"
        for name, role in names.items()
    )


class FinishedCalls:
    """A test plugin: the agent spec and the response of every finished call."""

    def __init__(self) -> None:
        self.seen: list[tuple[AgentCall, AgentResponse]] = []

    @hookimpl
    def after_agent_call(self, call: AgentCall, response: AgentResponse) -> None:
        self.seen.append((call, response))
