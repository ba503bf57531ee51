"""The ``openai`` backend streams (server-sent events) when the caller listens for
deltas: against the real loopback OpenAI-compatible server, through the real runner
(retry waits on the runner's fake clock). The server holds the rest of an answer until
the test has seen its first deltas, so "before the answer completes" is a fact of the
test, not a timing."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from agentshell.agents import AgentRequest, AgentSpec, Delta
from agentshell.backends.openai import make_backend
from agentshell.errors import FatalAgentError
from tests.agents.harness import Harness, ShellStub, make_harness, make_shell_stub
from tests.servers.openai_server import OpenAIServer, ScriptedReply, make_usage


@pytest.fixture
def stub(tmp_path: Path) -> ShellStub:
    return make_shell_stub(tmp_path / "data")


def agent(server: OpenAIServer, **options: Any) -> AgentSpec:
    return AgentSpec(
        name="claude",
        backend="openai",
        model="gpt-test",
        base_url=server.base_url,
        timeout_s=10.0,
        options=options,
    )


def harness(stub: ShellStub) -> Harness:
    return make_harness({"openai": make_backend}, shell=stub)


class Deltas:
    """Collects deltas; ``until(n)`` waits (on the loop) for the n-th one."""

    def __init__(self) -> None:
        self.got: list[Delta] = []
        self._waiters: dict[int, asyncio.Event] = {}

    def __call__(self, delta: Delta) -> None:
        self.got.append(delta)
        for n, event in self._waiters.items():
            if len(self.got) >= n:
                event.set()

    async def until(self, n: int) -> None:
        event = self._waiters.setdefault(n, asyncio.Event())
        if len(self.got) >= n:
            event.set()
        await asyncio.wait_for(event.wait(), 10)


async def test_deltas_arrive_before_the_answer_completes_and_usage_comes_last(
    openai_server: OpenAIServer, stub: ShellStub
) -> None:
    release = threading.Event()
    usage = make_usage(40, 4, cached_tokens=32, reasoning_tokens=2)
    reply = ScriptedReply(
        pieces=["Hel", "lo ", "wor", "ld"], hold_after=2, release=release, usage=usage
    )
    openai_server.script("claude", [reply])
    h = harness(stub)
    deltas = Deltas()
    task = asyncio.create_task(
        h.runner.run(agent(openai_server), AgentRequest(prompt="hi"), on_delta=deltas)
    )
    try:
        await deltas.until(2)
        # the server is holding the rest: the call cannot have finished
        assert reply.held.is_set() and not task.done()
        assert deltas.got == [Delta("Hel"), Delta("lo ")]
    finally:
        release.set()
    response = await task
    assert deltas.got == [Delta("Hel"), Delta("lo "), Delta("wor"), Delta("ld")]
    assert response.content == "Hello world" and response.finish_reason == "stop"
    assert response.usage.input_tokens == 40 and response.usage.cached_input_tokens == 32
    assert response.usage.reasoning_output_tokens == 2
    (call,) = openai_server.calls
    assert call.stream and call.json["stream_options"] == {"include_usage": True}
    finished: Any = h.events("agent.call.finished")[0]
    assert finished.usage.output_tokens == 4
    await h.runner.aclose()


async def test_without_a_listener_the_request_does_not_stream(
    openai_server: OpenAIServer, stub: ShellStub
) -> None:
    h = harness(stub)
    response = await h.runner.run(agent(openai_server), AgentRequest(prompt="hi"))
    assert response.content == "ok"
    assert not openai_server.calls[0].stream
    await h.runner.aclose()


async def test_request_stream_false_wins_and_the_answer_comes_as_one_delta(
    openai_server: OpenAIServer, stub: ShellStub
) -> None:
    openai_server.script("claude", [ScriptedReply(content="all at once")])
    h = harness(stub)
    deltas = Deltas()
    request = AgentRequest(prompt="hi", stream=False)
    await h.runner.run(agent(openai_server), request, on_delta=deltas)
    assert not openai_server.calls[0].stream
    assert deltas.got == [Delta("all at once")]
    await h.runner.aclose()


async def test_a_mid_stream_disconnect_is_retried_and_the_retry_is_a_new_attempt(
    openai_server: OpenAIServer, stub: ShellStub
) -> None:
    openai_server.script(
        "claude",
        [
            # the role event, two content deltas, then the connection drops
            ScriptedReply(pieces=["par", "tial ", "lost"], truncate_stream_after=3),
            ScriptedReply(pieces=["fresh ", "answer"]),
        ],
    )
    h = harness(stub)
    deltas = Deltas()
    response = await h.runner.run(agent(openai_server), AgentRequest(prompt="hi"), on_delta=deltas)
    assert deltas.got == [
        Delta("par", 1),
        Delta("tial ", 1),
        Delta("fresh ", 2),
        Delta("answer", 2),
    ]
    assert response.content == "fresh answer" and response.attempts == 2
    retries: list[Any] = h.events("agent.call.retry")
    assert [r.error_type for r in retries] == ["disconnected"]
    await h.runner.aclose()


async def test_an_error_event_mid_stream_is_retried(
    openai_server: OpenAIServer, stub: ShellStub
) -> None:
    body = (
        'data: {"choices": [{"index": 0, "delta": {"content": "half "}}]}\n\n'
        'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'
    )
    openai_server.script(
        "claude",
        [
            ScriptedReply(body=body, headers={"Content-Type": "text/event-stream"}),
            ScriptedReply(content="whole"),
        ],
    )
    h = harness(stub)
    deltas = Deltas()
    response = await h.runner.run(agent(openai_server), AgentRequest(prompt="hi"), on_delta=deltas)
    assert deltas.got == [Delta("half ", 1), Delta("whole", 2)]
    assert response.content == "whole"
    await h.runner.aclose()


async def test_cancelling_mid_stream_keeps_the_partial_text_and_closes_the_request(
    openai_server: OpenAIServer, stub: ShellStub
) -> None:
    never = threading.Event()
    reply = ScriptedReply(pieces=["kept ", "never sent"], hold_after=1, release=never)
    openai_server.script("claude", [reply])
    h = harness(stub)
    deltas = Deltas()
    task = asyncio.create_task(
        h.runner.run(agent(openai_server), AgentRequest(prompt="hi"), on_delta=deltas)
    )
    await deltas.until(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deltas.got == [Delta("kept ")]
    failed: list[Any] = h.events("agent.call.failed")
    assert [e.error_type for e in failed] == ["cancelled"]
    assert h.runner.in_flight == {}
    await h.runner.aclose()


async def test_a_model_that_refuses_streaming_is_asked_again_without_it(
    openai_server: OpenAIServer, stub: ShellStub
) -> None:
    openai_server.default = ScriptedReply(content="no streams here", stream_ok=False)
    h = harness(stub)
    deltas = Deltas()
    spec = agent(openai_server)
    response = await h.runner.run(spec, AgentRequest(prompt="hi"), on_delta=deltas)
    assert response.content == "no streams here" and response.attempts == 1
    assert deltas.got == [Delta("no streams here")]
    assert [c.stream for c in openai_server.calls] == [True, False]
    # remembered: the next call does not ask again
    await h.runner.run(spec, AgentRequest(prompt="again"), on_delta=deltas)
    assert [c.stream for c in openai_server.calls] == [True, False, False]
    await h.runner.aclose()


async def test_an_explicit_stream_request_refused_is_an_error(
    openai_server: OpenAIServer, stub: ShellStub
) -> None:
    openai_server.default = ScriptedReply(stream_ok=False)
    h = harness(stub)
    with pytest.raises(FatalAgentError, match="HTTP 400"):
        await h.runner.run(agent(openai_server), AgentRequest(prompt="hi", stream=True))
    assert len(openai_server.calls) == 1
    await h.runner.aclose()
