"""The agent runner: hooks, telemetry, timeouts, cancellation and the retry policy.

The backends here are in-process objects implementing the backend protocol (the
HTTP and subprocess backends have their own tests against real servers and real
processes). Retry waits use a fake clock: nothing waits for, or asserts on, wall time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentshell.agents import (
    AgentCall,
    AgentRequest,
    AgentResponse,
    AgentSpec,
    Progress,
    RetryPolicy,
    TokenUsage,
)
from agentshell.config import RetrySettings
from agentshell.errors import (
    AgentDisconnected,
    AgentError,
    AgentTimeout,
    AuthRequired,
    BadAgentOutput,
    FatalAgentError,
    RateLimited,
)
from agentshell.plugins import hookimpl
from agentshell.redact import register_secret
from tests.agents.harness import make_harness
from tests.helpers.paths import REPO

Step = AgentResponse | AgentError | Exception | Callable[[AgentCall], Any]


class ScriptedBackend:
    """Answers each call with the next step of a script (per agent); an exhausted
    script answers ``ok``. Records every call it receives."""

    def __init__(self, steps: dict[str, list[Step]] | None = None) -> None:
        self.steps = {k: list(v) for k, v in (steps or {}).items()}
        self.calls: list[AgentCall] = []
        self.closed = False

    async def complete(self, call: AgentCall) -> AgentResponse:
        self.calls.append(call)
        queue = self.steps.get(call.agent.name) or []
        step: Step = queue.pop(0) if queue else AgentResponse(agent=call.agent.name, content="ok")
        if callable(step) and not isinstance(step, AgentResponse | Exception):
            step = await step(call)
        if isinstance(step, BaseException):
            raise step
        assert isinstance(step, AgentResponse)
        return step

    async def aclose(self) -> None:
        self.closed = True

    def factory(self, shell: Any) -> ScriptedBackend:
        return self


def spec(name: str = "a1", *, timeout_s: float = 30.0) -> AgentSpec:
    return AgentSpec(name=name, backend="scripted", model="m-1", role="tester", timeout_s=timeout_s)


REQ = AgentRequest(prompt="hello")


class UpperBoundRandom(random.Random):
    """``uniform(a, b)`` returns ``b``: makes full jitter show its cap."""

    def uniform(self, a: float, b: float) -> float:
        return b


# -- the happy path ---------------------------------------------------------------------


async def test_run_passes_hooks_telemetry_and_progress() -> None:
    seen: list[str] = []

    class Plugin:
        @hookimpl
        def before_agent_call(self, call: AgentCall) -> None:
            seen.append(f"before:{call.agent.name}:{call.attempt}:{call.context['stage']}")

        @hookimpl
        async def after_agent_call(self, call: AgentCall, response: AgentResponse) -> None:
            await asyncio.sleep(0)
            response.cost_usd = 0.01
            seen.append(f"after:{response.content}")

    backend = ScriptedBackend(
        {
            "a1": [
                AgentResponse(
                    agent="a1",
                    content='```json\n{"verdict": "yes"}\n```',
                    usage=TokenUsage(input_tokens=10, output_tokens=3, total_tokens=13),
                )
            ]
        }
    )
    h = make_harness({"scripted": backend.factory}, plugins=[Plugin()])
    progress: list[Progress] = []
    # the hooks see the context; the events carry the request's labels
    request = AgentRequest(prompt="hi", expect_json=True, labels={"x.stage": "plan", "x.n": 1})
    response = await h.runner.run(
        spec(), request, {"stage": "plan", "spec_id": "S-1"}, progress=progress.append
    )
    assert response.parsed == {"verdict": "yes"}
    assert response.attempts == 1 and response.cost_usd == 0.01
    assert seen == ["before:a1:1:plan", 'after:```json\n{"verdict": "yes"}\n```']
    assert [p.state for p in progress] == ["started", "done"]
    assert progress[-1].usage is not None and progress[-1].usage.total_tokens == 13
    started, finished = h.events("agent.call.started"), h.events("agent.call.finished")
    assert len(started) == len(finished) == 1
    fin: Any = finished[0]
    assert (fin.agent, fin.labels, fin.attempts, fin.cost_usd) == (
        "a1",
        {"x.stage": "plan", "x.n": 1},
        1,
        0.01,
    )
    assert started[0].labels == fin.labels
    assert fin.usage.total_tokens == 13 and fin.content is None  # content is opt-in


async def test_cached_response_from_hook_skips_backend() -> None:
    class Cache:
        @hookimpl
        def before_agent_call(self, call: AgentCall) -> AgentResponse:
            return AgentResponse(agent=call.agent.name, content="from cache")

    backend = ScriptedBackend()
    h = make_harness({"scripted": backend.factory}, plugins=[Cache()])
    progress: list[Progress] = []
    response = await h.runner.run(spec(), REQ, progress=progress.append)
    assert response.cached and response.content == "from cache"
    assert backend.calls == []
    assert progress[-1].state == "cached"


async def test_hook_returning_wrong_type_is_fatal_not_a_crash() -> None:
    class Broken:
        @hookimpl
        def before_agent_call(self, call: AgentCall) -> str:
            return "not a response"

    h = make_harness({"scripted": ScriptedBackend().factory}, plugins=[Broken()])
    with pytest.raises(FatalAgentError, match="returned str"):
        await h.runner.run(spec(), REQ)


async def test_unknown_backend_names_the_available_ones() -> None:
    h = make_harness({"scripted": ScriptedBackend().factory})
    bad = AgentSpec(name="x", backend="nope")
    with pytest.raises(FatalAgentError, match=r"unknown backend 'nope' \(available: scripted\)"):
        await h.runner.run(bad, REQ)


async def test_backend_bug_becomes_fatal_error_without_secrets() -> None:
    register_secret("sk-runner-secret-123456")
    backend = ScriptedBackend({"a1": [KeyError("sk-runner-secret-123456")]})
    h = make_harness({"scripted": backend.factory})
    with pytest.raises(FatalAgentError) as info:
        await h.runner.run(spec(), REQ)
    assert "KeyError" in str(info.value)
    assert "sk-runner-secret-123456" not in str(info.value)
    failed: Any = h.events("agent.call.failed")[0]
    assert failed.error_type == "fatal" and "sk-runner-secret" not in failed.error


# -- retries ----------------------------------------------------------------------------


async def test_disconnect_is_retried_with_notice_event_and_progress() -> None:
    backend = ScriptedBackend({"a1": [AgentDisconnected("connection reset"), AgentTimeout("slow")]})
    h = make_harness({"scripted": backend.factory})
    progress: list[Progress] = []
    response = await h.runner.run(spec(), REQ, progress=progress.append)
    assert response.content == "ok" and response.attempts == 3
    assert len(backend.calls) == 3
    assert h.clock is not None and len(h.clock.sleeps) == 2
    # with a progress display the notice travels in Progress.detail, printed once there
    assert h.notes == []
    details = [p.detail for p in progress if p.state == "retrying"]
    assert details[0].startswith("a1: retrying in ")
    assert "(attempt 2/4): connection reset" in details[0]
    assert "(attempt 3/4): slow" in details[1]
    retries: list[Any] = h.events("agent.call.retry")
    assert [(r.attempt, r.next_attempt, r.error_type) for r in retries] == [
        (1, 2, "disconnected"),
        (2, 3, "timeout"),
    ]
    assert [r.delay_s for r in retries] == [round(s, 3) for s in h.clock.sleeps]
    assert [p.state for p in progress] == ["started", "retrying", "retrying", "done"]
    finished: Any = h.events("agent.call.finished")[0]
    assert finished.attempts == 3


async def test_retry_notice_goes_to_the_shell_without_a_progress_display() -> None:
    backend = ScriptedBackend({"a1": [AgentDisconnected("connection reset")]})
    h = make_harness({"scripted": backend.factory})
    await h.runner.run(spec(), REQ)
    assert len(h.notes) == 1
    assert h.notes[0].startswith("a1: retrying in ")
    assert "(attempt 2/4): connection reset" in h.notes[0]


async def test_full_jitter_backoff_doubles_up_to_max_delay() -> None:
    settings = RetrySettings(attempts=6, base_delay_s=0.5, max_delay_s=3.0, total_budget_s=1000)
    backend = ScriptedBackend({"a1": [AgentDisconnected("x")] * 5})
    h = make_harness({"scripted": backend.factory}, retry=settings)
    h.runner.policy.rng = UpperBoundRandom()
    await h.runner.run(spec(), REQ)
    assert h.clock is not None
    assert h.clock.sleeps == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_backoff_is_uniform_between_zero_and_cap() -> None:
    policy = RetryPolicy(RetrySettings(base_delay_s=1.0, max_delay_s=8.0), rng=random.Random(3))
    for attempt in range(1, 8):
        cap = min(8.0, 2 ** (attempt - 1))
        samples = [policy.backoff(attempt) for _ in range(200)]
        assert all(0 <= s <= cap for s in samples)
        assert max(samples) > cap * 0.8  # spread over the range: not a constant
        assert min(samples) < cap * 0.2


async def test_rate_limit_waits_for_reset_hint_plus_jitter() -> None:
    backend = ScriptedBackend()
    h = make_harness({"scripted": backend.factory})
    assert h.clock is not None
    reset_at = dt.datetime.fromtimestamp(h.clock.wall + 12.5, dt.UTC)
    backend.steps["a1"] = [RateLimited("HTTP 429", reset_at=reset_at)]
    response = await h.runner.run(spec(), REQ)
    assert response.attempts == 2
    (wait,) = h.clock.sleeps
    assert 12.5 <= wait <= 12.5 + RetrySettings().rate_limit_jitter_s
    assert "retrying in 12." in h.notes[0]


async def test_rate_limit_without_hint_backs_off() -> None:
    backend = ScriptedBackend({"a1": [RateLimited("HTTP 429")]})
    h = make_harness({"scripted": backend.factory}, retry=RetrySettings(max_delay_s=2.0))
    await h.runner.run(spec(), REQ)
    assert h.clock is not None and 0 <= h.clock.sleeps[0] <= 0.5


async def test_rate_limit_beyond_budget_gives_up_clearly() -> None:
    h = make_harness(
        {"scripted": ScriptedBackend().factory}, retry=RetrySettings(total_budget_s=60)
    )
    assert h.clock is not None
    reset_at = dt.datetime.fromtimestamp(h.clock.wall + 3600, dt.UTC)
    backend = ScriptedBackend({"a1": [RateLimited("HTTP 429: slow down", reset_at=reset_at)]})
    h.runner._factories["scripted"] = backend.factory
    with pytest.raises(RateLimited) as info:
        await h.runner.run(spec(), REQ)
    message = str(info.value)
    assert "giving up: the server asks to wait 3600" in message
    assert "of the retry budget (60s) remain" in message
    assert h.clock.sleeps == [] and len(backend.calls) == 1
    failed: Any = h.events("agent.call.failed")[0]
    assert failed.error_type == "rate_limited" and "giving up" in failed.error


async def test_budget_is_shared_by_all_retries() -> None:
    settings = RetrySettings(attempts=50, base_delay_s=4, max_delay_s=4, total_budget_s=10)
    backend = ScriptedBackend({"a1": [AgentDisconnected("down")] * 50})
    h = make_harness({"scripted": backend.factory}, retry=settings)
    h.runner.policy.rng = UpperBoundRandom()
    with pytest.raises(AgentDisconnected, match=r"giving up: the next retry would wait 4\.0s"):
        await h.runner.run(spec(), REQ)
    assert h.clock is not None and h.clock.sleeps == [4.0, 4.0]
    assert len(backend.calls) == 3


@pytest.mark.parametrize(
    "error",
    [
        AuthRequired("no key", fix="/set-env KEY=<value>"),
        FatalAgentError("HTTP 400"),
        BadAgentOutput("invalid JSON"),
    ],
)
async def test_non_retryable_errors_fail_at_once(error: AgentError) -> None:
    failures: list[BaseException] = []

    class Watch:
        @hookimpl
        def agent_call_failed(self, call: AgentCall, error: BaseException) -> None:
            failures.append(error)

    backend = ScriptedBackend({"a1": [error]})
    h = make_harness({"scripted": backend.factory}, plugins=[Watch()])
    with pytest.raises(type(error)):
        await h.runner.run(spec(), REQ)
    assert len(backend.calls) == 1 and h.notes == []
    assert failures == [error] and error.agent == "a1"


async def test_attempts_exhausted() -> None:
    failures: list[BaseException] = []

    class Watch:
        @hookimpl
        def agent_call_failed(self, call: AgentCall, error: BaseException) -> None:
            failures.append(error)

    backend = ScriptedBackend({"a1": [AgentDisconnected("reset")] * 10})
    h = make_harness({"scripted": backend.factory}, plugins=[Watch()])
    with pytest.raises(AgentDisconnected, match=r"reset \(gave up after 4 attempts\)"):
        await h.runner.run(spec(), REQ)
    assert len(backend.calls) == 4 and len(failures) == 1
    failed: Any = h.events("agent.call.failed")[0]
    assert failed.attempts == 4


async def test_injected_fault_from_hook_is_retried() -> None:
    class Faults:
        @hookimpl
        def before_agent_call(self, call: AgentCall) -> None:
            if call.attempt == 1:
                raise AgentDisconnected("injected")

    backend = ScriptedBackend()
    h = make_harness({"scripted": backend.factory}, plugins=[Faults()])
    response = await h.runner.run(spec(), REQ)
    assert response.attempts == 2 and len(backend.calls) == 1


# -- timeouts and cancellation --------------------------------------------------------


async def test_per_call_timeout_cancels_the_backend() -> None:
    cancelled: list[str] = []

    async def hang(call: AgentCall) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(call.agent.name)
            raise

    backend = ScriptedBackend({"a1": [hang]})
    h = make_harness({"scripted": backend.factory}, retry=RetrySettings(attempts=1))
    with pytest.raises(AgentTimeout, match=r"no answer within 0.05s"):
        await h.runner.run(spec(timeout_s=0.05), REQ)
    assert cancelled == ["a1"]


async def test_attempt_timeout_is_capped_by_the_budget() -> None:
    async def hang(call: AgentCall) -> None:
        await asyncio.Event().wait()

    backend = ScriptedBackend({"a1": [hang]})
    settings = RetrySettings(attempts=3, total_budget_s=0.05)
    h = make_harness({"scripted": backend.factory}, retry=settings, fake_clock=False)
    with pytest.raises(AgentTimeout, match="the rest of the retry budget"):
        await h.runner.run(spec(timeout_s=300), REQ)


async def test_run_many_is_concurrent_and_keeps_order_and_failures() -> None:
    names = [f"a{i}" for i in range(8)]
    started: set[str] = set()
    all_started = asyncio.Event()

    async def wait_for_everyone(call: AgentCall) -> AgentResponse:
        started.add(call.agent.name)
        if len(started) == len(names):
            all_started.set()
        # only finishes if every call is in flight at once: sequential would time out
        await asyncio.wait_for(all_started.wait(), 5)
        return AgentResponse(agent=call.agent.name, content=f"hi from {call.agent.name}")

    steps: dict[str, list[Step]] = {name: [wait_for_everyone] for name in names}
    steps["a3"] = [BadAgentOutput("garbage")]
    started.add("a3")
    backend = ScriptedBackend(steps)
    h = make_harness({"scripted": backend.factory})
    outcomes = await h.runner.run_many([spec(n) for n in names], REQ)
    assert [o.agent.name for o in outcomes] == names
    assert [o.ok for o in outcomes] == [n != "a3" for n in names]
    assert isinstance(outcomes[3].error, BadAgentOutput)
    assert outcomes[5].response is not None and outcomes[5].response.content == "hi from a5"


async def test_run_many_per_agent_requests() -> None:
    backend = ScriptedBackend()
    h = make_harness({"scripted": backend.factory})
    requests = {"x": AgentRequest(prompt="for x"), "y": AgentRequest(prompt="for y")}
    outcomes = await h.runner.run_many([spec("x"), spec("y"), spec("z")], requests)
    assert sorted(c.request.prompt for c in backend.calls) == ["for x", "for y"]
    assert outcomes[2].error is not None and "no request for agent 'z'" in str(outcomes[2].error)


async def test_cancelling_run_many_cancels_every_call() -> None:
    names = ["a", "b", "c", "d"]
    in_flight: set[str] = set()
    cancelled: list[str] = []
    failures: list[tuple[str, str]] = []
    ready = asyncio.Event()

    async def hang(call: AgentCall) -> None:
        in_flight.add(call.agent.name)
        if len(in_flight) == len(names):
            ready.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(call.agent.name)
            raise

    class Watch:
        @hookimpl
        def agent_call_failed(self, call: AgentCall, error: BaseException) -> None:
            failures.append((call.agent.name, type(error).__name__))

    backend = ScriptedBackend({n: [hang] for n in names})
    h = make_harness({"scripted": backend.factory}, plugins=[Watch()])
    progress: list[Progress] = []
    task = asyncio.create_task(
        h.runner.run_many([spec(n) for n in names], REQ, progress=progress.append)
    )
    await asyncio.wait_for(ready.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cancelled) == names
    assert sorted(failures) == [(n, "CancelledError") for n in names]
    failed: list[Any] = h.events("agent.call.failed")
    assert sorted(e.agent for e in failed) == names
    assert {e.error_type for e in failed} == {"cancelled"}
    assert [p.state for p in progress].count("cancelled") == 4  # not "failed"
    assert h.events("agent.call.finished") == []


async def test_aclose_closes_backends() -> None:
    backend = ScriptedBackend()
    h = make_harness({"scripted": backend.factory})
    await h.runner.run(spec(), REQ)
    await h.runner.aclose()
    assert backend.closed


# -- configuration and the shell --------------------------------------------------------


async def test_retry_section_configures_the_shell_runner(
    make_shell: Any, output: Any, tmp_path: Path
) -> None:
    backend = ScriptedBackend({"flaky": [AgentDisconnected("socket closed")] * 5})

    class Backends:
        @hookimpl
        def register_agent_backends(self, register: Any) -> None:
            register("scripted", backend.factory)

    config = """
