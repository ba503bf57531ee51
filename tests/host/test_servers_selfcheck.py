"""Self-checks of the loopback test servers in tests/servers (real sockets, real clients)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.helpers.paths import REPO
from tests.servers.oidc_server import (
    DEVICE_CODE_GRANT_TYPE,
    OIDCServer,
    complete_device_flow,
)
from tests.servers.openai_server import OpenAIServer, ScriptedReply, make_usage
from tests.servers.otlp_receiver import OTLPReceiver

if TYPE_CHECKING:
    from tests.servers.fixtures import OIDCServerFactory

REPO_ROOT = REPO

CHAT = [{"role": "user", "content": "say hello to the tests"}]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0, trust_env=False) as http:
        yield http


def _chat(
    http: httpx.Client, server: OpenAIServer, model: str = "gpt-test", **extra: Any
) -> httpx.Response:
    headers = extra.pop("headers", {})
    body = {"model": model, "messages": CHAT, **extra}
    return http.post(f"{server.base_url}/chat/completions", json=body, headers=headers)


def _sse_events(response: httpx.Response) -> list[str]:
    return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


# --- OpenAI-compatible server -----------------------------------------------------------


def test_openai_non_streaming_completion(openai_server: OpenAIServer, client: httpx.Client) -> None:
    openai_server.default = ScriptedReply(content="hello there", usage=make_usage(12, 2))
    response = _chat(
        client,
        openai_server,
        headers={"Authorization": "Bearer sk-test", "X-Agent-Name": "claude"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    payload = response.json()
    assert payload["object"] == "chat.completion"
    assert payload["id"].startswith("chatcmpl-")
    assert isinstance(payload["created"], int)
    assert payload["model"] == "gpt-test"
    choice = payload["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "hello there", "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert payload["usage"]["prompt_tokens"] == 12
    assert payload["usage"]["completion_tokens"] == 2
    assert payload["usage"]["total_tokens"] == 14
    [call] = openai_server.calls
    assert call.model == "gpt-test"
    assert call.agent == "claude"
    assert call.authorization == "Bearer sk-test"
    assert call.json["messages"] == CHAT
    assert call.messages == CHAT
    assert not call.stream
    assert openai_server.count_for("claude") == 1
    assert openai_server.count_for("gpt-test") == 1


def test_openai_default_usage_is_estimated(
    openai_server: OpenAIServer, client: httpx.Client
) -> None:
    usage = _chat(client, openai_server).json()["usage"]
    assert usage["completion_tokens"] == 1
    assert usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0}
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 0}


def test_openai_scripts_by_agent_header_then_model_then_default(
    openai_server: OpenAIServer, client: httpx.Client
) -> None:
    openai_server.script("gpt-a", [ScriptedReply("a1"), ScriptedReply("a2")])
    openai_server.script("gemini", [ScriptedReply("researcher")])

    def content(response: httpx.Response) -> str:
        return str(response.json()["choices"][0]["message"]["content"])

    assert content(_chat(client, openai_server, "gpt-a")) == "a1"
    # the agent header's queue wins over the model's
    agent = {"X-Agent-Name": "gemini"}
    assert content(_chat(client, openai_server, "gpt-a", headers=agent)) == "researcher"
    # the agent's queue is empty now: the model's queue is next
    assert content(_chat(client, openai_server, "gpt-a", headers=agent)) == "a2"
    assert content(_chat(client, openai_server, "gpt-a")) == "ok"
    assert openai_server.count_for("gpt-a") == 4
    assert openai_server.count_for("gemini") == 2
    assert openai_server.pending("gpt-a") == 0


def test_openai_responder_answers_dynamically(
    openai_server: OpenAIServer, client: httpx.Client
) -> None:
    seen: list[dict[str, str]] = []

    def responder(request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply | None:
        seen.append(headers)
        if request["model"] == "echo":
            return ScriptedReply(content=request["messages"][-1]["content"].upper())
        return None

    openai_server.set_responder(responder)
    echoed = _chat(client, openai_server, "echo", headers={"X-Agent-Name": "a"}).json()
    assert echoed["choices"][0]["message"]["content"] == "SAY HELLO TO THE TESTS"
    fallback = _chat(client, openai_server, "other").json()
    assert fallback["choices"][0]["message"]["content"] == "ok"
    assert seen[0]["x-agent-name"] == "a"

    def broken(request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply | None:
        raise ValueError("bug in test")

    openai_server.set_responder(broken)
    failed = _chat(client, openai_server)
    assert failed.status_code == 500
    assert "bug in test" in failed.json()["error"]["message"]
    assert [type(exc) for exc in openai_server.errors] == [ValueError]


def test_openai_streaming_with_usage(openai_server: OpenAIServer, client: httpx.Client) -> None:
    usage = make_usage(30, 4, cached_tokens=20, reasoning_tokens=3)
    openai_server.default = ScriptedReply(content="one two three four", usage=usage)
    body = {
        "model": "gpt-test",
        "messages": CHAT,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with client.stream("POST", f"{openai_server.base_url}/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "one two three four"
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) == 4
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finish[-1] == "stop"
    assert all(reason is None for reason in finish[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == usage
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    assert openai_server.calls[0].stream


def test_openai_streaming_without_usage(openai_server: OpenAIServer, client: httpx.Client) -> None:
    body = {"model": "gpt-test", "messages": CHAT, "stream": True}
    with client.stream("POST", f"{openai_server.base_url}/chat/completions", json=body) as response:
        events = _sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all("usage" not in chunk for chunk in chunks)
    assert all(chunk["choices"] for chunk in chunks)


def test_openai_stream_refused_when_not_stream_ok(
    openai_server: OpenAIServer, client: httpx.Client
) -> None:
    openai_server.default = ScriptedReply(stream_ok=False)
    response = _chat(client, openai_server, stream=True)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "stream"
    assert _chat(client, openai_server).status_code == 200


def test_openai_rate_limit_with_reset_headers(
    openai_server: OpenAIServer, client: httpx.Client
) -> None:
    openai_server.script(
        "gpt-test",
        [
            ScriptedReply(
                status=429,
                headers={"Retry-After": "2", "x-ratelimit-reset-requests": "1s"},
            )
        ],
    )
    limited = _chat(client, openai_server)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.headers["x-ratelimit-reset-requests"] == "1s"
    error = limited.json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert error["message"]
    assert _chat(client, openai_server).status_code == 200


@pytest.mark.parametrize(
    ("status", "kind"), [(500, "server_error"), (401, "invalid_request_error")]
)
def test_openai_error_statuses(
    openai_server: OpenAIServer, client: httpx.Client, status: int, kind: str
) -> None:
    openai_server.default = ScriptedReply(status=status, error_message="scripted failure")
    response = _chat(client, openai_server)
    assert response.status_code == status
    assert response.json()["error"]["type"] == kind
    assert response.json()["error"]["message"] == "scripted failure"


def test_openai_api_key_enforced(client: httpx.Client) -> None:
    with OpenAIServer(api_key="sk-right") as server:
        assert _chat(client, server).status_code == 401
        assert (
            _chat(client, server, headers={"Authorization": "Bearer sk-wrong"}).status_code == 401
        )
        ok = _chat(client, server, headers={"Authorization": "Bearer sk-right"})
        assert ok.status_code == 200


def test_openai_raw_body_overrides(openai_server: OpenAIServer, client: httpx.Client) -> None:
    big = b"x" * (10 * 1024 * 1024)
    error_object = json.dumps({"error": {"message": "hidden failure", "type": "server_error"}})
    openai_server.script(
        "gpt-test",
        [
            ScriptedReply(body="{not json"),
            ScriptedReply(body=b""),
            ScriptedReply(body=error_object),
            ScriptedReply(body=big, headers={"Content-Type": "text/plain"}),
        ],
    )
    invalid = _chat(client, openai_server)
    assert invalid.status_code == 200
    assert invalid.text == "{not json"
    with pytest.raises(json.JSONDecodeError):
        invalid.json()
    empty = _chat(client, openai_server)
    assert empty.status_code == 200
    assert empty.content == b""
    assert _chat(client, openai_server).json()["error"]["message"] == "hidden failure"
    huge = _chat(client, openai_server)
    assert huge.headers["content-type"] == "text/plain"
    assert len(huge.content) == len(big)


def test_openai_invalid_request_json_is_400_and_recorded(
    openai_server: OpenAIServer, client: httpx.Client
) -> None:
    response = client.post(
        f"{openai_server.base_url}/chat/completions",
        content=b"{oops",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    [call] = openai_server.calls
    assert call.json == {}
    assert call.raw == b"{oops"


def test_openai_disconnect_without_response(
    openai_server: OpenAIServer, client: httpx.Client
) -> None:
    openai_server.script("gpt-test", [ScriptedReply(disconnect=True)])
    with pytest.raises(httpx.RemoteProtocolError):
        _chat(client, openai_server)
    # the pool recovers: the next request gets a fresh connection
    assert _chat(client, openai_server).status_code == 200
    assert openai_server.call_count == 2


def test_openai_stream_truncated_mid_way(openai_server: OpenAIServer, client: httpx.Client) -> None:
    openai_server.default = ScriptedReply(content="a b c d e f", truncate_stream_after=3)
    body = {"model": "gpt-test", "messages": CHAT, "stream": True}
    received: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", f"{openai_server.base_url}/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                received.append(line)
    assert len(received) == 3
    assert "[DONE]" not in "".join(received)


def test_openai_delays_run_in_parallel() -> None:
    # Six requests whose replies are held for 120 s are all in the server at once: a
    # server that handled them one at a time would never see the second. No wall-clock
    # bound (that failed on a loaded machine); stop() then ends the held replies.
    server = OpenAIServer(ScriptedReply(content="slow", delay_s=120.0)).start()
    errors: list[BaseException] = []
    lock = threading.Lock()
    limits = httpx.Limits(max_connections=10)
    try:
        with httpx.Client(timeout=90.0, limits=limits) as http:

            def worker() -> None:
                try:
                    _chat(http, server)
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(exc)

            threads = [threading.Thread(target=worker) for _ in range(6)]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 30  # a bound for a hang only
            while server.call_count < 6 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert server.call_count == 6  # all six held at the same time
            server.stop()
            for thread in threads:
                thread.join(timeout=60)
            assert not any(thread.is_alive() for thread in threads)
    finally:
        server.stop()
    assert len(errors) == 6  # each one was still being held, none answered early


def test_openai_keep_alive_reuses_connection(
    openai_server: OpenAIServer, client: httpx.Client
) -> None:
    for _ in range(3):
        assert _chat(client, openai_server).status_code == 200
    body = {"model": "gpt-test", "messages": CHAT, "stream": True}
    with client.stream("POST", f"{openai_server.base_url}/chat/completions", json=body) as response:
        response.read()
    assert _chat(client, openai_server).status_code == 200
    addresses = {call.client_address for call in openai_server.calls}
    assert len(addresses) == 1, addresses


def test_openai_models_endpoint(openai_server: OpenAIServer, client: httpx.Client) -> None:
    openai_server.script("scripted-model", [ScriptedReply()])
    listing = client.get(f"{openai_server.base_url}/models").json()
    assert listing["object"] == "list"
    ids = [model["id"] for model in listing["data"]]
    assert ids == ["gpt-test", "scripted-model"]
    assert client.get(f"{openai_server.base_url}/models/gpt-test").json()["id"] == "gpt-test"
    assert client.get(f"{openai_server.base_url}/models/nope").status_code == 404
    assert client.get(f"{openai_server.url}/v1/unknown").status_code == 404


def test_openai_stop_cuts_sleeping_requests() -> None:
    # the reply would come after 120 s and the client waits 90 s for it: an answer well
    # before either (the 60 s bound below) can only come from stop() cutting the sleep.
    # The bounds are that generous because a loaded CI machine is slow, not because
    # stopping is: they only tell "cut" from "slept it out".
    server = OpenAIServer(ScriptedReply(delay_s=120.0)).start()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with httpx.Client(timeout=90.0) as http:
                _chat(http, server)
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    deadline = time.monotonic() + 30
    while server.call_count == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.call_count == 1  # the request is in its sleep before we stop
    started = time.monotonic()
    server.stop()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert time.monotonic() - started < 60
    assert len(errors) == 1
    assert isinstance(errors[0], httpx.RemoteProtocolError | httpx.ReadError)


# --- OTLP receiver ----------------------------------------------------------------------


def test_otlp_receives_spans_from_real_exporter(otlp_receiver: OTLPReceiver) -> None:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    exporter = OTLPSpanExporter(
        endpoint=otlp_receiver.traces_endpoint, compression=Compression.Gzip, timeout=10
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "agentshell-tests"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("agentshell.selfcheck")
    try:
        with tracer.start_as_current_span("invoke_agent claude") as parent:
            parent.set_attribute("gen_ai.agent.name", "claude")
            with tracer.start_as_current_span("chat gpt-test", kind=SpanKind.CLIENT) as child:
                child.set_attribute("gen_ai.request.model", "gpt-test")
                child.set_attribute("gen_ai.usage.input_tokens", 12)
                child.set_attribute("gen_ai.cost", 0.25)
                child.set_attribute("gen_ai.cache_hit", True)
                child.set_attribute("gen_ai.response.finish_reasons", ["stop"])
                child.set_status(Status(StatusCode.ERROR, "boom"))
        spans = otlp_receiver.wait_for_spans(2, timeout=10)
    finally:
        provider.shutdown()
    by_name = {span["name"]: span for span in spans}
    child_span = by_name["chat gpt-test"]
    parent_span = by_name["invoke_agent claude"]
    assert child_span["kind"] == "CLIENT"
    assert parent_span["kind"] == "INTERNAL"
    assert child_span["attributes"] == {
        "gen_ai.request.model": "gpt-test",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.cost": 0.25,
        "gen_ai.cache_hit": True,
        "gen_ai.response.finish_reasons": ["stop"],
    }
    assert child_span["status"] == {"code": "ERROR", "message": "boom"}
    assert parent_span["status"]["code"] == "UNSET"
    assert child_span["trace_id"] == parent_span["trace_id"]
    assert len(child_span["trace_id"]) == 32
    assert child_span["parent_span_id"] == parent_span["span_id"]
    assert parent_span["parent_span_id"] is None
    assert child_span["resource"]["service.name"] == "agentshell-tests"
    assert child_span["scope"] == "agentshell.selfcheck"
    assert otlp_receiver.spans_named("chat gpt-test") == [child_span]
    signal_name, _message, headers = otlp_receiver.requests[0]
    assert signal_name == "traces"
    assert {key.lower(): value for key, value in headers.items()}["content-encoding"] == "gzip"


def test_otlp_receives_metrics_from_real_exporter(otlp_receiver: OTLPReceiver) -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    exporter = OTLPMetricExporter(endpoint=otlp_receiver.metrics_endpoint, timeout=10)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("agentshell.selfcheck")
    try:
        histogram = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
        histogram.record(12, {"gen_ai.token.type": "input", "gen_ai.request.model": "gpt-test"})
        histogram.record(3, {"gen_ai.token.type": "output", "gen_ai.request.model": "gpt-test"})
        counter = meter.create_counter("agentshell.calls")
        counter.add(2, {"agent": "claude"})
        assert provider.force_flush(timeout_millis=10_000)
        points = otlp_receiver.wait_for_metric("gen_ai.client.token.usage", timeout=10)
        calls = otlp_receiver.wait_for_metric("agentshell.calls", timeout=5)[0]
    finally:
        provider.shutdown()
    by_type = {point["attributes"]["gen_ai.token.type"]: point for point in points}
    assert by_type["input"]["type"] == "histogram"
    assert by_type["input"]["unit"] == "{token}"
    assert by_type["input"]["count"] == 1
    assert by_type["input"]["sum"] == 12
    assert by_type["output"]["sum"] == 3
    assert by_type["output"]["attributes"]["gen_ai.request.model"] == "gpt-test"
    assert calls["type"] == "sum"
    assert calls["value"] == 2
    assert calls["attributes"] == {"agent": "claude"}


def test_otlp_logs_and_bad_requests(otlp_receiver: OTLPReceiver, client: httpx.Client) -> None:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
        ExportLogsServiceResponse,
    )

    request = ExportLogsServiceRequest()
    record = request.resource_logs.add().scope_logs.add().log_records.add()
    record.body.string_value = "hello log"
    record.severity_text = "INFO"
    attribute = record.attributes.add()
    attribute.key = "k"
    attribute.value.int_value = 7
    response = client.post(
        otlp_receiver.logs_endpoint,
        content=gzip.compress(request.SerializeToString()),
        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    ExportLogsServiceResponse().ParseFromString(response.content)
    [log] = otlp_receiver.wait_for_logs(1, timeout=5)
    assert log["body"] == "hello log"
    assert log["severity_text"] == "INFO"
    assert log["attributes"] == {"k": 7}

    json_post = client.post(otlp_receiver.traces_endpoint, json={"resourceSpans": []})
    assert json_post.status_code == 415
    garbage = client.post(
        otlp_receiver.traces_endpoint,
        content=b"\xff\xff\xff",
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert garbage.status_code == 400
    unknown = client.post(
        f"{otlp_receiver.endpoint}/v1/profiles",
        content=b"",
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert unknown.status_code == 404
    with pytest.raises(TimeoutError, match="no 1 span"):
        otlp_receiver.wait_for_spans(1, timeout=0.2)


def test_otlp_scripted_failure_reaches_exporter(otlp_receiver: OTLPReceiver) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExportResult

    provider = TracerProvider()
    span = provider.get_tracer("t").start_span("failing")
    span.end()
    exporter = OTLPSpanExporter(endpoint=otlp_receiver.traces_endpoint, timeout=5)
    otlp_receiver.fail_with(400)
    try:
        assert exporter.export([span]) == SpanExportResult.FAILURE  # type: ignore[list-item]
        otlp_receiver.fail_with(None)
        assert exporter.export([span]) == SpanExportResult.SUCCESS  # type: ignore[list-item]
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call]
        provider.shutdown()
    assert [s["name"] for s in otlp_receiver.wait_for_spans(1)] == ["failing"]


# --- modules run standalone -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "key", "probe"),
    [
        ("tests.servers.openai_server", "base_url", "/models"),
        ("tests.servers.otlp_receiver", "endpoint", None),
    ],
)
def test_servers_run_as_modules(module: str, key: str, probe: str | None) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        address = json.loads(line)[key]
        assert address.startswith("http://127.0.0.1:")
        if probe is not None:
            assert httpx.get(f"{address}{probe}", timeout=5).status_code == 200
        else:
            response = httpx.post(
                f"{address}/v1/metrics",
                content=b"",
                headers={"Content-Type": "application/x-protobuf"},
                timeout=5,
            )
            assert response.status_code == 200
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


# --- OIDC authorization server ----------------------------------------------------------------


def _poll(http: httpx.Client, server: OIDCServer, device_code: str) -> httpx.Response:
    return http.post(
        server.token_endpoint,
        data={
            "grant_type": DEVICE_CODE_GRANT_TYPE,
            "device_code": device_code,
            "client_id": server.client_id,
        },
    )


def _refresh(http: httpx.Client, server: OIDCServer, refresh_token: str) -> httpx.Response:
    return http.post(
        server.token_endpoint,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": server.client_id,
        },
    )


def test_oidc_device_flow_tokens_and_refresh_rotation(
    oidc_server_factory: OIDCServerFactory, client: httpx.Client
) -> None:
    server = oidc_server_factory(access_token_ttl=120)
    assert server.issuer.startswith("http://127.0.0.1:")
    metadata = client.get(server.discovery_url).json()
    assert metadata["issuer"] == server.issuer
    assert DEVICE_CODE_GRANT_TYPE in metadata["grant_types_supported"]

    device = server.start_device_authorization(client=client)
    assert {"device_code", "user_code", "verification_uri", "expires_in"} <= device.keys()
    assert device["verification_uri_complete"].endswith(device["user_code"])
    assert "interval" not in device  # oidc-provider omits it: clients default to 5 s

    pending = _poll(client, server, device["device_code"])
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"

    complete_device_flow(device["verification_uri_complete"])

    tokens = _poll(client, server, device["device_code"])
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 120
    assert set(body["scope"].split()) == {"openid", "offline_access"}
    assert body["access_token"] and body["id_token"] and body["refresh_token"]

    refreshed = _refresh(client, server, body["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != body["refresh_token"]  # rotated for a public client
    assert second["access_token"] != body["access_token"]

    # reusing the rotated-out token fails and revokes the grant
    reused = _refresh(client, server, body["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert _refresh(client, server, second["refresh_token"]).json()["error"] == "invalid_grant"
    # the device code is spent (replaying it would also revoke its grant)
    assert _poll(client, server, device["device_code"]).json()["error"] == "invalid_grant"


def test_oidc_revocation(oidc_server: OIDCServer, client: httpx.Client) -> None:
    device = oidc_server.start_device_authorization(client=client)
    complete_device_flow(device["verification_uri_complete"])
    tokens = _poll(client, oidc_server, device["device_code"]).json()
    revoked = client.post(
        oidc_server.revocation_endpoint,
        data={
            "token": tokens["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": oidc_server.client_id,
        },
    )
    assert revoked.status_code == 200
    assert _refresh(client, oidc_server, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_oidc_without_offline_access_no_refresh_token(
    oidc_server: OIDCServer, client: httpx.Client
) -> None:
    device = oidc_server.start_device_authorization(scope="openid", client=client)
    complete_device_flow(device["verification_uri_complete"])
    tokens = _poll(client, oidc_server, device["device_code"]).json()
    assert "access_token" in tokens
    assert "refresh_token" not in tokens


def test_oidc_deny_gives_access_denied(oidc_server: OIDCServer, client: httpx.Client) -> None:
    device = oidc_server.start_device_authorization(client=client)
    complete_device_flow(device["verification_uri_complete"], deny=True)
    denied = _poll(client, oidc_server, device["device_code"])
    assert denied.status_code == 400
    assert denied.json()["error"] == "access_denied"


def test_oidc_device_code_expires(
    oidc_server_factory: OIDCServerFactory, client: httpx.Client
) -> None:
    server = oidc_server_factory(device_code_ttl=1)
    device = server.start_device_authorization(client=client)
    assert device["expires_in"] == 1
    time.sleep(1.6)
    expired = _poll(client, server, device["device_code"])
    assert expired.status_code == 400
    assert expired.json()["error"] == "expired_token"


def test_oidc_slow_down_middleware(
    oidc_server_factory: OIDCServerFactory, client: httpx.Client
) -> None:
    server = oidc_server_factory(slow_down=True, slow_down_interval=1)
    device = server.start_device_authorization(client=client)
    assert _poll(client, server, device["device_code"]).json()["error"] == "authorization_pending"
    fast = _poll(client, server, device["device_code"])
    assert fast.status_code == 400
    assert fast.json()["error"] == "slow_down"
    time.sleep(1.2)
    assert _poll(client, server, device["device_code"]).json()["error"] == "authorization_pending"
    # the middleware leaves the body intact for the provider: the flow still completes
    complete_device_flow(device["verification_uri_complete"])
    time.sleep(1.2)
    tokens = _poll(client, server, device["device_code"])
    assert tokens.status_code == 200, tokens.text
    assert "refresh_token" in tokens.json()
    # other grants are not rate limited
    first = _refresh(client, server, tokens.json()["refresh_token"])
    assert first.status_code == 200
    assert _refresh(client, server, first.json()["refresh_token"]).status_code == 200


def test_oidc_without_slow_down_fast_polls_are_pending(
    oidc_server: OIDCServer, client: httpx.Client
) -> None:
    device = oidc_server.start_device_authorization(client=client)
    for _ in range(3):
        assert _poll(client, oidc_server, device["device_code"]).json()["error"] == (
            "authorization_pending"
        )


def test_oidc_server_stops_cleanly(oidc_server_factory: OIDCServerFactory) -> None:
    server = oidc_server_factory()
    issuer = server.issuer
    assert server.running
    server.stop()
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2)
