"""Conversation benchmark: what the shell adds to talking to an agent.

Run from the repository root: ``python bench/chat.py [--samples 400]``.

1. Time to first token (TTFT): a streamed answer from the loopback OpenAI-compatible
   server (tests/servers/openai_server.py), measured from the start of the call to the
   first content delta: through the shell's runner (``runner.run(...,
   on_delta=...)``, the ``openai`` backend, every installed plugin's hooks; and again
   with no plugins) against raw ``httpx`` streaming of the same request (one pooled
   ``AsyncClient``, ``aiter_lines`` until the first content chunk). Samples alternate
   between the paths, so load on the machine hits both alike. The added latency is
   the runner's quantile minus raw httpx's, at p50 and p99 (target: <= 2 ms each).
   Each call reads its answer to the end before the next starts.

2. History (``history_*``): the conversation store (the resume plugin's SQLite file,
   ``speckit_resume.conversations``) holding 10,000 items — 100 conversations of 50
   turns (a user and an assistant item each), every fifth with an /undo branch and a
   /fork branch — measured per turn of the chat plugin: **store**, one turn's two items
   committed in one transaction (what every answer costs), with ``synchronous=FULL``
   (the default: survives a power cut) and ``NORMAL``; **load**, the current branch's
   path read and filtered (``filter_responses_for_branch``) — what ``/resume-chat``,
   ``--continue``, ``/undo`` and ``/fork`` cost (a turn keeps the path in memory),
   for a 100-item forked path and, as the worst case, one path of all 10,000 items.
   Target: < 5 ms per turn at 10k stored items.

The server runs in its own process (its threads do not share this process's GIL) with
Nagle's algorithm off (each SSE event is its own small write). The machine's load
average is printed: other work on a 2-CPU box shows in the figures.

Parts are functions (``ttft_*``, ``history_*``); ``--only ttft|history`` runs one.
Prints tables and ratios; writes nothing outside a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentshell.agents import AgentRequest, AgentSpec, Delta, TokenUsage  # noqa: E402
from agentshell.output import Output  # noqa: E402
from agentshell.shell import Shell  # noqa: E402
from speckit_resume.conversations import Conversations, NewItem  # noqa: E402
from speckit_resume.store import Store  # noqa: E402
from tests.servers.openai_server import OpenAIServer, ScriptedReply  # noqa: E402

# a short streamed answer: 24 content deltas
ANSWER = " ".join(f"word{i}" for i in range(24))
PROMPT = "benchmark prompt: say some words"
TTFT_TARGET_S = 0.002


def serve() -> None:
    """``--serve``: the loopback server in its own process, Nagle's algorithm off."""
    import tests.servers.openai_server as mod

    class NoDelayHandler(mod._Handler):
        disable_nagle_algorithm = True

    class BenchServer(OpenAIServer):
        handler_class = NoDelayHandler

    with BenchServer(ScriptedReply(content=ANSWER)) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()  # until the benchmark closes our stdin


@contextlib.contextmanager
def server_process() -> Iterator[str]:
    import subprocess

    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


async def make_shell(load_plugins: bool) -> Shell:
    """A real shell: every entry-point plugin (``load_plugins``) or the built-in openai
    backend only; telemetry to the null sink so no disk writes are measured."""
    import io

    if load_plugins:
        os.environ.pop("AGENTSHELL_LOAD_PLUGINS", None)
    else:
        os.environ["AGENTSHELL_LOAD_PLUGINS"] = "openai,null"
    (Path.cwd() / "agentshell.toml").write_text('[telemetry]\nsinks = ["null"]\n', "utf-8")
    shell = Shell(mode="run", output=Output(io.StringIO(), io.StringIO()))
    await shell.start()
    return shell


def chat_agent(base_url: str) -> AgentSpec:
    return AgentSpec(
        name="chat", backend="openai", model="gpt-test", base_url=base_url, timeout_s=30.0
    )


# -- time to first token -------------------------------------------------------------------

Sample = Callable[[], Awaitable[float]]


def ttft_runner(shell: Shell, spec: AgentSpec) -> Sample:
    """Seconds from calling ``runner.run`` to the first delta (the answer then read
    to the end)."""
    request = AgentRequest(prompt=PROMPT)

    async def sample() -> float:
        first = 0.0

        def on_delta(delta: Delta) -> None:
            nonlocal first
            if not first:
                first = time.perf_counter()

        start = time.perf_counter()
        response = await shell.runner.run(spec, request, on_delta=on_delta)
        if response.content != ANSWER or not first:
            raise SystemExit(f"unexpected answer through the runner: {response.content!r}")
        return first - start

    return sample