[retry]
attempts = 2
total_budget_s = 30
base_delay_s = 0.001
max_delay_s = 0.001

[telemetry]
sinks = []

[agents.flaky]
backend = "scripted"
model = "m"
"""
    shell = await make_shell(plugins=[Backends()], config=config, entry_points=False)
    assert shell.runner.policy.settings.attempts == 2
    with pytest.raises(AgentDisconnected, match="gave up after 2 attempts"):
        await shell.runner.run(shell.agents["flaky"], REQ)
    assert len(backend.calls) == 2
    assert "flaky: retrying in 0.0s (attempt 2/2): socket closed" in output.text


async def test_agents_command_lists_targets_and_credentials(
    make_shell: Any, output: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentshell.backends import command, openai, replay
    from agentshell.builtins import agents_cmd

    monkeypatch.delenv("AGENTS_CMD_TEST_KEY", raising=False)
    monkeypatch.setenv("AGENTS_CMD_PRESENT_KEY", "sk-agents-cmd-present-123456")
    config = """
[telemetry]
sinks = []

[agents.gpt]
backend = "openai"
model = "gpt-test"
base_url = "http://127.0.0.1:9/v1"
auth = "env:AGENTS_CMD_TEST_KEY"

[agents.local]
backend = "openai"
model = "llama"
api_key = { env = "AGENTS_CMD_PRESENT_KEY" }

