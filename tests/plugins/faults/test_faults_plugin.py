"""The faults plugin in a real shell: off by default, exact counters under concurrency,
the taxonomy errors it raises, targeting, warnings, and /faults.

The backend here is an in-process one registered through the ordinary hook (it answers
at once), so 64 concurrent calls stay fast; tests/plugins/speckit/test_faults_e2e.py runs the same
faults against the loopback OpenAI-protocol server."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import pytest

from agentshell import (
    AgentCall,
    AgentCallRetry,
    AgentDisconnected,
    AgentRequest,
    AgentResponse,
    AgentSpec,
    AgentTimeout,
    Event,
    RateLimited,
    TokenUsage,
    hookimpl,
)
from speckit_faults import plugin as faults_plugin
from speckit_faults.events import FaultInjected
from speckit_faults.injector import FaultInjector
from tests.helpers.speckit import FAST, QUIET, clear


class EchoBackend:
    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, call: AgentCall) -> AgentResponse:
        self.calls += 1
        await asyncio.sleep(0)  # let the other calls interleave
        return AgentResponse(agent=call.agent.name, content="ok", usage=TokenUsage())

    async def aclose(self) -> None:
        pass


class Harness:
    """A test plugin: the "echo" backend and a "list" telemetry sink."""

    __name__ = "faults_harness"

    def __init__(self) -> None:
        self.backend = EchoBackend()
        self.events: list[Event] = []
        self.lock = threading.Lock()

    @hookimpl
    def register_agent_backends(self, register: Any) -> None:
        register("echo", lambda shell: self.backend)

    @hookimpl
    def register_telemetry_sinks(self, register: Any) -> None:
        harness = self

        class Sink:
            def handle(self, event: Event) -> None:
                with harness.lock:
                    harness.events.append(event)

            def close(self) -> None:
                pass

        register("list", lambda shell, settings: Sink())

    def of(self, kind: type[Event]) -> list[Any]:
        with self.lock:
            return [e for e in self.events if isinstance(e, kind)]


CONFIG = """
[retry]
attempts = 10
base_delay_s = 0.001
max_delay_s = 0.001
rate_limit_jitter_s = 0

