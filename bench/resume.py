"""Benchmark the resume store at scale.

Builds a store with ``--rows`` agent outputs (default 1,000,000) across ``--specs``
specs (default 1,000), six branches per spec (roots, children, a grandchild and a
sibling, each child holding only the stages from its fork on, as a real --from run
does), then measures:

- insert throughput of agent outputs, batched (executemany in large transactions);
- the resume lookup (what before_agent_call runs) for one stage of one branch:
  median and p99, for a hit on the branch itself, a hit inherited through two links
  (grandchild -> child -> root), and a miss;
- ``/branches`` for one spec (the data the command prints): median and p99.

Targets (issue 8): inserts >= 20,000 rows/s; lookup p99 < 2 ms at 1M rows.

    python bench/resume.py [--rows N] [--specs N] [--lookups N] [--db PATH] [--keep] [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "host")]

from speckit_resume.branches import STAGES  # noqa: E402
from speckit_resume.commands import branch_overview  # noqa: E402
from speckit_resume.store import Store  # noqa: E402

AGENTS = ("gemini", "claude", "gpt_pro", "gpt_codex")
# (name, parent index, fork stage): B0 root; B1 child of B0 at implement; B2 child of B1
# at audit; B3 sibling of B1 (child of B0 at tasks); B4 a second root; B5 its child
SHAPE: tuple[tuple[int | None, str | None], ...] = (
    (None, None),
    (0, "implement"),
    (1, "audit"),
    (0, "tasks"),
    (None, None),
    (4, "validate"),
)
BATCH = 50_000


def phash(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def branch_id(spec: int, b: int) -> str:
    return f"SPEC-{spec:04d}-2025010{1 + b}000000-{spec * 8 + b:08x}"


def own_stages(b: int) -> tuple[str, ...]:
    fork = SHAPE[b][1]
    return STAGES if fork is None else STAGES[STAGES.index(fork) :]


def output_rows(rows: int, specs: int) -> Iterator[tuple[Any, ...]]:
    """Rows in the store's column order: each branch's own stages x agents x prompt
    variants, round-robin until ``rows`` (so every spec gets about rows/specs)."""
    per_spec = max(rows // specs, 1)
    content = json.dumps({"stage": "plan", "summary": "x" * 120, "items": [1, 2, 3]})
    usage = json.dumps({"input_tokens": 900, "output_tokens": 300, "total_tokens": 1200})
    made = 0
    now = time.time()
    for spec in range(specs):
        slots = [(b, st, ag) for b in range(len(SHAPE)) for st in own_stages(b) for ag in AGENTS]
        for i in range(per_spec if spec < specs - 1 else rows - made):
            b, stage, agent = slots[i % len(slots)]
            variant = i // len(slots)
            bid = branch_id(spec, b)
            yield (
                f"run-{spec}-{b}",
                bid,
                f"SPEC-{spec:04d}",
                stage,
                agent,
                "model-x",
                "researcher",
                phash(spec, stage, agent, variant),
                "20251002-plan-a",
                content,
                content,
                usage,
                1200,
                0.0123,
                850.0,
                1,
                "ok",
                None,
                now,
            )
            made += 1
            if made >= rows:
                return


def build(store: Store, rows: int, specs: int) -> float:
    """Populate the store; return the seconds spent inserting agent outputs."""
    now = time.time()
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO branches(branch_id, spec_id, parent_branch_id, fork_stage, goal,"
            " created_at) VALUES (?, ?, ?, ?, NULL, ?)",
            [
                (
                    branch_id(s, b),
                    f"SPEC-{s:04d}",
                    None if p is None else branch_id(s, p),
                    fork,
                    now + b,
                )
                for s in range(specs)
                for b, (p, fork) in enumerate(SHAPE)
            ],
        )
        conn.executemany(
            "INSERT INTO runs(run_id, spec_id, branch_id, started_at, status) VALUES"
            " (?, ?, ?, ?, 'ok')",
            [
                (f"run-{s}-{b}", f"SPEC-{s:04d}", branch_id(s, b), now + b)
                for s in range(specs)
                for b in range(len(SHAPE))
            ],
        )
    source = output_rows(rows, specs)
    spent = 0.0
    while True:
        batch = [row for _, row in zip(range(BATCH), source, strict=False)]
        if not batch:
            return spent
        started = time.perf_counter()
        with store.write() as conn:
            store.add_outputs_raw(conn, batch)
        spent += time.perf_counter() - started


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[int(0.99 * (len(ordered) - 1))] * 1000


def timed(fn: Callable[[], Any], n: int, rounds: int = 3) -> tuple[float, float, float]:
    """(median ms, p99 ms over all samples, lowest per-round p99 ms). The per-round
    figure shows how much of the tail is other processes taking the CPU (on a shared
    2-core box a preempted sample costs a 4 ms scheduler tick)."""
    every: list[float] = []
    per_round: list[float] = []
    for _ in range(rounds):
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - started)
        every += samples
        per_round.append(_p99(samples))
    return statistics.median(every) * 1000, _p99(every), min(per_round)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--specs", type=int, default=1000)
    parser.add_argument("--lookups", type=int, default=5000)
    parser.add_argument("--db", type=Path, default=None, help="store path (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.specs < 1 or args.specs > args.rows:
        parser.error("need 1 <= --specs <= --rows")
    workdir = None
    if args.db is None:
        workdir = Path(tempfile.mkdtemp(prefix="resume-bench-"))
        args.db = workdir / "resume.sqlite3"
    try:
        store = Store(args.db)
        insert_s = build(store, args.rows, args.specs)
        rng = random.Random(8)
        n = args.lookups

        def pick() -> tuple[int, int]:
            return rng.randrange(args.specs), rng.randrange(max(args.rows // args.specs // 96, 1))

        def lookup(b: int, stage: str, *, miss: bool = False) -> Callable[[], Any]:
            def run() -> Any:
                spec, variant = pick()
                key = phash(spec, stage, "claude", -1 if miss else variant)
                found = store.find_output(
                    spec_id=f"SPEC-{spec:04d}",
                    branch_id=branch_id(spec, b),
                    stage=stage,
                    agent="claude",
                    prompt_hash=key,
                )
                assert (found is None) == miss, (spec, b, stage, variant)
                return found

            return run

        own = timed(lookup(0, "implement"), n)
        inherited = timed(lookup(2, "plan"), n)  # grandchild -> child -> root
        missing = timed(lookup(2, "tasks", miss=True), n)
        branches = timed(
            lambda: branch_overview(store, f"SPEC-{rng.randrange(args.specs):04d}"),
            max(n // 10, 50),
        )
        size_mb = args.db.stat().st_size / 1e6
        total = store.query("SELECT COUNT(*) FROM agent_outputs")[0][0]
        integrity = store.integrity_check()
        store.close()
        print(
            f"store: {total:,} agent outputs, {args.specs:,} specs, "
            f"{args.specs * len(SHAPE):,} branches, {size_mb:,.0f} MB, integrity {integrity}"
        )
        print(
            f"insert (batched, {BATCH:,}/transaction): {total / insert_s:,.0f} rows/s "
            f"({insert_s:.1f} s)   target >= 20,000 rows/s"
        )
        for label, (median, p99, best) in (
            ("resume lookup, own branch", own),
            ("resume lookup, inherited x2", inherited),
            ("resume lookup, miss (chain)", missing),
            ("/branches for one spec", branches),
        ):
            print(
                f"{label:<30} median {median:7.3f} ms   p99 {p99:7.3f} ms"
                f"   (best round p99 {best:6.3f} ms)"
            )
        print(
            "target: resume lookup p99 < 2 ms;  load average (1 min) "
            f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
        )
        ok = max(own[1], inherited[1], missing[1]) < 2.0 and total / insert_s >= 20_000
        print("targets met" if ok else "a target was missed")
        return 1 if args.check and not ok else 0
    finally:
        if workdir is not None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
