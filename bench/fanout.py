"""Fan-out benchmark: how close is a fan-out to "the slowest agent plus a little"?

Run from the repository root: ``python bench/fanout.py [--runs 7] [--calls 2000]``.

1. N agents (N = 1, 4, 16, 64) against the loopback OpenAI-compatible server
   (tests/servers/openai_server.py) answering after a fixed 200 ms: median wall time
   of ``AgentRunner.run_many`` and its overhead over 200 ms (target: 64 agents within
   200 ms + 60 ms).
2. The live status display (``agentshell.live.live_status``, what the REPL shows while
   a command runs) during a 64-agent fan-out, against a server answering after
   ``--live-delay`` (1 s: several redraws a fan-out), on vs off in alternating runs of
   the same process: median wall time of each, their ratio (target: on <= 1.05 x off),
   this process's CPU per fan-out, and the redraws and bytes the display wrote. The
   display writes to a real pty (120 x 40) whose other end a thread drains, as a
   terminal would, so it renders at its real refresh rate.
3. Per-call overhead of the runner and every hook (target: under 1 ms), measured
   sequentially, separately against an in-process backend (runner cost only) and a
   zero-delay server (runner + HTTP), each compared to calling the backend directly.
   "All hooks" means a real Shell with every installed entry-point plugin loaded.

The server runs in its own process (``--serve``), so its handler threads do not share
this process's GIL with the client's event loop, and with Nagle's algorithm off
(a subclass of the test server's handler): the test server writes headers and body
separately, which otherwise costs ~40 ms a response against delayed ACKs. The
machine's load average is printed: other work on a 2-CPU box shows in the figures.
The fan-out table also shows the CPU time per call of this process (runner, hooks,
httpx) and of the server process: the slope of the wall time over N is the client's
CPU per call, so that column says where to look when the target is missed.

Prints tables and ratios; writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentshell.agents import AgentCall, AgentRequest, AgentResponse, AgentSpec  # noqa: E402
from agentshell.output import Output  # noqa: E402
from agentshell.shell import Shell  # noqa: E402
from tests.servers.openai_server import OpenAIServer, ScriptedReply  # noqa: E402

DELAY_S = 0.200


def serve(delay_s: float) -> None:
    """``--serve``: the loopback server in its own process, so its 64 handler threads do
    not compete with the client's event loop for this process's GIL; with Nagle's
    algorithm off, so the headers-then-body writes of a response are not held back by
    the client's delayed ACK (~40 ms a response otherwise)."""
    import tests.servers.openai_server as mod

    class NoDelayHandler(mod._Handler):
        disable_nagle_algorithm = True

    class BenchServer(OpenAIServer):
        handler_class = NoDelayHandler

    with BenchServer(ScriptedReply(content="ok", delay_s=delay_s)) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()  # until the benchmark closes our stdin


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SERVER_PIDS: dict[str, int] = {}  # base_url -> pid of the server process