[telemetry]
sinks = ["list"]
"""


def agents(n: int) -> list[AgentSpec]:
    return [AgentSpec(name=f"a{i}", backend="echo") for i in range(n)]


async def test_off_by_default_even_with_counts(make_shell: Any, output: Any) -> None:
    harness = Harness()
    shell = await make_shell(
        plugins=[harness], config=CONFIG, env={"CODEX_FAULTS": "disconnect:5,bogus:1"}
    )
    assert faults_plugin._ACTIVE is None
    outcomes = await shell.runner.run_many(agents(3), AgentRequest(prompt="x"))
    assert all(o.ok and o.response and o.response.attempts == 1 for o in outcomes)
    # off, yet a malformed CODEX_FAULTS is worth one line at start-up
    warnings = [line for line in output.errors.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: fault injection is off; CODEX_FAULTS: ignored entry 'bogus:1': unknown "
        "kind 'bogus' (kinds: disconnect, 429 (or rate_limit), timeout)"
    ]
    assert await shell.execute("/faults") == 0
    # the whole hint, section name included (rich markup used to swallow "[plugins.faults]")
    assert (
        "fault injection is off: set CODEX_FAULTS_SCOPE=spec_kit or [plugins.faults] "
        "enabled = true\n"
    ) in output.text
    assert "disconnect:5,bogus:1 (1 entry ignored, see below)" in output.text
    assert "unknown kind 'bogus'" in output.text  # and /faults shows the problem


async def test_off_and_well_formed_says_nothing(make_shell: Any, output: Any) -> None:
    await make_shell(plugins=[Harness()], config=CONFIG, env={"CODEX_FAULTS": "disconnect:1"})
    assert output.errors == "" and "fault" not in output.text


async def test_exact_counts_under_concurrency(make_shell: Any) -> None:
    harness = Harness()
    shell = await make_shell(
        plugins=[harness],
        config=CONFIG,
        env={"CODEX_FAULTS_SCOPE": "spec_kit", "CODEX_FAULTS": "disconnect:5"},
    )
    outcomes = await shell.runner.run_many(agents(64), AgentRequest(prompt="x"))
    assert all(o.ok for o in outcomes)
    assert shell.telemetry.flush(30)  # returns once every sink has caught up
    injected = harness.of(FaultInjected)
    assert len(injected) == 5
    assert sorted(e.remaining for e in injected) == [0, 1, 2, 3, 4]
    assert {e.fault for e in injected} == {"disconnect"}
    assert len(harness.of(AgentCallRetry)) == 5
    assert sum(o.response.attempts for o in outcomes if o.response) == 64 + 5
    assert harness.backend.calls == 64  # a faulted attempt never reaches the backend
    assert faults_plugin._ACTIVE is not None
    assert faults_plugin._ACTIVE.injector.remaining == {
        "disconnect": 0,
        "rate_limit": 0,
        "timeout": 0,
    }


def test_injector_counts_are_exact_across_threads() -> None:
    injector = FaultInjector({"disconnect": 500, "rate_limit": 300, "timeout": 200})
    taken: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        mine = []
        while (fault := injector.take("a")) is not None:
            mine.append(fault.kind)
        with lock:
            taken.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert taken.count("disconnect") == 500
    assert taken.count("rate_limit") == 300
    assert taken.count("timeout") == 200
    assert injector.injected == {"disconnect": 500, "rate_limit": 300, "timeout": 200}


def test_priority_one_fault_per_attempt() -> None:
    injector = FaultInjector({"disconnect": 1, "rate_limit": 1, "timeout": 1})
    kinds = [f.kind if (f := injector.take("a")) else None for _ in range(4)]
    assert kinds == ["disconnect", "rate_limit", "timeout", None]


def test_targeting() -> None:
    injector = FaultInjector({"disconnect": 5}, agents=["claude"], stages=["plan"])
    assert injector.take("gemini", "plan") is None
    assert injector.take("claude", "tasks") is None
    assert injector.take("claude", None) is None
    assert injector.take("claude", "plan") is not None
    assert injector.remaining["disconnect"] == 4


async def test_errors_are_the_real_taxonomy(make_shell: Any, output: Any) -> None:
    harness = Harness()
    shell = await make_shell(
        plugins=[harness],
        config=CONFIG.replace("attempts = 10", "attempts = 1"),
        env={
            "CODEX_FAULTS_SCOPE": "speckit",
            "CODEX_FAULTS": "disconnect:1,rate_limit:1,timeout:1",
            "CODEX_FAULTS_429_RESET": "2031-05-01T00:00:00Z",
            "CODEX_FAULTS_TIMEOUT_MS": "1234",
        },
    )
    agent = agents(1)[0]
    ctx = {"spec_id": "SPEC-7", "stage": "plan"}
    with pytest.raises(AgentDisconnected, match="injected fault"):
        await shell.runner.run(agent, AgentRequest(prompt="x"), ctx)
    with pytest.raises(RateLimited) as limited:
        await shell.runner.run(agent, AgentRequest(prompt="x"), ctx)
    assert limited.value.reset_at is not None
    assert limited.value.reset_at.isoformat() == "2031-05-01T00:00:00+00:00"
    with pytest.raises(AgentTimeout, match=r"1234 ms \(CODEX_FAULTS_TIMEOUT_MS=1234\)") as to:
        await shell.runner.run(agent, AgentRequest(prompt="x"), ctx)
    assert to.value.timeout_s == pytest.approx(1.234)
    response = await shell.runner.run(agent, AgentRequest(prompt="x"), ctx)
    assert response.attempts == 1
    assert shell.telemetry.flush(30)  # returns once every sink has caught up
    events = harness.of(FaultInjected)
    assert [(e.fault, e.spec_id, e.stage) for e in events] == [
        ("disconnect", "SPEC-7", "plan"),
        ("rate_limit", "SPEC-7", "plan"),
        ("timeout", "SPEC-7", "plan"),
    ]
    assert events[1].reset_at == "2031-05-01T00:00:00+00:00"
    assert events[2].timeout_ms == 1234
    assert "fault injected: disconnect -> a0 (attempt 1; disconnect left: 0)" in output.text
    assert "fault injected: 429 -> a0" in output.text


async def test_config_enables_and_targets(make_shell: Any) -> None:
    harness = Harness()
    config = (
        CONFIG
        + """
