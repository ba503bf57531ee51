"""The jsonl sink: whole lines under concurrent writers (threads and processes),
rotation by size, the default path and settings errors."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agentshell.errors import ConfigError
from agentshell.sinks.jsonl import JsonlSink
from agentshell.telemetry import AgentCallFailed, Event, TelemetryBus
from tests.conftest import ShellFactory

# long enough that a batch is far larger than PIPE_BUF: torn writes would show
PADDING = "x" * 600


def event(writer: str, i: int) -> Event:
    return AgentCallFailed(
        call_id=f"{writer}:{i}", agent=writer, backend="b", error_type="t", error=PADDING
    )


def read_lines(*paths: Path) -> list[dict[str, object]]:
    records = []
    for path in paths:
        if path.exists():
            for line in path.read_bytes().split(b"\n")[:-1]:
                records.append(json.loads(line))  # a torn or interleaved line fails here
            assert path.read_bytes().endswith(b"\n") or path.stat().st_size == 0
    return records


WRITER = """
import sys
from pathlib import Path
from agentshell.telemetry import AgentCallFailed, TelemetryBus
from agentshell.sinks.jsonl import JsonlSink
path, name = sys.argv[1], sys.argv[2]
n, max_bytes, backups = (int(x) for x in sys.argv[3:6])
bus = TelemetryBus(queue_size=n + 1)
bus.add_sink("jsonl", JsonlSink(Path(path), max_bytes=max_bytes, backups=backups))
for i in range(n):
    bus.emit(AgentCallFailed(call_id=f"{name}:{i}", agent=name, backend="b", error_type="t",
                             error="x" * 600))
    if i % 97 == 0:
        bus.flush(10)  # vary the batch sizes
bus.close(30)
"""


def run_writers(
    path: Path, processes: int, threads: int, n: int, max_bytes: int, backups: int
) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), f"p{k}", str(n), str(max_bytes), str(backups)]
        )
        for k in range(processes)
    ]

    def in_process(k: int) -> None:
        bus = TelemetryBus(queue_size=n + 1)
        bus.add_sink("jsonl", JsonlSink(path, max_bytes=max_bytes, backups=backups))
        for i in range(n):
            bus.emit(event(f"t{k}", i))
        bus.close(30)

    workers = [threading.Thread(target=in_process, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for p in procs:
        assert p.wait(60) == 0


def check_complete(records: list[dict[str, object]], writers: list[str], n: int) -> None:
    assert len(records) == len(writers) * n
    for writer in writers:
        ids = [r["call_id"] for r in records if r["agent"] == writer]
        assert ids == [f"{writer}:{i}" for i in range(n)]  # each writer's order is kept


def test_threads_and_processes_append_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.jsonl"
    run_writers(path, processes=3, threads=3, n=2000, max_bytes=0, backups=0)
    records = read_lines(path)
    check_complete(records, ["p0", "p1", "p2", "t0", "t1", "t2"], 2000)


def test_rotation_under_concurrent_writers_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.jsonl"
    max_bytes = 200_000
    run_writers(path, processes=2, threads=2, n=1500, max_bytes=max_bytes, backups=50)
    files = [path, *(Path(f"{path}.{i}") for i in range(1, 51))]
    assert Path(f"{path}.3").exists() and not Path(f"{path}.50").exists()
    records = read_lines(*reversed(files))  # oldest backup first
    check_complete(records, ["p0", "p1", "t0", "t1"], 1500)


def test_rotation_keeps_the_configured_number_of_backups(tmp_path: Path) -> None:
    folder = tmp_path / "rot"
    path = folder / "t.jsonl"
    sink = JsonlSink(path, max_bytes=5_000, backups=2)
    per_file = 5_000 // (len(event("a", 0).model_dump_json()) + 1)
    for i in range(40):
        sink.handle(event("a", i))
    sink.close()
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["t.jsonl", "t.jsonl.1", "t.jsonl.2", "t.jsonl.lock"]
    backups = [read_lines(Path(f"{path}.{i}")) for i in (2, 1)]
    current = read_lines(path)
    assert [len(b) for b in backups] == [per_file, per_file] and 1 <= len(current) <= per_file
    kept = [r["call_id"] for r in [*backups[0], *backups[1], *current]]
    assert kept == [f"a:{i}" for i in range(40 - len(kept), 40)]  # the newest, in order


def test_a_batch_larger_than_max_bytes_is_still_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    sink = JsonlSink(path, max_bytes=1_000, backups=1)
    sink.handle_batch([event("a", i) for i in range(10)])
    sink.handle_batch([event("b", i) for i in range(10)])
    sink.close()
    assert [r["agent"] for r in read_lines(path)] == ["b"] * 10
    assert [r["agent"] for r in read_lines(Path(f"{path}.1"))] == ["a"] * 10


async def test_default_path_is_in_the_data_dir(make_shell: ShellFactory) -> None:
    shell = await make_shell(config='[telemetry]\nsinks = ["jsonl"]\n')
    shell.telemetry.emit(event("a", 1))
    assert shell.telemetry.flush(30)
    records = read_lines(Path(shell.data_dir) / "telemetry.jsonl")
    assert [r["type"] for r in records] == ["session.started", "agent.call.failed"]
    assert {r["session_id"] for r in records} == {shell.session_id}


async def test_relative_path_and_settings_from_config(
    make_shell: ShellFactory, tmp_path: Path
) -> None:
    shell = await make_shell(
        config='[telemetry]\nsinks = ["jsonl"]\n[telemetry.jsonl]\npath = "logs/t.jsonl"\n'
        "max_bytes = 1000000\nbackups = 1\n"
    )
    sink = shell.telemetry._workers[0].sink
    assert isinstance(sink, JsonlSink)
    assert sink.path == Path(shell.cwd) / "logs" / "t.jsonl"
    assert (sink.max_bytes, sink.backups) == (1_000_000, 1)


async def test_bad_settings_are_a_clear_error(make_shell: ShellFactory) -> None:
    with pytest.raises(ConfigError, match=r"telemetry\.jsonl\.max_bytes"):
        await make_shell(
            config='[telemetry]\nsinks = ["jsonl"]\n[telemetry.jsonl]\nmax_bytes = -1\n'
        )


def test_bus_into_jsonl_counts_match(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    bus = TelemetryBus(queue_size=20_000)
    bus.add_sink("jsonl", JsonlSink(path))
    for i in range(10_000):
        bus.emit(event("a", i))
    bus.close(30)
    stats = bus.retired[0]
    assert stats.delivered == bus.emitted == 10_000 == len(read_lines(path))
