"""The docs agree with the code: the examples in docs/plugins.md (and the event example
in docs/hooks.md) are real plugins (load them and use them), and the documented exit
status of a bad configuration is the CLI's."""

from __future__ import annotations

import json
import re
import types
from collections.abc import Iterator
from typing import Any

import pytest

from agentshell.agents import AgentRequest
from agentshell.plugins import hookimpl
from agentshell.telemetry import EVENT_TYPES
from tests.conftest import CapturedOutput
from tests.helpers.events import ListSinkPlugin
from tests.helpers.paths import REPO
from tests.servers.otlp_receiver import OTLPReceiver

DOC = REPO / "docs" / "plugins.md"
HOOKS = REPO / "docs" / "hooks.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def module_from(source: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, f"{DOC}:{name}", "exec"), module.__dict__)
    return module


async def test_the_twenty_line_example_works(make_shell: Any, output: CapturedOutput) -> None:
    source = python_blocks()[0]
    assert len(source.strip().splitlines()) <= 25
    plugin = module_from(source, "wordcount")
    shell = await make_shell(plugins=[plugin])
    assert shell.plugins.infos["wordcount"].state == "loaded"
    assert await shell.execute("/wordcount one two --echo") == 0
    assert "2 words: one two" in output.text
    assert await shell.execute("/wordcount") == 1
    assert "wc 2" in shell.status_text()


async def test_the_telemetry_sink_example_works(make_shell: Any) -> None:
    plugin = module_from(python_blocks()[1], "tap")
    shell = await make_shell(
        plugins=[plugin],
        config='[telemetry]\nsinks = ["tap"]\n\n[telemetry.tap]\npath = "t.jsonl"\n',
    )
    assert await shell.execute("/help") == 0
    await shell.stop()
    lines = (shell.data_dir / "t.jsonl").read_text(encoding="utf-8").splitlines()
    types_seen = [json.loads(line)["type"] for line in lines]
    assert types_seen[0].startswith("session")
    assert len(types_seen) >= 2


def test_docs_give_exit_2_for_a_bad_configuration() -> None:
    from agentshell.cli import EXIT_USAGE

    spec_kit = (REPO / "docs" / "spec-kit.md").read_text(encoding="utf-8")
    sentence = spec_kit[spec_kit.index("Exit codes") :].split("\n\n")[0]
    assert f"`{EXIT_USAGE}` the configuration is invalid" in sentence
    assert "bad configuration" not in sentence.split(f"`{EXIT_USAGE}`")[0]
    configuration = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert f"stops with exit status {EXIT_USAGE}" in configuration


class ApprovingBackend:
    """Answers every prompt with "approve" after a recorded 12.5 s (no waiting)."""

    async def complete(self, call: Any) -> Any:
        from agentshell.agents import AgentResponse

        return AgentResponse(agent=call.agent.name, content="approve", latency_ms=12_500.0)

    async def aclose(self) -> None:
        pass


class ApprovingBackendPlugin:
    __name__ = "approving_backend"

    @hookimpl
    def register_agent_backends(self, register: Any) -> None:
        register("approving", lambda shell: ApprovingBackend())


@pytest.fixture
def forget_doc_events() -> Iterator[None]:
    """The examples define event types; keep them out of the registry afterwards
    (test_telemetry_bus checks it holds exactly the documented events)."""
    before = set(EVENT_TYPES)
    yield
    for name in set(EVENT_TYPES) - before:
        del EVENT_TYPES[name]


async def test_the_event_types_example_traces_a_review(
    make_shell: Any, otlp_receiver: OTLPReceiver, forget_doc_events: None
) -> None:
    [source] = [b for b in python_blocks() if "class ReviewStarted(Event)" in b]
    plugin = module_from(source, "review")
    config = (
        '[telemetry]\nsinks = ["otlp"]\nflush_timeout_s = 30\n'
        f'[telemetry.otlp]\nendpoint = "{otlp_receiver.endpoint}"\n'
        '[agents.reviewer]\nbackend = "approving"\nmodel = "m1"\n'
    )
    shell = await make_shell(plugins=[plugin, ApprovingBackendPlugin()], config=config)
    assert await shell.execute("/review README.md") == 0
    shell.telemetry.remove_sink("otlp", timeout=30)
    spans = {s["name"]: s for s in otlp_receiver.wait_for_spans(2)}
    review, chat = spans["invoke_agent review"], spans["chat m1"]
    assert review["parent_span_id"] is None and chat["parent_span_id"] == review["span_id"]
    assert chat["trace_id"] == review["trace_id"]
    assert review["attributes"]["review.verdict"] == "approve"
    assert [e["name"] for e in review["events"]] == ["verdict"]
    assert chat["attributes"]["review.path"] == review["attributes"]["review.path"] == "README.md"


async def test_the_hooks_event_example_marks_slow_calls(
    make_shell: Any, forget_doc_events: None
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", HOOKS.read_text(encoding="utf-8"), re.DOTALL)
    [source] = [b for b in blocks if "class SlowCall(Event)" in b]
    plugin = module_from(source, "slowcalls")
    events = ListSinkPlugin()
    config = '[telemetry]\nsinks = ["list"]\n[agents.a]\nbackend = "approving"\n'
    shell = await make_shell(plugins=[plugin, ApprovingBackendPlugin(), events], config=config)
    await shell.runner.run(shell.agents["a"], AgentRequest(prompt="x"), {"trace_parent": "k1"})
    assert shell.telemetry.flush(10)
    [slow] = [e for e in events.events if e.type == "slowcalls.slow"]
    assert [(op.key, op.name) for op in slow.span_ops()] == [("k1", "slow call")]
