"""No secret reaches a sink: an agent authenticated with an API key from the
environment runs against the loopback OpenAI server (once successfully, once refused
with an error that echoes the key) with the jsonl, console and otlp sinks active; and
events that carry secrets by mistake (a plugin bug) are scrubbed by the sinks."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentshell.agents import AgentRequest
from agentshell.errors import AgentError
from agentshell.telemetry import AgentCallRetry, PluginErrorEvent
from tests.conftest import CapturedOutput, ShellFactory
from tests.servers.openai_server import OpenAIServer, ScriptedReply
from tests.servers.otlp_receiver import OTLPReceiver

KEY = "zq-live-7f3a9b2c4d5e6f708192a3b4"  # no well-known prefix: only registration masks it
UNREGISTERED = "p4ss-w0rd-never-registered"


async def test_no_key_in_any_sink_output(
    make_shell: ShellFactory,
    output: CapturedOutput,
    otlp_receiver: OTLPReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOME_KEY", KEY)
    with OpenAIServer(api_key=KEY) as server:
        server.script(
            "bad",
            [ScriptedReply(status=401, error_message=f"Incorrect API key provided: {KEY}")],
        )
        shell = await make_shell(
            config=(
                '[telemetry]\nsinks = ["jsonl", "console", "otlp"]\n'
                f'[telemetry.otlp]\nendpoint = "{otlp_receiver.endpoint}"\n'
                f'[agents.good]\nmodel = "gpt-test"\nbase_url = "{server.base_url}"\n'
                'auth = "env:SOME_KEY"\n'
                f'[agents.bad]\nmodel = "bad"\nbase_url = "{server.base_url}"\n'
                'auth = "env:SOME_KEY"\n'
            )
        )
        response = await shell.runner.run(shell.agents["good"], AgentRequest(prompt="hi"))
        assert response.content == "ok"
        assert server.calls[0].authorization == f"Bearer {KEY}"  # the key was really used
        with pytest.raises(AgentError):
            await shell.runner.run(shell.agents["bad"], AgentRequest(prompt="hi"))
    # a plugin bug: secrets put straight into events
    shell.telemetry.emit(PluginErrorEvent(plugin="p", error=f"request failed, key {KEY}"))
    shell.telemetry.emit(
        AgentCallRetry(
            call_id="c", agent="good", backend="openai", attempt=1, next_attempt=2, delay_s=1,
            error_type="rate_limited", error=f"upstream said password={UNREGISTERED}",
        )
    )  # fmt: skip
    assert await shell.execute("/telemetry off") == 0  # flush and close all three

    jsonl = (Path(shell.data_dir) / "telemetry.jsonl").read_text()
    assert '"agent.call.finished"' in jsonl and '"agent.call.failed"' in jsonl
    assert '"plugin.error"' in jsonl and "upstream said password=" in jsonl
    console = output.errors
    assert "[telemetry] agent.call.failed bad" in console
    spans = otlp_receiver.wait_for_spans(2)
    assert {s["name"] for s in spans} == {"chat gpt-test", "chat bad"}
    exported = b"".join(message.SerializeToString() for _, message, _ in otlp_receiver.requests)
    for secret in (KEY, UNREGISTERED):
        assert secret not in jsonl
        assert secret not in console
        assert secret.encode() not in exported
