"""Choosing sinks: by config file, by AGENTSHELL_TELEMETRY_SINKS, and by /telemetry in
a running shell (including a third-party sink from an in-process plugin); the
/telemetry counters; completion of sink names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from pydantic import BaseModel

from agentshell.plugins import hookimpl
from agentshell.repl import CommandCompleter
from agentshell.sinks.console import ConsoleSink
from agentshell.sinks.jsonl import JsonlSink
from agentshell.telemetry import AgentCallStarted, Event
from tests.conftest import CapturedOutput, ShellFactory


class MemorySettings(BaseModel):
    label: str = "memory"
    limit: int = 100


class MemorySink:
    instances: list[MemorySink] = []

    def __init__(self, settings: MemorySettings) -> None:
        self.settings = settings
        self.events: list[Event] = []
        self.closed = False
        MemorySink.instances.append(self)

    def handle(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        self.closed = True


class ThirdPartyPlugin:
    """What a third-party sink plugin looks like (docs/plugins.md shows the same)."""

    __name__ = "memory-sink-plugin"

    @hookimpl
    def register_telemetry_sinks(self, register: Any) -> None:
        register("memory", lambda shell, settings: MemorySink(settings), MemorySettings)


@pytest.fixture(autouse=True)
def _reset() -> None:
    MemorySink.instances.clear()


def call(i: int) -> AgentCallStarted:
    return AgentCallStarted(call_id=f"c{i}", agent="a", backend="b")


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_sinks_by_config_file(make_shell: ShellFactory, output: CapturedOutput) -> None:
    shell = await make_shell(
        config='[telemetry]\nsinks = ["jsonl", "console", "memory"]\n'
        '[telemetry.jsonl]\npath = "t.jsonl"\n[telemetry.memory]\nlabel = "from-config"\n',
        plugins=[ThirdPartyPlugin()],
    )
    assert shell.telemetry.sink_names == ["jsonl", "console", "memory"]
    assert MemorySink.instances[0].settings.label == "from-config"
    shell.telemetry.emit(call(1))
    assert shell.telemetry.flush(30)
    assert [r["type"] for r in lines(Path("t.jsonl"))] == ["session.started", "agent.call.started"]
    assert "[telemetry] agent.call.started a b" in output.errors


async def test_env_overrides_the_config_file(make_shell: ShellFactory) -> None:
    shell = await make_shell(
        config='[telemetry]\nsinks = ["jsonl"]\n',
        env={"AGENTSHELL_TELEMETRY_SINKS": "console, memory"},
        plugins=[ThirdPartyPlugin()],
    )
    assert shell.telemetry.sink_names == ["console", "memory"]
    assert not (Path(shell.data_dir) / "telemetry.jsonl").exists()


async def test_unknown_sink_in_config_is_a_clear_error(make_shell: ShellFactory) -> None:
    with pytest.raises(Exception, match=r"unknown telemetry sink 'nope' \(available: .*jsonl"):
        await make_shell(config='[telemetry]\nsinks = ["nope"]\n')


async def test_telemetry_use_swaps_sinks_without_losing_events(
    make_shell: ShellFactory, output: CapturedOutput
) -> None:
    shell = await make_shell(
        config='[telemetry]\nsinks = ["jsonl"]\n[telemetry.jsonl]\npath = "before.jsonl"\n',
        plugins=[ThirdPartyPlugin()],
    )
    for i in range(50):
        shell.telemetry.emit(call(i))
    status = await shell.execute(
        '/telemetry use jsonl memory --set jsonl.path=after.jsonl --set "memory.label=swapped" '
        "--set memory.limit=7"
    )
    assert status == 0, output.errors
    assert "telemetry sinks: jsonl, memory (were: jsonl)" in output.text
    for i in range(50, 80):
        shell.telemetry.emit(call(i))
    assert shell.telemetry.flush(30)
    before = [
        r["call_id"] for r in lines(Path("before.jsonl")) if r["type"] == "agent.call.started"
    ]
    after = [r["call_id"] for r in lines(Path("after.jsonl"))]
    assert before == [f"c{i}" for i in range(50)]
    assert after == [f"c{i}" for i in range(50, 80)]
    memory = MemorySink.instances[-1]
    assert (memory.settings.label, memory.settings.limit) == ("swapped", 7)
    assert len(memory.events) == 30

    output.out_buffer.seek(0)
    output.out_buffer.truncate()
    assert await shell.execute("/telemetry --json") == 0
    data = json.loads(output.text)
    assert data["emitted"] == 81 and data["dropped"] == 0
    assert {s["name"]: s["delivered"] for s in data["sinks"]} == {"jsonl": 30, "memory": 30}
    assert data["earlier"][0]["name"] == "jsonl" and data["earlier"][0]["delivered"] == 51

    output.out_buffer.seek(0)
    output.out_buffer.truncate()
    assert await shell.execute("/telemetry") == 0
    assert "delivered" in output.text and "memory" in output.text
    assert "81 event(s) emitted, 0 dropped" in output.text

    assert await shell.execute("/telemetry off") == 0
    assert shell.telemetry.sink_names == ["null"] and memory.closed


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("/telemetry use nope", "unknown telemetry sink 'nope'"),
        ("/telemetry use", "name at least one sink"),
        ("/telemetry use jsonl --set max_bytes=-5", "telemetry.jsonl.max_bytes"),
        ("/telemetry use jsonl console --set path=x", "name the sink"),
        ("/telemetry use jsonl --set novalue", "wants <setting>=<value>"),
        ("/telemetry use jsonl --set colour=red", "telemetry.jsonl.colour"),
        ("/telemetry bogus", "<ACTION> must be one of"),
    ],
)
async def test_bad_use_is_one_clear_line_and_changes_nothing(
    make_shell: ShellFactory, output: CapturedOutput, line: str, message: str
) -> None:
    shell = await make_shell(config='[telemetry]\nsinks = ["console"]\n')
    before = shell.telemetry._workers
    assert await shell.execute(line) == 1
    assert message in output.errors
    assert len([x for x in output.errors.splitlines() if x.startswith("error:")]) == 1
    assert shell.telemetry._workers is before


async def test_a_failing_sink_is_reported_once_and_counted(
    make_shell: ShellFactory, output: CapturedOutput
) -> None:
    class Broken:
        def handle(self, event: Event) -> None:
            raise OSError("disk full")

        def close(self) -> None:
            pass

    class BrokenPlugin:
        __name__ = "broken-sink"

        @hookimpl
        def register_telemetry_sinks(self, register: Any) -> None:
            register("broken", lambda shell, settings: Broken())

    shell = await make_shell(plugins=[BrokenPlugin()], config='[telemetry]\nsinks = ["broken"]\n')
    for i in range(20):
        shell.telemetry.emit(call(i))
    assert shell.telemetry.flush(30)
    assert output.errors.count("telemetry sink broken failed: OSError: disk full") == 1
    assert await shell.execute("/telemetry --json") == 0
    sink = json.loads(output.text)["sinks"][0]
    assert sink["failed"] == 21 and sink["last_error"] == "OSError: disk full"


async def test_sink_names_complete(make_shell: ShellFactory) -> None:
    shell = await make_shell(plugins=[ThirdPartyPlugin()])
    completer = CommandCompleter(shell)

    def complete(text: str) -> list[str]:
        doc = Document(text, len(text))
        return [c.text for c in completer.get_completions(doc, CompleteEvent())]

    assert complete("/telemetry u") == ["use"]
    assert set(complete("/telemetry use ")) >= {"jsonl", "console", "otlp", "null", "memory"}
    assert complete("/telemetry use jsonl me") == ["memory"]


def test_console_lines_are_human_one_liners() -> None:
    from agentshell.agents import TokenUsage
    from agentshell.telemetry import AgentCallFinished

    written: list[str] = []
    sink = ConsoleSink(written.append)
    sink.handle(
        AgentCallFinished(
            call_id="c", agent="claude", backend="openai", model="gpt-4o", latency_ms=812.4,
            usage=TokenUsage(input_tokens=1200, output_tokens=300), cost_usd=0.004,
        )
    )  # fmt: skip
    assert written == [
        "[telemetry] agent.call.finished claude gpt-4o 812ms in=1,200 out=300 cached=0 $0.0040\n"
    ]


def test_jsonl_sink_is_what_config_builds(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "x.jsonl")
    sink.handle(call(1))
    sink.close()
    assert lines(tmp_path / "x.jsonl")[0]["call_id"] == "c1"


async def test_set_values_persist_per_sink_until_changed_or_reset(
    make_shell: ShellFactory, output: Any, tmp_path: Path
) -> None:
    chosen = tmp_path / "t.jsonl"
    shell = await make_shell(config='[telemetry]\nsinks = ["jsonl"]\n')
    assert await shell.execute(f"/telemetry use jsonl --set path={chosen}") == 0
    # naming another sink's setting must not send jsonl back to its default path
    line = "/telemetry use jsonl otlp --set otlp.endpoint=http://127.0.0.1:9"
    assert await shell.execute(line) == 0
    shell.telemetry.emit(AgentCallStarted(call_id="a", agent="x", backend="openai"))
    assert shell.telemetry.flush(10)
    assert await shell.execute("/telemetry use jsonl") == 0  # still the chosen path
    shell.telemetry.emit(AgentCallStarted(call_id="b", agent="x", backend="openai"))
    assert shell.telemetry.flush(10)
    ids = [json.loads(x).get("call_id") for x in chosen.read_text().splitlines()]
    assert ids == ["a", "b"]

    assert await shell.execute("/telemetry") == 0
    text = output.text
    assert f"jsonl: --set for this session: path={chosen}" in text
    # the earlier jsonl sinks are numbered and show where they wrote
    earlier = text[text.index("Earlier in this session") :]
    assert str(chosen) in earlier and "http://127.0.0.1:9" in earlier
    assert "jsonl (earlier" not in earlier or "#" in earlier

    assert await shell.execute("/telemetry use jsonl --reset") == 0
    [active] = shell.telemetry.stats()
    assert active.target is not None and active.target != str(chosen)
    assert active.target.endswith("telemetry.jsonl")


async def test_failed_use_does_not_remember_its_set_values(
    make_shell: ShellFactory, output: Any, tmp_path: Path
) -> None:
    shell = await make_shell(config='[telemetry]\nsinks = ["jsonl"]\n')
    assert await shell.execute("/telemetry use jsonl --set max_bytes=notanumber") == 1
    assert "max_bytes" in output.errors
    assert await shell.execute("/telemetry use jsonl") == 0  # not poisoned by the bad value
    assert "--set for this session" not in output.text


async def test_an_unknown_sink_says_which_sinks_still_get_telemetry(
    make_shell: ShellFactory, output: CapturedOutput
) -> None:
    await make_shell(config='[telemetry]\nsinks = ["nope", "null"]\n', mode="repl")
    assert "warning: telemetry goes to the other sinks (null);" in output.errors


async def test_an_unknown_sink_alone_says_no_telemetry_is_kept(
    make_shell: ShellFactory, output: CapturedOutput
) -> None:
    shell = await make_shell(config='[telemetry]\nsinks = ["nope"]\n', mode="repl")
    assert shell.telemetry.sink_names == []
    assert "warning: no telemetry sink is active: events are counted, not kept;" in output.errors
    assert "other sinks" not in output.errors
