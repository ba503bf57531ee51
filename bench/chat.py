"""Conversation benchmark: what the shell adds to talking to an agent.

Run from the repository root: ``python bench/chat.py``.

History (``history_*``): the conversation store (the resume plugin's SQLite file,
``speckit_resume.conversations``) holding 10,000 items — 100 conversations of 50 turns
(a user and an assistant item each), every fifth conversation with an /undo branch
and a /fork branch — measured per turn of the chat plugin:

- **store**: one turn's two items committed in one transaction (what every answer
  costs), with ``synchronous=FULL`` (the default: survives a power cut) and ``NORMAL``;
- **load**: the current branch's path read and filtered (``filter_responses_for_branch``)
  — what ``/resume-chat``, ``--continue``, ``/undo`` and ``/fork`` cost; a turn itself
  keeps the path in memory and never reloads it. For a 100-item path (a forked
  conversation: its own items plus the parent's up to the fork) and, as the worst case,
  one conversation whose path is all 10,000 items.

Target (issue 16): < 5 ms per turn at 10k stored items (p50 and p99). Prints a table;
writes nothing outside a temporary directory.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins" / "resume"), str(ROOT / "plugins"), str(ROOT / "host")]

from agentshell.agents import TokenUsage  # noqa: E402
from speckit_resume.conversations import Conversations, NewItem  # noqa: E402
from speckit_resume.store import Store  # noqa: E402

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


def quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99


def history_time(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return quantiles(samples)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="samples per measurement")
    args = parser.parse_args()
    print_history(history_bench(args.repeat))


if __name__ == "__main__":
    main()