[agents.cli]
backend = "command"
command = ["claude", "-p"]

[agents.demo]
backend = "replay"
dir = "recordings"
"""
    shell = await make_shell(
        plugins=[agents_cmd, openai, command, replay], config=config, entry_points=False
    )
    assert await shell.execute("/agents --json") == 0
    import json

    rows = {row["name"]: row for row in json.loads(output.text)}
    assert rows["gpt"]["available"] is False and rows["gpt"]["target"] == "http://127.0.0.1:9/v1"
    assert (
        rows["local"]["available"] is True
        and rows["local"]["credentials"] == "api_key env AGENTS_CMD_PRESENT_KEY"
    )
    assert rows["cli"]["target"] == "claude -p" and rows["demo"]["recorded"] is True
    assert "sk-agents-cmd-present" not in output.text
    assert await shell.execute("/agents") == 0
    assert "gpt: credentials missing: run /set-env AGENTS_CMD_TEST_KEY=<value>" in output.errors


async def test_the_backend_example_in_the_docs_works() -> None:
    import re
    import types

    text = (REPO / "docs" / "agents.md").read_text(encoding="utf-8")
    source = re.findall(r"```python\n(.*?)```", text, re.DOTALL)[-1]
    module = types.ModuleType("docs_echo_backend")
    exec(compile(source, "docs/agents.md", "exec"), module.__dict__)
    factories: dict[str, Any] = {}
    module.register_agent_backends(lambda name, factory: factories.setdefault(name, factory))
    h = make_harness(factories)
    spec = AgentSpec(name="e", backend="echo")
    response = await h.runner.run(spec, AgentRequest(prompt="echo me"))
    assert response.content == "echo me"


def test_give_up_reasons() -> None:
    policy = RetryPolicy(RetrySettings(total_budget_s=100))
    err = AgentDisconnected("x")
    assert policy.give_up(err, 1, 4, delay=1.0, remaining=50) is None
    assert policy.give_up(err, 1, 1, delay=1.0, remaining=50) == "gave up after 1 attempt"
    assert policy.give_up(err, 4, 4, delay=1.0, remaining=50) == "gave up after 4 attempts"
    assert policy.give_up(BadAgentOutput("x"), 1, 4, delay=1.0, remaining=50) == "not retryable"
    why = policy.give_up(err, 1, 4, delay=7.0, remaining=-2.0)
    assert why == (
        "giving up: the next retry would wait 7.0s but only 0.0s of the retry budget (100s) remain"
    )
