"""QA pass 3: ``/telemetry use --set`` lasts for the session, earlier sinks are told
apart, and a hung OTLP collector (a real TCP listener on 127.0.0.1 that accepts and
never answers) is named, with counts, by ``/telemetry flush``, by Ctrl-C during the
flush and at exit. Nothing here asserts on elapsed time: only messages and counters."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentshell.agents import TokenUsage
from agentshell.telemetry import AgentCallFinished, AgentCallStarted

ShellFactory = Any


class HungCollector:
    """Accepts connections and never reads or answers (a collector stuck in GC, a
    firewall that lets SYN through): the exporter's requests block until they time out."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = threading.Event()
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.accepted.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture
def hung() -> Iterator[HungCollector]:
    collector = HungCollector()
    yield collector
    collector.close()


def call(i: int) -> AgentCallFinished:
    return AgentCallFinished(
        call_id=f"c{i}",
        agent="claude",
        backend="openai",
        model="gpt-4o",
        latency_ms=10.0,
        usage=TokenUsage(input_tokens=10, output_tokens=5, total_tokens=15),
    )


def otlp_config(url: str, flush: float, request: float) -> str:
    return (
        f'[telemetry]\nsinks = ["otlp"]\nflush_timeout_s = {flush}\n'
        f'[telemetry.otlp]\nendpoint = "{url}"\ntimeout = {request}\n'
    )


# -- 1: --set lasts for the session, per sink ------------------------------------------


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


# -- 2: a hung collector ------------------------------------------------------------


async def test_flush_names_the_hung_sink_and_what_it_holds(
    make_shell: ShellFactory, output: Any, hung: HungCollector
) -> None:
    shell = await make_shell(config=otlp_config(hung.url, flush=0.5, request=5))
    for i in range(3):
        shell.telemetry.emit(call(i))
    assert await shell.execute("/telemetry flush") == 1
    assert hung.accepted.is_set()  # the request reached the listener and hung there
    errors = output.errors
    assert "some sinks" not in errors
    [line] = [x for x in errors.splitlines() if x.startswith("error: telemetry: ")]
    # still waiting for the collector (or for the sink thread), or, when the request's
    # own timeout came first, failed: either way named, with the count
    pending = f"otlp ({hung.url}): 3 span(s) not yet exported" in line or (
        f"otlp ({hung.url}): 3 event(s) still queued" in line
    )
    failed = f"otlp: 3 span(s) not exported to {hung.url}/v1/traces: timed out" in line
    assert pending or failed, line
    if pending:
        assert "still being written in the background" in line


async def test_ctrl_c_interrupts_the_flush_and_says_what_is_left(
    make_shell: ShellFactory, output: Any, hung: HungCollector
) -> None:
    # a flush that could wait 30 s: only the cancellation can end it early
    shell = await make_shell(config=otlp_config(hung.url, flush=30, request=30))
    shell.telemetry.emit(call(1))
    task = asyncio.ensure_future(shell.execute("/telemetry flush"))
    # the export request is now stuck on the socket
    assert await asyncio.to_thread(hung.accepted.wait, 30)
    task.cancel()  # what Ctrl-C does to the running command (runner_cli.run_command)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "telemetry flush interrupted" in output.errors
    assert f"otlp ({hung.url}): 1 span(s) not yet exported" in output.errors
    assert "background" in output.errors
    # nothing was thrown away: the span is still waiting in the sink
    [stats] = shell.telemetry.stats()
    assert stats.export_failed == 0 and stats.exported == 0
    # the session ends within a short budget: the close drops the span and says so
    shell.config.telemetry.flush_timeout_s = 0.3
    shell.telemetry._workers[0].sink.close_budget_s = 0.3
    hung.close()


async def test_exit_with_a_hung_collector_warns_once_with_the_count(
    make_shell: ShellFactory, output: Any, hung: HungCollector
) -> None:
    shell = await make_shell(config=otlp_config(hung.url, flush=0.5, request=5))
    for i in range(4):
        shell.telemetry.emit(call(i))
    await shell.stop()
    assert hung.accepted.is_set()
    lines = [x for x in output.errors.splitlines() if "otlp" in x]
    assert len(lines) == 1, lines
    assert lines[0].startswith("warning: telemetry: otlp (")
    assert hung.url in lines[0]
    # still in the SDK's queue when the budget ran out, or failed on the way out
    assert (
        "4 span(s) not yet exported; gave up after 0.5 s, they are lost" in lines[0]
        or "4 span(s) not exported" in lines[0]
    )
    [retired] = shell.telemetry.retired
    assert retired.exported == 0


# -- 4: transport errors in words (/login, shared with the openai backend) ----------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there, connecting is refused


async def test_login_says_why_discovery_could_not_connect(
    make_shell: ShellFactory, output: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "builtins,device_login")
    issuer = f"http://127.0.0.1:{_free_port()}"
    shell = await make_shell(
        config=(
            "[plugins.device_login.providers.corp]\n"
            f'issuer = "{issuer}"\nclient_id = "client-123"\n'
        )
    )
    assert await shell.execute("/login corp") == 1
    errors = output.errors
    assert f"{issuer}/.well-known/openid-configuration: connection refused" in errors
    assert "ConnectError" not in errors


async def test_login_says_a_hung_server_timed_out(
    make_shell: ShellFactory, output: Any, hung: HungCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "builtins,device_login")
    shell = await make_shell(
        config=(
            "[plugins.device_login.providers.corp]\n"
            f'issuer = "{hung.url}"\nclient_id = "client-123"\nhttp_timeout_s = 0.2\n'
        )
    )
    assert await shell.execute("/login corp") == 1
    assert "openid-configuration: read timed out" in output.errors
    assert "ReadTimeout" not in output.errors


def test_describe_http_error_names_the_cause_without_the_message() -> None:
    import httpx

    from agentshell import describe_http_error

    with pytest.raises(httpx.ConnectError) as refused:
        httpx.get(f"http://127.0.0.1:{_free_port()}/?token=sk-secret-value", timeout=5)
    assert describe_http_error(refused.value) == "connection refused"
    # a resolver failure as httpcore chains it (no DNS lookups from tests)
    try:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as exc:
            raise httpx.ConnectError("[Errno -2] Name or service not known") from exc
    except httpx.ConnectError as exc:
        assert describe_http_error(exc) == "name not resolved"
    unknown = httpx.ProtocolError("bad frame for Bearer sk-abcdefghijklmnopqrstuvwxyz012345")
    text = describe_http_error(unknown)
    assert text.startswith("ProtocolError") and "sk-abcdefghijklmnop" not in text