def ttft_raw(client: Any, base_url: str) -> Sample:
    """Seconds from sending the same request with raw httpx to its first content chunk
    (the stream then read to the end)."""
    body = {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    url = base_url.rstrip("/") + "/chat/completions"

    async def sample() -> float:
        first = 0.0
        parts: list[str] = []
        start = time.perf_counter()
        async with client.stream("POST", url, json=body) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data:") or line == "data: [DONE]":
                    continue
                for choice in json.loads(line[5:]).get("choices") or ():
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        parts.append(text)
                        if not first:
                            first = time.perf_counter()
        if "".join(parts) != ANSWER or not first:
            raise SystemExit("unexpected answer through raw httpx")
        return first - start

    return sample


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def ttft_compare(paths: dict[str, Sample], samples: int) -> dict[str, list[float]]:
    """``samples`` TTFTs per path, the paths taking turns (after a warm-up)."""
    for sample in paths.values():
        for _ in range(20):
            await sample()
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(samples):
        for name, sample in paths.items():
            times[name].append(await sample())
    return times


async def ttft_bench(samples: int) -> list[tuple[str, float, float, float, float]]:
    """(path, p50, p99, added p50, added p99) seconds per path through the shell."""
    import httpx

    rows = []
    with server_process() as base_url:
        spec = chat_agent(base_url)
        shells = {
            "runner, all plugins' hooks": await make_shell(load_plugins=True),
            "runner, no plugins": await make_shell(load_plugins=False),
        }
        try:
            async with httpx.AsyncClient(timeout=30.0) as client:
                paths = {"raw httpx": ttft_raw(client, base_url)}
                paths.update({label: ttft_runner(sh, spec) for label, sh in shells.items()})
                times = await ttft_compare(paths, samples)
        finally:
            for shell in shells.values():
                await shell.runner.aclose()
                with contextlib.suppress(Exception):
                    await shell.stop()
    raw = times.pop("raw httpx")
    raw50, raw99 = quantile(raw, 0.50), quantile(raw, 0.99)
    rows.append(("raw httpx", raw50, raw99, 0.0, 0.0))
    for label, values in times.items():
        p50, p99 = quantile(values, 0.50), quantile(values, 0.99)
        rows.append((label, p50, p99, p50 - raw50, p99 - raw99))
    return rows


def print_ttft(rows: list[tuple[str, float, float, float, float]], samples: int) -> None:
    print(f"Time to first token, streamed answer from the loopback server ({samples} samples)")
    print(
        f"{'path':<28} {'p50 ms':>8} {'p99 ms':>8} {'added p50':>10} {'added p99':>10}"
        f" {'ratio p50':>10}"
    )
    raw50 = rows[0][1]
    for label, p50, p99, add50, add99 in rows:
        print(
            f"{label:<28} {p50 * 1e3:>8.3f} {p99 * 1e3:>8.3f} {add50 * 1e3:>10.3f}"
            f" {add99 * 1e3:>10.3f} {p50 / raw50:>10.2f}"
        )
    worst = max(max(add50, add99) for _, _, _, add50, add99 in rows)
    verdict = "OK" if worst <= TTFT_TARGET_S else "MISSED"
    print(f"target: added TTFT <= 2 ms at p50 and p99: worst {worst * 1e3:.3f} ms -> {verdict}\n")


# -- history: the conversation store at 10k items ------------------------------------

HISTORY_TARGET_S = 0.005
ITEMS = 10_000
TURNS = 50  # per conversation: 100 items each, 100 conversations
USAGE = TokenUsage(input_tokens=900, output_tokens=300, total_tokens=1200)


def history_store(path: Path, synchronous: str) -> Conversations:
    store = Store(path, synchronous=synchronous)
    return Conversations(lambda: store, path=str(path))


def turn_items(turn: int) -> list[NewItem]:
    return [
        NewItem(role="user", content=f"question {turn}: " + "words " * 30),
        NewItem(
            role="assistant",
            content=f"answer {turn}: " + "more words " * 80,
            agent="gpt",
            model="gpt-4o-mini",
            usage=USAGE,
        ),
    ]


def history_fill(conversations: Conversations, items: int = ITEMS) -> dict[str, str]:
    """``items`` stored items; returns the branch ids measured: ``forked`` (a fork's
    path of 100 items) and ``long`` (one path of every item, in its own file)."""
    branches: dict[str, str] = {}
    made = 0
    index = 0
    while made < items:
        conversation, branch = conversations.create(agent="gpt", title=f"c{index}")
        turns = min(TURNS, (items - made) // 2)
        for turn in range(1, turns + 1):
            conversations.append(conversation, branch, turn, turn_items(turn))
        made += 2 * turns
        if index % 5 == 0 and turns > 10:
            undo = conversations.fork(conversation, branch, turns - 1, "undo")
            conversations.append(conversation, undo, turns, turn_items(turns))
            fork = conversations.fork(conversation, branch, turns // 2, "fork")
            for turn in range(turns // 2 + 1, turns + 1):
                conversations.append(conversation, fork, turn, turn_items(turn))
            made += 2 + 2 * (turns - turns // 2)
            branches.setdefault("forked", fork)
        index += 1
    return branches


def history_quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99


def history_time(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return history_quantiles(samples)


def history_many(path: Path, synchronous: str, repeat: int) -> list[tuple[str, float, float, int]]:
    """10k items in 100 conversations: a turn's store, and (FULL) a forked path's load."""
    rows: list[tuple[str, float, float, int]] = []
    conversations = history_store(path, synchronous)
    forked = history_fill(conversations)["forked"]
    if synchronous == "FULL":
        items = len(conversations.load(forked))
        # a new session: the branch lineage is not cached yet (/resume-chat, --continue)
        sessions = iter([history_store(path, synchronous) for _ in range(repeat)])
        p50, p99 = history_time(lambda: next(sessions).load(forked), repeat)
        rows.append(("load a forked path, new session", p50, p99, items))
        p50, p99 = history_time(lambda: conversations.load(forked), repeat)
        rows.append(("load a forked path (/undo, /fork)", p50, p99, items))
    # a turn of a conversation in progress, the 10k items around it
    conversation, branch = conversations.create(agent="gpt", title="measured")
    turns = iter(range(1, repeat + 1))
    p50, p99 = history_time(
        lambda: conversations.append(conversation, branch, next(turns), turn_items(0)), repeat
    )
    rows.append((f"store a turn (2 items), synchronous={synchronous}", p50, p99, 0))
    return rows


def history_long(path: Path, repeat: int) -> tuple[str, float, float, int]:
    """The worst case: one conversation whose path is all 10k items."""
    long = history_store(path, "FULL")
    conversation, branch = long.create(agent="gpt", title="long")
    for turn in range(1, ITEMS // 2 + 1):
        long.append(conversation, branch, turn, turn_items(turn))
    p50, p99 = history_time(lambda: long.load(branch), repeat)
    return ("load one path of every item (worst case)", p50, p99, ITEMS)


def history_bench(repeat: int) -> list[tuple[str, float, float, int]]:
    """Rows of (what, p50 s, p99 s, path items)."""
    with tempfile.TemporaryDirectory() as tmp:
        rows = history_many(Path(tmp) / "full.sqlite3", "FULL", repeat)
        rows += history_many(Path(tmp) / "normal.sqlite3", "NORMAL", repeat)
        rows.append(history_long(Path(tmp) / "long.sqlite3", max(10, repeat // 10)))
    return rows


def print_history(rows: list[tuple[str, float, float, int]]) -> None:
    print(f"history at {ITEMS:,} stored items (target < {HISTORY_TARGET_S * 1000:.0f} ms)")
    print(f"{'':48} {'p50 ms':>8} {'p99 ms':>8} {'items':>7}")
    for what, p50, p99, items in rows:
        shown = str(items) if items else ""
        print(f"{what:48} {p50 * 1000:8.2f} {p99 * 1000:8.2f} {shown:>7}")


async def main(samples: int, repeat: int, only: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AGENTSHELL_HOME"] = str(Path(tmp) / "home")
        os.chdir(tmp)
        load = os.getloadavg()[0]
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.2f}")
        if only in (None, "ttft"):
            print_ttft(await ttft_bench(samples), samples)
        if only in (None, "history"):
            print_history(history_bench(repeat))
        print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=400, help="TTFT samples per path")
    parser.add_argument("--repeat", type=int, default=200, help="history samples each")
    parser.add_argument("--only", choices=["ttft", "history"], help="run one part")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
    else:
        asyncio.run(main(args.samples, args.repeat, args.only))
