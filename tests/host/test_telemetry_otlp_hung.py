"""A hung OTLP collector (a real TCP listener on 127.0.0.1 that accepts and never
answers) is named, with counts, by ``/telemetry flush``, by Ctrl-C during the flush and
at exit. Nothing here asserts on elapsed time: only messages and counters."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentshell.agents import TokenUsage
from agentshell.telemetry import AgentCallFinished
from tests.helpers.sockets import HungCollector, hung_fixture  # noqa: F401 - fixture

ShellFactory = Any


def call(i: int) -> AgentCallFinished:
    return AgentCallFinished(
        call_id=f"c{i}",
        agent="claude",
        backend="openai",
        model="gpt-4o",
        latency_ms=10.0,
        usage=TokenUsage(input_tokens=10, output_tokens=5, total_tokens=15),
    )


def otlp_config(url: str, flush: float, request: float) -> str:
    return (
        f'[telemetry]\nsinks = ["otlp"]\nflush_timeout_s = {flush}\n'
        f'[telemetry.otlp]\nendpoint = "{url}"\ntimeout = {request}\n'
    )


async def test_flush_names_the_hung_sink_and_what_it_holds(
    make_shell: ShellFactory, output: Any, hung: HungCollector
) -> None:
    shell = await make_shell(config=otlp_config(hung.url, flush=0.5, request=5))
    for i in range(3):
        shell.telemetry.emit(call(i))
    assert await shell.execute("/telemetry flush") == 1
    assert hung.accepted.is_set()  # the request reached the listener and hung there
    errors = output.errors
    assert "some sinks" not in errors
    [line] = [x for x in errors.splitlines() if x.startswith("error: telemetry: ")]
    # still waiting for the collector (or for the sink thread), or, when the request's
    # own timeout came first, failed: either way named, with the count
    pending = f"otlp ({hung.url}): 3 span(s) not yet exported" in line or (
        f"otlp ({hung.url}): 3 event(s) still queued" in line
    )
    failed = f"otlp: 3 span(s) not exported to {hung.url}/v1/traces: timed out" in line
    assert pending or failed, line
    if pending:
        assert "still being written in the background" in line


async def test_ctrl_c_interrupts_the_flush_and_says_what_is_left(
    make_shell: ShellFactory, output: Any, hung: HungCollector
) -> None:
    # a flush that could wait 30 s: only the cancellation can end it early
    shell = await make_shell(config=otlp_config(hung.url, flush=30, request=30))
    shell.telemetry.emit(call(1))
    task = asyncio.ensure_future(shell.execute("/telemetry flush"))
    # the export request is now stuck on the socket
    assert await asyncio.to_thread(hung.accepted.wait, 30)
    task.cancel()  # what Ctrl-C does to the running command (runner_cli.run_command)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "telemetry flush interrupted" in output.errors
    assert f"otlp ({hung.url}): 1 span(s) not yet exported" in output.errors
    assert "background" in output.errors
    # nothing was thrown away: the span is still waiting in the sink
    [stats] = shell.telemetry.stats()
    assert stats.export_failed == 0 and stats.exported == 0
    # the session ends within a short budget: the close drops the span and says so
    shell.config.telemetry.flush_timeout_s = 0.3
    shell.telemetry._workers[0].sink.close_budget_s = 0.3
    hung.close()


async def test_exit_with_a_hung_collector_warns_once_with_the_count(
    make_shell: ShellFactory, output: Any, hung: HungCollector
) -> None:
    shell = await make_shell(config=otlp_config(hung.url, flush=0.5, request=5))
    for i in range(4):
        shell.telemetry.emit(call(i))
    await shell.stop()
    assert hung.accepted.is_set()
    lines = [x for x in output.errors.splitlines() if "otlp" in x]
    assert len(lines) == 1, lines
    assert lines[0].startswith("warning: telemetry: otlp (")
    assert hung.url in lines[0]
    # still in the SDK's queue when the budget ran out, or failed on the way out
    assert (
        "4 span(s) not yet exported; gave up after 0.5 s, they are lost" in lines[0]
        or "4 span(s) not exported" in lines[0]
    )
    [retired] = shell.telemetry.retired
    assert retired.exported == 0
