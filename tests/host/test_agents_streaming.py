"""The streaming contract of the runner: ``AgentRunner.run(..., on_delta=...)``.

The backends here are in-process objects implementing the backend protocol (the
``openai`` and ``command`` backends stream in their own tests, against a real server
and real processes). Retry waits use a fake clock.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentshell import Delta as PublicDelta
from agentshell.agents import AgentCall, AgentRequest, AgentResponse, AgentSpec, Delta
from agentshell.errors import AgentDisconnected, FatalAgentError
from agentshell.plugins import hookimpl
from tests.agents.harness import make_harness

REQ = AgentRequest(prompt="hello")


def spec(name: str = "a1") -> AgentSpec:
    return AgentSpec(name=name, backend="b", model="m-1", timeout_s=30.0)


class WholeBackend:
    """Answers at once, without streaming (as a third-party backend that predates it)."""

    def __init__(self, content: str = "the whole answer") -> None:
        self.content = content

    async def complete(self, call: AgentCall) -> AgentResponse:
        return AgentResponse(agent=call.agent.name, content=self.content)

    async def aclose(self) -> None:
        pass


class PiecesBackend:
    """Streams each attempt's pieces through ``call.emit``; an attempt may end in an
    error after its pieces, or wait on a gate between two pieces."""

    def __init__(self, attempts: list[tuple[list[str], Exception | None]]) -> None:
        self.attempts = attempts
        self.gate: asyncio.Event | None = None
        self.waiting = asyncio.Event()

    async def complete(self, call: AgentCall) -> AgentResponse:
        pieces, error = self.attempts[call.attempt - 1]
        for index, piece in enumerate(pieces):
            if index == 1 and self.gate is not None:
                self.waiting.set()
                await self.gate.wait()
            call.emit(piece)
        if error is not None:
            raise error
        return AgentResponse(agent=call.agent.name, content="".join(pieces))

    async def aclose(self) -> None:
        pass


def test_delta_is_public_and_frozen() -> None:
    assert PublicDelta is Delta
    delta = Delta("hi")
    assert delta.attempt == 1
    with pytest.raises(AttributeError):
        delta.text = "changed"  # type: ignore[misc]


def test_emit_stamps_the_attempt_and_records_that_it_streamed() -> None:
    got: list[Delta] = []
    call = AgentCall(agent=spec(), request=REQ, on_delta=got.append)
    assert call.streaming and not call.streamed
    call.emit("")  # nothing to say: no delta
    assert got == [] and not call.streamed
    call.emit("a")
    call.attempt = 2
    assert not call.streamed  # the new attempt has not streamed yet
    call.emit("b")
    assert got == [Delta("a", 1), Delta("b", 2)]
    assert call.streamed


def test_emit_without_a_listener_and_a_failing_listener_are_harmless() -> None:
    AgentCall(agent=spec(), request=REQ).emit("nobody listens")

    def broken(delta: Delta) -> None:
        raise RuntimeError("display bug")

    call = AgentCall(agent=spec(), request=REQ, on_delta=broken)
    call.emit("still fine")
    assert call.streamed


async def test_a_backend_without_streaming_gives_the_whole_answer_as_one_delta() -> None:
    h = make_harness({"b": lambda shell: WholeBackend()})
    got: list[Delta] = []
    response = await h.runner.run(spec(), REQ, on_delta=got.append)
    assert got == [Delta("the whole answer", 1)]
    assert response.content == "the whole answer"


async def test_no_listener_no_deltas_and_the_answer_unchanged() -> None:
    backend = PiecesBackend([(["a", "b"], None)])
    h = make_harness({"b": lambda shell: backend})
    response = await h.runner.run(spec(), REQ)
    assert response.content == "ab"


async def test_a_streaming_backend_delivers_each_piece_once_and_no_whole_answer() -> None:
    backend = PiecesBackend([(["Hel", "lo ", "world"], None)])
    h = make_harness({"b": lambda shell: backend})
    got: list[Delta] = []
    response = await h.runner.run(spec(), REQ, on_delta=got.append)
    assert got == [Delta("Hel"), Delta("lo "), Delta("world")]
    assert response.content == "Hello world"


async def test_a_retry_after_partial_output_restarts_with_a_new_attempt_number() -> None:
    backend = PiecesBackend([(["par", "tial"], AgentDisconnected("reset")), (["fresh"], None)])
    h = make_harness({"b": lambda shell: backend})
    got: list[Delta] = []
    response = await h.runner.run(spec(), REQ, on_delta=got.append)
    assert got == [Delta("par", 1), Delta("tial", 1), Delta("fresh", 2)]
    assert response.content == "fresh" and response.attempts == 2


async def test_an_answer_from_a_before_hook_after_a_streamed_failure_is_a_new_attempt() -> None:
    class CacheOnRetry:
        @hookimpl
        def before_agent_call(self, call: AgentCall) -> AgentResponse | None:
            if call.attempt == 2:
                return AgentResponse(agent=call.agent.name, content="from the cache")
            return None

    backend = PiecesBackend([(["par"], AgentDisconnected("reset"))])
    h = make_harness({"b": lambda shell: backend}, plugins=[CacheOnRetry()])
    got: list[Delta] = []
    await h.runner.run(spec(), REQ, on_delta=got.append)
    assert got == [Delta("par", 1), Delta("from the cache", 2)]


async def test_a_failed_call_keeps_what_was_streamed_with_the_caller() -> None:
    backend = PiecesBackend([(["half an "], FatalAgentError("broken"))])
    h = make_harness({"b": lambda shell: backend})
    got: list[Delta] = []
    with pytest.raises(FatalAgentError):
        await h.runner.run(spec(), REQ, on_delta=got.append)
    assert got == [Delta("half an ")]


async def test_cancelling_mid_stream_keeps_the_partial_text_and_propagates() -> None:
    backend = PiecesBackend([(["first ", "second"], None)])
    backend.gate = asyncio.Event()  # never set: the answer stops after its first piece
    h = make_harness({"b": lambda shell: backend})
    got: list[Delta] = []
    task = asyncio.create_task(h.runner.run(spec(), REQ, on_delta=got.append))
    await asyncio.wait_for(backend.waiting.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert got == [Delta("first ")]
    failed: list[Any] = h.events("agent.call.failed")
    assert [e.error_type for e in failed] == ["cancelled"]
    assert h.runner.in_flight == {}