[plugins.faults]
enabled = true
agents = ["a1"]
"""
    )
    shell = await make_shell(plugins=[harness], config=config, env={"CODEX_FAULTS": "timeout:2"})
    outcomes = await shell.runner.run_many(agents(3), AgentRequest(prompt="x"))
    attempts = {o.agent.name: o.response.attempts for o in outcomes if o.response}
    assert attempts == {"a0": 1, "a1": 3, "a2": 1}


async def test_startup_warns_once_per_bad_value(make_shell: Any, output: Any) -> None:
    await make_shell(
        plugins=[Harness()],
        config=CONFIG,
        env={
            "CODEX_FAULTS_SCOPE": "spec_kit",
            "CODEX_FAULTS": "disconnect:2, flood:3",
            "CODEX_FAULTS_429_RESET": "whenever",
            "CODEX_FAULTS_TIMEOUT_MS": "fast",
        },
    )
    lines = [line for line in output.errors.splitlines() if line.startswith("warning:")]
    assert len(lines) == 3
    assert "ignored entry 'flood:3': unknown kind 'flood'" in lines[0]
    assert "CODEX_FAULTS_429_RESET: ignored 'whenever'" in lines[1]
    assert "CODEX_FAULTS_TIMEOUT_MS: ignored 'fast'" in lines[2]
    assert "fault injection on (CODEX_FAULTS_SCOPE=spec_kit): disconnect:2,429:0,timeout:0" in (
        output.text
    )


async def test_faults_command_set_show_clear(make_shell: Any, output: Any) -> None:
    harness = Harness()
    shell = await make_shell(plugins=[harness], config=CONFIG)
    assert faults_plugin._ACTIVE is None
    assert await shell.execute("/faults set disconnect:1, 429:1") == 0
    assert "faults set: disconnect:1,429:1,timeout:0" in output.text
    assert await shell.execute("/faults set nonsense:1") == 1
    assert "/faults set rejected, nothing changed" in output.errors  # not "ignored"
    assert "entry 'nonsense:1': unknown kind 'nonsense'" in output.errors
    assert faults_plugin._ACTIVE is not None
    assert faults_plugin._ACTIVE.injector.remaining["disconnect"] == 1  # unchanged
    response = await shell.runner.run(agents(1)[0], AgentRequest(prompt="x"))
    assert response.attempts == 3
    assert await shell.execute("/faults") == 0
    assert "fault injection on (/faults set)\n" in output.text
    assert "disconnect:0, 429:0, timeout:0" in output.text  # remaining
    assert "disconnect:1, 429:1, timeout:0" in output.text  # injected
    assert await shell.execute("/faults set timeout:4") == 0
    assert await shell.execute("/faults clear") == 0
    response = await shell.runner.run(agents(1)[0], AgentRequest(prompt="x"))
    assert response.attempts == 1
    assert await shell.execute("/faults set") == 1
    assert "needs counts" in output.errors
    assert await shell.execute("/faults set disconnect:99999999999999999999") == 1
    assert "count too large; use a whole number from 0 to 1,000,000" in output.errors
    assert faults_plugin._ACTIVE.injector.remaining["disconnect"] == 0  # nothing changed


async def test_faults_table_shows_values_verbatim(make_shell: Any, output: Any) -> None:
    # table cells are plain text: brackets in a user's value are not rich markup
    shell = await make_shell(plugins=[Harness()], config=CONFIG, env={"CODEX_FAULTS": "[b]x:1"})
    assert await shell.execute("/faults") == 0
    assert "│ [b]x:1 (1 entry ignored, see below)" in output.text


async def test_off_warns_one_line_per_bad_fault_entry(make_shell: Any, output: Any) -> None:
    await make_shell(config=QUIET, env={"CODEX_FAULTS": "bogus, flood:3,disconnect:x"})
    warnings = output.errors.splitlines()
    assert len(warnings) == 3, warnings
    for warning, entry in zip(warnings, ("'bogus'", "'flood:3'", "'disconnect:x'"), strict=True):
        assert warning.startswith(
            f"warning: fault injection is off; CODEX_FAULTS: ignored entry {entry}:"
        )
        assert warning.count("ignored entry") == 1


async def test_faults_show_where_the_plan_came_from_and_a_bad_set_is_rejected(
    make_shell: Any, output: Any
) -> None:
    shell = await make_shell(
        config=QUIET,
        env={"CODEX_FAULTS_SCOPE": "spec_kit", "CODEX_FAULTS": "disconnect:3,bogus:1,x"},
    )
    clear(output)
    assert await shell.execute("/faults") == 0
    assert re.search(r"│ active plan +│ CODEX_FAULTS +│", output.text)
    assert "disconnect:3,bogus:1,x (2 entries ignored, see below)" in output.text
    assert await shell.execute("/faults set timeout:2") == 0
    clear(output)
    assert await shell.execute("/faults") == 0
    assert re.search(r"│ active plan +│ /faults set timeout:2 +│", output.text)
    # the environment's problems stay the environment's, never the set's
    assert (
        "│ CODEX_FAULTS            │ disconnect:3,bogus:1,x (replaced by /faults set; 2 entries "
        "ignored, see below)"
    ) in output.text
    assert "problem: CODEX_FAULTS: ignored entry 'bogus:1'" in output.text
    clear(output)
    assert await shell.execute("/faults set bogus:1, 429:1") == 1
    assert output.errors.splitlines() == [
        "error: /faults set rejected, nothing changed (remaining stays "
        "disconnect:0,429:0,timeout:2, from /faults set timeout:2): entry 'bogus:1': unknown "
        "kind 'bogus' (kinds: disconnect, 429 (or rate_limit), timeout)"
    ]
    clear(output)
    assert await shell.execute("/faults clear") == 0
    assert await shell.execute("/faults") == 0
    assert re.search(r"│ active plan +│ /faults clear +│", output.text)
    assert "(replaced by /faults clear; 2 entries ignored" in output.text


async def test_faults_status_line_after_a_clear_says_cleared(make_shell: Any, output: Any) -> None:
    shell = await make_shell(config=FAST)
    assert await shell.execute("/faults set disconnect:2") == 0
    assert await shell.execute("/faults clear") == 0
    clear(output)
    assert await shell.execute("/faults") == 0
    assert "fault injection on (/faults set)\n" not in output.text
    assert "fault injection on (/faults set; counters cleared by /faults clear" in output.text
    assert await shell.execute("/faults set 429:1") == 0
    clear(output)
    assert await shell.execute("/faults") == 0
    assert "fault injection on (/faults set)\n" in output.text