@contextlib.contextmanager
def server_process(delay_s: float) -> Any:
    import subprocess

    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(delay_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        SERVER_PIDS[base_url] = proc.pid
        yield base_url
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


FANOUTS = (1, 4, 16, 64)
REQUEST = AgentRequest(prompt="benchmark prompt: say ok")


class InProcessBackend:
    """Answers at once: what is left is the runner's own cost."""

    async def complete(self, call: AgentCall) -> AgentResponse:
        return AgentResponse(agent=call.agent.name, content="ok", model=call.agent.model)

    async def aclose(self) -> None:
        return None


class BenchBackends:
    """Registers the in-process backend next to the real built-in ones."""

    from agentshell.plugins import hookimpl

    @hookimpl
    def register_agent_backends(self, register: Any) -> None:
        register("inprocess", lambda shell: InProcessBackend())


async def make_shell(load_plugins: bool) -> Shell:
    """A real shell: every entry-point plugin (``load_plugins``) or the built-in backends
    only; telemetry to the null sink so no disk writes are measured."""
    import io

    if not load_plugins:
        os.environ["AGENTSHELL_LOAD_PLUGINS"] = "openai,null"
    else:
        os.environ.pop("AGENTSHELL_LOAD_PLUGINS", None)
    (Path.cwd() / "agentshell.toml").write_text('[telemetry]\nsinks = ["null"]\n', "utf-8")
    shell = Shell(mode="run", output=Output(io.StringIO(), io.StringIO()))
    shell.plugins.register(BenchBackends(), "bench-backends")
    await shell.start()
    return shell


def agents(base_url: str, n: int, timeout_s: float = 30.0) -> list[AgentSpec]:
    return [
        AgentSpec(
            name=f"agent{i:02d}",
            backend="openai",
            model="gpt-test",
            base_url=base_url,
            timeout_s=timeout_s,
        )
        for i in range(n)
    ]


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


Row = tuple[int, float, float, float, float, float]


async def fanout(shell: Shell, runs: int) -> list[Row]:
    """(N, cold wall, median warm wall, max warm wall, client and server CPU seconds per
    call in the warm runs) per N."""
    rows = []
    with server_process(DELAY_S) as base_url:
        pid = SERVER_PIDS[base_url]
        for n in FANOUTS:
            specs = agents(base_url, n)

            async def once(specs: list[AgentSpec] = specs) -> None:
                outcomes = await shell.runner.run_many(specs, REQUEST)
                failed = [o.error for o in outcomes if not o.ok]
                if failed:
                    raise SystemExit(f"fan-out failed: {failed[0]}")

            cold = await timed(once)  # includes opening the connections
            client_cpu, server_cpu = time.process_time(), process_cpu_s(pid)
            warm = [await timed(once) for _ in range(runs)]
            client_cpu = (time.process_time() - client_cpu) / (runs * n)
            server_cpu = (process_cpu_s(pid) - server_cpu) / (runs * n)
            rows.append((n, cold, statistics.median(warm), max(warm), client_cpu, server_cpu))
        await shell.runner.aclose()  # close pooled connections before the server stops
    return rows


@contextlib.contextmanager
def pty_stdout(columns: int = 120, lines: int = 40) -> Any:
    """``sys.stdout`` on a real pty of ``columns`` x ``lines`` whose master end a thread
    drains (as a terminal reads it); yields a dict whose ``bytes`` counts what was
    written. Rich reads the size from COLUMNS/LINES when stdout is replaced."""
    import fcntl
    import pty
    import struct
    import termios
    import threading

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    seen = {"bytes": 0}

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            seen["bytes"] += len(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stream = open(slave, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    saved = sys.stdout, os.environ.get("COLUMNS"), os.environ.get("LINES")
    sys.stdout = stream
    os.environ["COLUMNS"], os.environ["LINES"] = str(columns), str(lines)
    try:
        yield seen
    finally:
        sys.stdout = saved[0]
        for key, value in (("COLUMNS", saved[1]), ("LINES", saved[2])):
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        stream.close()
        os.close(slave)
        reader.join(5)
        os.close(master)


LiveRow = tuple[str, float, float, float, int, int]


async def live_display(shell: Shell, runs: int, delay_s: float, n: int = 64) -> list[LiveRow]:
    """64-agent fan-outs with the live display off and on, alternating (so load changes
    hit both alike): (label, median wall s, max wall s, CPU s per fan-out, redraws per
    fan-out, bytes per fan-out)."""
    from agentshell import live

    redraws = [0]
    build = live.LiveStatus.renderable

    def counted(self: live.LiveStatus) -> Any:  # counts frames; draws exactly the same
        redraws[0] += 1
        return build(self)

    live.LiveStatus.renderable = counted  # type: ignore[method-assign]
    walls: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, float] = {"off": 0.0, "on": 0.0}
    frames = {"off": 0, "on": 0}
    written = {"off": 0, "on": 0}
    try:
        with server_process(delay_s) as base_url:
            specs = agents(base_url, n)

            async def once() -> None:
                outcomes = await shell.runner.run_many(specs, REQUEST)
                failed = [o.error for o in outcomes if not o.ok]
                if failed:
                    raise SystemExit(f"fan-out failed: {failed[0]}")

            await once()  # warm: connections open
            with pty_stdout() as tty:
                for _ in range(runs):
                    for label in ("off", "on"):
                        before_cpu, before_frames = time.process_time(), redraws[0]
                        before_bytes = tty["bytes"]
                        if label == "on":
                            async with live.live_status(shell, "/bench fan-out"):
                                walls[label].append(await timed(once))
                        else:
                            walls[label].append(await timed(once))
                        await asyncio.sleep(0.05)  # let the drain thread catch up
                        cpu[label] += time.process_time() - before_cpu
                        frames[label] += redraws[0] - before_frames
                        written[label] += tty["bytes"] - before_bytes
            await shell.runner.aclose()
    finally:
        live.LiveStatus.renderable = build  # type: ignore[method-assign]
    return [
        (
            label,
            statistics.median(walls[label]),
            max(walls[label]),
            cpu[label] / runs,
            frames[label] // runs,
            written[label] // runs,
        )
        for label in ("off", "on")
    ]


def print_live(rows: list[LiveRow], runs: int, delay_s: float) -> None:
    print(
        f"Live status display during a 64-agent fan-out ({delay_s * 1000:.0f} ms answers, "
        f"median of {runs} runs each, alternating)"
    )
    print(
        f"{'display':<8} {'wall ms':>9} {'max ms':>9} {'CPU ms/fan-out':>15}"
        f" {'redraws':>8} {'bytes':>8}"
    )
    for label, med, worst, cpu_s, frames, written in rows:
        print(
            f"{label:<8} {med * 1000:>9.1f} {worst * 1000:>9.1f} {cpu_s * 1000:>15.1f}"
            f" {frames:>8} {written:>8}"
        )
    ratio = rows[1][1] / rows[0][1]
    verdict = "OK" if ratio <= 1.05 else "MISSED"
    print(f"target: on / off <= 1.05: {ratio:.3f} -> {verdict}\n")


async def per_call(shell: Shell, spec: AgentSpec, calls: int) -> tuple[float, float]:
    """Median-of-5 per-call seconds through the runner and directly via the backend."""
    backend = shell.runner.backend(spec.backend)

    async def through_runner() -> None:
        for _ in range(calls):
            await shell.runner.run(spec, REQUEST)

    async def direct() -> None:
        for _ in range(calls):
            await backend.complete(AgentCall(agent=spec, request=REQUEST))

    await through_runner()  # warm up: imports, connections, caches
    await direct()
    runner_s = statistics.median([await timed(through_runner) for _ in range(5)]) / calls
    direct_s = statistics.median([await timed(direct) for _ in range(5)]) / calls
    return runner_s, direct_s


def print_fanout(rows: list[Row], runs: int) -> None:
    print(f"Fan-out against the loopback server (median of {runs} warm runs)")
    print(
        f"{'N':>4} {'cold ms':>9} {'wall ms':>9} {'max ms':>9} {'over 200':>9} {'ratio':>7}"
        f" {'client CPU us/call':>19} {'server CPU us/call':>19}"
    )
    for n, cold, med, worst, client_cpu, server_cpu in rows:
        print(
            f"{n:>4} {cold * 1000:>9.1f} {med * 1000:>9.1f} {worst * 1000:>9.1f} "
            f"{(med - DELAY_S) * 1000:>8.1f}  {med / DELAY_S:>6.3f}"
            f" {client_cpu * 1e6:>19.0f} {server_cpu * 1e6:>19.0f}"
        )
    wall = rows[-1][2]
    verdict = "OK" if wall <= DELAY_S + 0.060 else "MISSED"
    print(f"target: 64 agents <= 260 ms: {wall * 1000:.1f} ms -> {verdict}")
    print(f"64 sequential calls would take {64 * DELAY_S:.1f} s: {64 * DELAY_S / wall:.1f}x\n")


async def per_call_table(shell: Shell, calls: int) -> list[tuple[str, float, float]]:
    results = []
    inproc = AgentSpec(name="inproc", backend="inprocess", model="m")
    http_calls = max(calls // 4, 50)
    for label, all_hooks in (("all plugins' hooks", True), ("no plugins", False)):
        bench_shell = shell if all_hooks else await make_shell(load_plugins=False)
        try:
            r, d = await per_call(bench_shell, inproc, calls)
            results.append((f"in-process backend, {label}", r, d))
            with server_process(0.0) as base_url:
                r, d = await per_call(bench_shell, agents(base_url, 1)[0], http_calls)
                results.append((f"loopback HTTP, {label}", r, d))
                await bench_shell.runner.aclose()
        finally:
            if not all_hooks:
                await bench_shell.stop()
    print(f"Per-call cost, sequential (median of 5 x {calls} calls; HTTP: 5 x {http_calls})")
    print(f"{'path':<36} {'runner us':>10} {'direct us':>10} {'overhead us':>12} {'ratio':>7}")
    for label, r, d in results:
        ratio = r / d if d else float("inf")
        print(f"{label:<36} {r * 1e6:>10.1f} {d * 1e6:>10.1f} {(r - d) * 1e6:>12.1f} {ratio:>7.2f}")
    worst = max(r - d for _, r, d in results)
    verdict = "OK" if worst < 1e-3 else "MISSED"
    print(f"target: runner + hooks < 1000 us per call: worst {worst * 1e6:.1f} us -> {verdict}")
    return results


async def main(runs: int, calls: int, live_delay: float = 1.0, only_live: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AGENTSHELL_HOME"] = str(Path(tmp) / "home")
        os.chdir(tmp)
        load = os.getloadavg()[0]
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.2f}")
        shell = await make_shell(load_plugins=True)
        try:
            print(f"plugins loaded: {', '.join(shell.plugins.loaded)}\n")
            if not only_live:
                print_fanout(await fanout(shell, runs), runs)
            print_live(await live_display(shell, runs, live_delay), runs, live_delay)
            if not only_live:
                await per_call_table(shell, calls)
        finally:
            with contextlib.suppress(Exception):
                await shell.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="warm fan-out runs per N")
    parser.add_argument("--calls", type=int, default=2000, help="sequential calls per sample")
    parser.add_argument(
        "--live-delay", type=float, default=1.0, help="answer delay (s) in the live-display case"
    )
    parser.add_argument("--only-live", action="store_true", help="run only the live-display case")
    parser.add_argument("--serve", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
    else:
        asyncio.run(main(args.runs, args.calls, args.live_delay, args.only_live))
