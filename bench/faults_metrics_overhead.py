"""What the faults and metrics plugins add to an agent call.

Runs N sequential calls through the real AgentRunner (hooks, retry loop, telemetry)
against an in-process backend that answers at once, so the hooks are all that differ:

    base     neither plugin loaded
    faults   faults loaded but off (no CODEX_FAULTS_SCOPE): must be ~free
    metrics  metrics loaded (prices memoised after the first call)
    both     both loaded, faults off

and the faults hook alone, called directly while off. Prints medians of several
rounds (microseconds per call) and the ratios to base. Run:
``python bench/faults_metrics_overhead.py [-n 2000] [-r 7]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import tempfile
import time
from typing import Any

from agentshell.agents import AgentCall, AgentRequest, AgentResponse, AgentSpec, TokenUsage
from agentshell.output import Output
from agentshell.plugins import hookimpl
from agentshell.shell import Shell


class EchoBackend:
    async def complete(self, call: AgentCall) -> AgentResponse:
        usage = TokenUsage(input_tokens=1000, output_tokens=100, total_tokens=1100)
        return AgentResponse(agent=call.agent.name, content="ok", usage=usage, model="gpt-4o")

    async def aclose(self) -> None:
        pass


class Echo:
    __name__ = "echo"

    @hookimpl
    def register_agent_backends(self, register: Any) -> None:
        register("echo", lambda shell: EchoBackend())


async def per_call_us(plugins: str, n: int, home: str) -> float:
    env = {
        **os.environ,
        "AGENTSHELL_HOME": home,
        "AGENTSHELL_LOAD_PLUGINS": plugins,
    }
    env.pop("CODEX_FAULTS_SCOPE", None)
    out = Output(io.StringIO(), io.StringIO())
    shell = Shell(environ=env, mode="run", output=out, cwd=__import__("pathlib").Path(home))
    shell.plugins.register(Echo(), "echo")
    await shell.start()
    try:
        spec = AgentSpec(name="a", backend="echo", model="gpt-4o")
        request = AgentRequest(prompt="x")
        ctx = {"spec_id": "SPEC-1", "stage": "plan"}
        await shell.runner.run(spec, request, ctx)  # warm-up: imports, price lookup
        start = time.perf_counter()
        for _ in range(n):
            await shell.runner.run(spec, request, ctx)
        return (time.perf_counter() - start) / n * 1e6
    finally:
        await shell.stop()


def faults_hook_off_ns(n: int) -> float:
    from speckit_faults import plugin

    assert plugin._ACTIVE is None
    call = AgentCall(agent=AgentSpec(name="a", backend="echo"), request=AgentRequest(prompt="x"))
    hook = plugin.before_agent_call
    start = time.perf_counter()
    for _ in range(n):
        hook(call)
    return (time.perf_counter() - start) / n * 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=2000, help="calls per round")
    parser.add_argument("-r", type=int, default=7, help="rounds")
    args = parser.parse_args()
    variants = {
        "base": "builtins",
        "faults": "builtins,faults",
        "metrics": "builtins,metrics",
        "both": "builtins,faults,metrics",
    }
    results: dict[str, list[float]] = {k: [] for k in variants}
    with tempfile.TemporaryDirectory() as home:
        for _ in range(args.r):
            for name, plugins in variants.items():
                results[name].append(asyncio.run(per_call_us(plugins, args.n, home)))
    base = statistics.median(results["base"])
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:8s} {median:8.1f} us/call   x{median / base:.3f} of base")
    hook = statistics.median(faults_hook_off_ns(200_000) for _ in range(args.r))
    print(f"faults before_agent_call while off: {hook:.0f} ns/call")


if __name__ == "__main__":
    main()
