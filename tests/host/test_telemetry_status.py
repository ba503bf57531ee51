"""``/telemetry`` and ``/help telemetry`` as a user reads them: plain text help (no reST
markup), a table that fits 80 columns in non-tty output with no cell cut or folded,
and a long last error printed whole, on one line, under the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentshell.plugins import hookimpl
from agentshell.redact import register_secret
from agentshell.telemetry import SessionStarted, shorten, sink_target
from tests.conftest import CapturedOutput, ShellFactory

LONG = (
    "HTTPConnectionPool(host='collector.example.internal', port=4318): Max retries exceeded "
    "with url: /v1/traces (Caused by NewConnectionError: Failed to establish a new "
    "connection: [Errno 111] Connection refused) while exporting the spans batch"
)


class Pipeline:
    """A sink that hands events on, as otlp does (counts what it sent on)."""

    last_error = LONG
    exported = 12_345
    export_failed = 7
    export_detail = "spans 12,345 exported, 7 failed, 0 waiting"

    def handle(self, event: Any) -> None:
        pass

    def close(self) -> None:
        pass


class PipelinePlugin:
    __name__ = "pipeline-sink"

    @hookimpl
    def register_telemetry_sinks(self, register: Any) -> None:
        register("pipeline", lambda shell, settings: Pipeline())


async def test_help_is_plain_text(make_shell: ShellFactory, output: CapturedOutput) -> None:
    shell = await make_shell()
    assert await shell.execute("/help telemetry") == 0
    assert "/telemetry off: only the null sink." in output.text
    assert "``" not in output.text and ":func:" not in output.text


async def test_status_fits_80_columns_and_shows_errors_whole(
    make_shell: ShellFactory, output: CapturedOutput
) -> None:
    shell = await make_shell(
        plugins=[PipelinePlugin()], config='[telemetry]\nsinks = ["pipeline", "jsonl"]\n'
    )
    for _ in range(3):
        shell.telemetry.emit(SessionStarted(version="1"))
    assert shell.telemetry.flush(30)
    assert await shell.execute("/telemetry") == 0
    text = output.text
    table = [line for line in text.splitlines() if line[:1] in "┏┃┡│└"]
    assert table and all(len(line) <= 80 for line in table), text
    header = next(line for line in table if "sink" in line)
    for column in ("delivered", "exported", "export failed", "failed", "dropped", "queued"):
        assert f" {column} " in header  # whole, not folded over two lines
    rows = {line.split("│")[1].strip(): line for line in table if line.startswith("│")}
    cells = [c.strip() for c in rows["pipeline"].split("│")[1:-1]]
    emitted = str(shell.telemetry.emitted)  # the shell's own session.started + 3
    assert cells == ["pipeline", emitted, "12,345", "7", "0", "0", "0"]
    assert [c.strip() for c in rows["jsonl"].split("│")[2:5]] == [emitted, "-", "-"]
    assert f"  pipeline: last error: {LONG}\n" in text  # one complete line
    assert "  pipeline: spans 12,345 exported, 7 failed, 0 waiting\n" in text


async def test_status_json_has_the_export_counts(
    make_shell: ShellFactory, output: CapturedOutput
) -> None:
    shell = await make_shell(
        plugins=[PipelinePlugin()], config='[telemetry]\nsinks = ["pipeline"]\n'
    )
    assert await shell.execute("/telemetry --json") == 0
    [sink] = json.loads(output.text)["sinks"]
    assert (sink["exported"], sink["export_failed"], sink["last_error"]) == (12_345, 7, LONG)


def test_shorten_cuts_at_a_word_boundary() -> None:
    text = "Transient error encountered while exporting spans batch, retrying in 1.02s."
    cut = shorten(text, 60)
    assert cut == "Transient error encountered while exporting spans batch…"
    assert len(cut) <= 60
    assert shorten("a\nb   c") == "a b c" and shorten(text) == text


async def test_status_json_lists_targets_and_active_times(
    make_shell: ShellFactory, output: Any, tmp_path: Path
) -> None:
    shell = await make_shell(config='[telemetry]\nsinks = ["jsonl"]\n')
    for name in ("a", "b"):
        assert await shell.execute(f"/telemetry use jsonl --set path={tmp_path / name}") == 0
    assert await shell.execute("/telemetry --json") == 0
    data = json.loads(output.text[output.text.index("{") :])
    targets = [e["target"] for e in data["earlier"]]
    assert targets[1:] == [str(tmp_path / "a")]
    assert data["sinks"][0]["target"] == str(tmp_path / "b")
    assert all(e["started_at"] <= e["stopped_at"] for e in data["earlier"])


class AttributeTarget:
    target = "/var/log/tap.jsonl"

    def handle(self, event: Any) -> None:
        pass

    def close(self) -> None:
        pass


class MethodTarget(AttributeTarget):
    def target(self) -> str:  # type: ignore[override]  # a method, as a newcomer writes it
        return "https://collector.example/v1?token=sk-plugin-target-secret-123"


class BrokenTarget(AttributeTarget):
    @property
    def target(self) -> str:  # type: ignore[override]
        raise RuntimeError("not connected yet")


class TargetPlugin:
    __name__ = "target-sinks"

    @hookimpl
    def register_telemetry_sinks(self, register: Any) -> None:
        register("by-attribute", lambda shell, settings: AttributeTarget())
        register("by-method", lambda shell, settings: MethodTarget())
        register("broken-target", lambda shell, settings: BrokenTarget())


async def test_a_plugin_sinks_target_is_shown_whether_attribute_or_method(
    make_shell: ShellFactory, output: CapturedOutput
) -> None:
    register_secret("sk-plugin-target-secret-123")
    shell = await make_shell(
        plugins=[TargetPlugin()],
        config='[telemetry]\nsinks = ["by-attribute", "by-method", "broken-target"]\n',
    )
    assert await shell.execute("/telemetry") == 0
    text = output.text
    assert "  by-attribute: writes to /var/log/tap.jsonl\n" in text
    assert "  by-method: writes to https://collector.example/v1?token=" in text
    assert "sk-plugin-target-secret-123" not in text and "bound method" not in text
    assert "broken-target: writes to" not in text  # a target that raises is left out
    output.out_buffer.seek(0)
    output.out_buffer.truncate()
    assert await shell.execute("/telemetry --json") == 0
    targets = {s["name"]: s["target"] for s in json.loads(output.text)["sinks"]}
    assert targets["by-attribute"] == "/var/log/tap.jsonl"
    assert targets["broken-target"] is None


def test_sink_target_reads_attribute_property_and_method() -> None:
    assert sink_target(AttributeTarget()) == "/var/log/tap.jsonl"
    assert sink_target(MethodTarget()).startswith("https://collector.example/v1")  # type: ignore[union-attr]
    assert sink_target(BrokenTarget()) is None
    assert sink_target(object()) is None
