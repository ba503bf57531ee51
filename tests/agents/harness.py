"""Building blocks for the agent tests: a real AgentRunner over a real PluginHost and
TelemetryBus (events collected by a list sink), a real AuthRegistry, and a fake clock
for the retry policy so no test waits for, or asserts on, wall-clock time."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentshell.agents import AgentRunner, BackendFactory
from agentshell.auth import AuthRegistry, TokenStore
from agentshell.config import RetrySettings
from agentshell.plugins import PluginHost
from agentshell.telemetry import Event, TelemetryBus
from tests.helpers.events import ListSink


class FakeClock:
    """Monotonic and wall clocks that only move when ``sleep`` is awaited. The wall
    clock starts at the real time, because servers' reset hints are absolute times."""

    def __init__(self, start: float | None = None) -> None:
        self.wall = time.time() if start is None else start
        self.mono = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.wall

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.mono += seconds
        self.wall += seconds


@dataclass
class ShellStub:
    """What backends read from the shell: ``auth`` (a real AuthRegistry) and ``cwd``.
    A full Shell is not needed to test a backend in isolation."""

    auth: AuthRegistry
    cwd: Path
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Harness:
    runner: AgentRunner
    sink: ListSink
    bus: TelemetryBus
    notes: list[str]
    clock: FakeClock | None

    def events(self, kind: str | None = None) -> list[Event]:
        assert self.bus.flush(30.0), "telemetry did not flush"  # returns when done
        return [e for e in self.sink.events if kind is None or e.type == kind]


def make_shell_stub(data_dir: Path, cwd: Path | None = None) -> ShellStub:
    registry = AuthRegistry(TokenStore(data_dir, allow_plaintext=False))
    stub = ShellStub(auth=registry, cwd=cwd or Path.cwd())
    registry.shell = stub
    return stub


def make_harness(
    backends: Mapping[str, BackendFactory],
    *,
    plugins: Iterable[object] = (),
    retry: RetrySettings | None = None,
    shell: Any = None,
    fake_clock: bool = True,
    seed: int = 7,
    notify: Callable[[str], None] | None = None,
) -> Harness:
    host = PluginHost(trace=False)
    for i, plugin in enumerate(plugins):
        host.register(plugin, f"test-plugin-{i}")
    sink = ListSink()
    bus = TelemetryBus(session_id="test")
    bus.add_sink("list", sink)
    notes: list[str] = []
    clock = FakeClock() if fake_clock else None
    extra: dict[str, Any] = {}
    if clock is not None:
        extra = {"sleep": clock.sleep, "clock": clock.monotonic, "now": clock.time}
    runner = AgentRunner(
        backends=backends,
        hooks=host,
        telemetry=bus,
        retry=retry or RetrySettings(),
        shell=shell,
        notify=notify or notes.append,
        rng=random.Random(seed),
        **extra,
    )
    return Harness(runner, sink, bus, notes, clock)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie awaiting its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def read_pids(path: Path) -> dict[str, int]:
    pids: dict[str, int] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            role, _, pid = line.partition(" ")
            pids[role] = int(pid)
    return pids
