"""The ``openai`` backend against a real OpenAI-compatible server on 127.0.0.1
(tests/servers/openai_server.py): no HTTP mocking. Retry waits go through the runner's
injectable sleep, so the tests observe waits through events and notices, not wall time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agentshell.agents import AgentCall, AgentRequest, AgentSpec
from agentshell.auth import Credentials
from agentshell.backends.openai import OpenAIBackend, make_backend
from agentshell.config import RetrySettings
from agentshell.errors import (
    AgentDisconnected,
    AgentTimeout,
    AuthRequired,
    BadAgentOutput,
    FatalAgentError,
    RateLimited,
)
from tests.agents.harness import Harness, ShellStub, make_harness, make_shell_stub
from tests.servers.openai_server import OpenAIServer, ScriptedReply, make_usage

KEY = "sk-test-loopback-0123456789abcdef"


@pytest.fixture
def stub(tmp_path: Path) -> ShellStub:
    return make_shell_stub(tmp_path / "data")


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LOOPBACK_KEY", KEY)
    return KEY


def agent(server: OpenAIServer, name: str = "claude", **options: Any) -> AgentSpec:
    timeout_s = options.pop("timeout_s", 10.0)
    auth = options.pop("auth", None)
    return AgentSpec(
        name=name,
        backend="openai",
        model="gpt-test",
        base_url=server.base_url,
        auth=auth,
        timeout_s=timeout_s,
        options=options,
    )


def harness(stub: ShellStub, **kwargs: Any) -> Harness:
    return make_harness({"openai": make_backend}, shell=stub, **kwargs)


async def call_backend(
    stub: ShellStub, spec: AgentSpec, request: AgentRequest | None = None
) -> Any:
    """One backend call without the runner (no retries, no runner timeout)."""
    backend = OpenAIBackend(stub)
    try:
        return await backend.complete(
            AgentCall(agent=spec, request=request or AgentRequest(prompt="hi"))
        )
    finally:
        await backend.aclose()


# -- answers ----------------------------------------------------------------------------


async def test_completion_with_usage_details_and_headers(
    openai_server: OpenAIServer, stub: ShellStub, keyed: str
) -> None:
    usage = make_usage(120, 30, cached_tokens=100, reasoning_tokens=12)
    openai_server.script("claude", [ScriptedReply(content="the plan", usage=usage, model="gpt-x")])
    h = harness(stub)
    request = AgentRequest(prompt="make a plan", system="be brief", max_tokens=50, temperature=0.2)
    response = await h.runner.run(agent(openai_server, auth="env:LOOPBACK_KEY"), request)
    assert response.content == "the plan" and response.model == "gpt-x"
    u = response.usage
    assert (u.input_tokens, u.cached_input_tokens, u.output_tokens) == (120, 100, 30)
    assert (u.reasoning_output_tokens, u.total_tokens, u.non_cached_input_tokens) == (12, 150, 20)
    (call,) = openai_server.calls
    assert call.authorization == f"Bearer {KEY}"
    assert call.agent == "claude" and call.model == "gpt-test" and not call.stream
    assert call.messages == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "make a plan"},
    ]
    assert call.json["max_tokens"] == 50 and call.json["temperature"] == 0.2
    assert "response_format" not in call.json
    finished: Any = h.events("agent.call.finished")[0]
    assert finished.usage.cached_input_tokens == 100 and finished.response_model == "gpt-x"
    await h.runner.aclose()


async def test_no_auth_sends_no_authorization_header(
    openai_server: OpenAIServer, stub: ShellStub
) -> None:
    response = await call_backend(stub, agent(openai_server))
    assert response.content == "ok"
    assert openai_server.calls[0].authorization is None


async def test_streaming_with_usage(openai_server: OpenAIServer, stub: ShellStub) -> None:
    usage = make_usage(40, 6, cached_tokens=32, reasoning_tokens=4)
    text = "one two three four five six"
    openai_server.script("claude", [ScriptedReply(content=text, usage=usage, chunk_delay_s=0.001)])
    response = await call_backend(
        stub, agent(openai_server), AgentRequest(prompt="count", stream=True)
    )
    assert response.content == text and response.finish_reason == "stop"
    assert response.usage.cached_input_tokens == 32 and response.usage.reasoning_output_tokens == 4
    (call,) = openai_server.calls
    assert call.stream and call.json["stream_options"] == {"include_usage": True}


async def test_stream_option_from_config(openai_server: OpenAIServer, stub: ShellStub) -> None:
    openai_server.script("claude", [ScriptedReply(content="streamed")])
    response = await call_backend(stub, agent(openai_server, stream=True))
    assert response.content == "streamed" and openai_server.calls[0].stream


async def test_json_mode(openai_server: OpenAIServer, stub: ShellStub) -> None:
    openai_server.script("claude", [ScriptedReply(content='{"ok": true}')])
    h = harness(stub)
    request = AgentRequest(prompt="json please", expect_json=True)
    response = await h.runner.run(agent(openai_server, json_mode=True), request)
    assert response.parsed == {"ok": True}
    assert openai_server.calls[0].json["response_format"] == {"type": "json_object"}
    await h.runner.aclose()


async def test_keep_alive_reuses_one_connection(
    openai_server: OpenAIServer, stub: ShellStub
) -> None:
    h = harness(stub)
    spec = agent(openai_server)
    for _ in range(3):
        await h.runner.run(spec, AgentRequest(prompt="again"))
    assert len({c.client_address for c in openai_server.calls}) == 1
    await h.runner.aclose()


# -- rate limits and server errors --------------------------------------------------------


async def test_429_with_retry_after_then_200(openai_server: OpenAIServer, stub: ShellStub) -> None:
    openai_server.script(
        "claude",
        [
            ScriptedReply(status=429, headers={"Retry-After": "3"}, error_message="slow down"),
            ScriptedReply(content="finally"),
        ],
    )
    h = harness(stub)
    response = await h.runner.run(agent(openai_server), AgentRequest(prompt="hi"))
    assert response.content == "finally" and response.attempts == 2
    assert openai_server.count_for("claude") == 2
    assert h.clock is not None and len(h.clock.sleeps) == 1
    # the hint is absolute (now + 3 s on the server's answer): about 3 s plus jitter
    assert 3.0 <= h.clock.sleeps[0] <= 4.0 + RetrySettings().rate_limit_jitter_s
    assert h.notes[0].startswith("claude: retrying in 3.")
    assert "(attempt 2/4): rate limited (HTTP 429): slow down" in h.notes[0]
    retry: Any = h.events("agent.call.retry")[0]
    assert retry.error_type == "rate_limited" and retry.delay_s >= 3.0
    await h.runner.aclose()


async def test_429_reset_hints_from_headers_and_body(
    openai_server: OpenAIServer, stub: ShellStub
) -> None:
    openai_server.script(
        "claude",
        [
            ScriptedReply(status=429, headers={"x-ratelimit-reset-requests": "6m0s"}),
            ScriptedReply(status=429, body='{"error": {"message": "busy", "reset_seconds": 42}}'),
            ScriptedReply(status=429, error_message="Please try again in 17.252s."),
            ScriptedReply(
                status=429, body='{"error": {"code": "insufficient_quota", "message": "pay"}}'
            ),
        ],
    )
    spec = agent(openai_server)
    waits = []
    for _ in range(3):
        with pytest.raises(RateLimited) as info:
            await call_backend(stub, spec)
        wait = info.value.wait_seconds()
        assert wait is not None
        waits.append(wait)
    assert 355 < waits[0] <= 360 and 37 < waits[1] <= 42 and 12 < waits[2] <= 17.252
    with pytest.raises(FatalAgentError, match="insufficient quota"):
        await call_backend(stub, spec)


async def test_500_is_retried(openai_server: OpenAIServer, stub: ShellStub) -> None:
    openai_server.script("claude", [ScriptedReply(status=500), ScriptedReply(status=503)])
    h = harness(stub)
    response = await h.runner.run(agent(openai_server), AgentRequest(prompt="hi"))
    assert response.content == "ok" and response.attempts == 3
    assert "server error (HTTP 500)" in h.notes[0] and "HTTP 503" in h.notes[1]
    await h.runner.aclose()


@pytest.mark.parametrize(
    ("status", "error"), [(400, FatalAgentError), (404, FatalAgentError), (403, AuthRequired)]
)
async def test_client_errors_are_not_retried(
    openai_server: OpenAIServer, stub: ShellStub, status: int, error: type[Exception]
) -> None:
    openai_server.script("claude", [ScriptedReply(status=status)])
    h = harness(stub)
    with pytest.raises(error, match=f"HTTP {status}"):
        await h.runner.run(agent(openai_server), AgentRequest(prompt="hi"))
    assert openai_server.count_for("claude") == 1 and h.notes == []
    await h.runner.aclose()


# -- credentials ---------------------------------------------------------------------------


async def test_missing_env_credentials_name_the_fix(
    openai_server: OpenAIServer, stub: ShellStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MISSING_KEY_FOR_TEST", raising=False)
    h = harness(stub)
    with pytest.raises(AuthRequired) as info:
        await h.runner.run(
            agent(openai_server, auth="env:MISSING_KEY_FOR_TEST"), AgentRequest(prompt="x")
        )
    assert "/set-env MISSING_KEY_FOR_TEST=<value>" in str(info.value)
    assert openai_server.call_count == 0


async def test_401_with_env_key_is_auth_required_without_the_key(
    stub: ShellStub, keyed: str
) -> None:
    with OpenAIServer(api_key="the-right-key") as server:
        # the server echoes the wrong key in its message, as OpenAI does
        server.script(
            "claude",
            [ScriptedReply(status=401, error_message=f"Incorrect API key provided: {KEY}.")],
        )
        h = harness(stub)
        with pytest.raises(AuthRequired) as info:
            await h.runner.run(agent(server, auth="env:LOOPBACK_KEY"), AgentRequest(prompt="x"))
        assert server.call_count == 1
    message = str(info.value)
    assert "HTTP 401" in message and "/set-env LOOPBACK_KEY=<value>" in message
    assert KEY not in message
    failed: Any = h.events("agent.call.failed")[0]
    assert KEY not in failed.error
    await h.runner.aclose()


class RotatingProvider:
    """An auth provider whose first token is stale; a refresh gives the good one."""

    def __init__(self, good: str | None) -> None:
        self.good = good
        self.refreshes = 0

    async def get_credentials(self, account: str | None = None) -> Credentials | None:
        return Credentials(token="stale-token-000", source="rotating")

    async def on_unauthorized(self, account: str | None = None) -> Credentials | None:
        self.refreshes += 1
        return Credentials(token=self.good, source="rotating") if self.good else None

    def login_command(self, account: str | None = None) -> str:
        return "/login rotating"


@pytest.mark.parametrize("refresh_works", [True, False])
async def test_provider_401_refreshes_once(stub: ShellStub, refresh_works: bool) -> None:
    provider = RotatingProvider("fresh-token-111" if refresh_works else None)
    stub.auth.add_provider("rotating", lambda shell: provider)
    with OpenAIServer(api_key="fresh-token-111") as server:
        spec = agent(server, auth="rotating")
        if refresh_works:
            response = await call_backend(stub, spec)
            assert response.content == "ok"
        else:
            with pytest.raises(
                AuthRequired, match=r"not logged in to rotating \(run: /login rotating\)"
            ):
                await call_backend(stub, spec)
        auths = [c.authorization for c in server.calls]
    assert provider.refreshes == 1
    assert auths == (
        ["Bearer stale-token-000", "Bearer fresh-token-111"]
        if refresh_works
        else ["Bearer stale-token-000"]
    )


# -- timeouts and broken connections -------------------------------------------------------


async def test_slow_response_times_out(openai_server: OpenAIServer, stub: ShellStub) -> None:
    openai_server.script("claude", [ScriptedReply(delay_s=5)])
    with pytest.raises(AgentTimeout):
        await call_backend(stub, agent(openai_server, timeout_s=0.2))


async def test_slow_response_times_out_in_the_runner(
    openai_server: OpenAIServer, stub: ShellStub
) -> None:
    # the first reply is held (until the server stops); the second must arrive within the
    # same per-call timeout, so that is 2 s and not 0.2 s: a loaded machine can take longer
    # than 0.2 s for a loopback round trip, and a second time-out failed the test
    held = ScriptedReply(delay_s=120)
    openai_server.script("claude", [held, ScriptedReply(content="second try")])
    h = harness(stub)
    response = await h.runner.run(agent(openai_server, timeout_s=2.0), AgentRequest(prompt="hi"))
    assert response.content == "second try" and response.attempts == 2
    # httpx's read timeout or the runner's own, whichever fires first: both are timeouts
    retry: Any = h.events("agent.call.retry")[0]
    assert retry.error_type == "timeout" and h.notes[0].startswith("claude: retrying in")
    await h.runner.aclose()


@pytest.mark.parametrize(
    "reply",
    [
        ScriptedReply(disconnect=True),
        ScriptedReply(content="a b c d e f", truncate_stream_after=3),
    ],
    ids=["before-response", "mid-stream"],
)
async def test_disconnects(
    openai_server: OpenAIServer, stub: ShellStub, reply: ScriptedReply
) -> None:
    openai_server.script("claude", [reply])
    with pytest.raises(AgentDisconnected):
        await call_backend(stub, agent(openai_server), AgentRequest(prompt="hi", stream=True))


async def test_stream_ending_without_done_is_a_disconnect(
    openai_server: OpenAIServer, stub: ShellStub
) -> None:
    body = 'data: {"choices": [{"index": 0, "delta": {"content": "half"}}]}\n\n'
    openai_server.script(
        "claude", [ScriptedReply(body=body, headers={"Content-Type": "text/event-stream"})]
    )
    with pytest.raises(AgentDisconnected, match="no \\[DONE\\]"):
        await call_backend(stub, agent(openai_server), AgentRequest(prompt="hi", stream=True))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "invalid JSON"),
        ("", "empty response body"),
        (
            '{"error": {"message": "model overloaded", "type": "server_error"}}',
            "HTTP 200 with an error: model overloaded",
        ),
        ('{"id": "x", "object": "chat.completion"}', "no choices"),
        ('{"choices": []}', "no choices"),
        ("[1, 2]", "not an object"),
    ],
)
async def test_bad_bodies(
    openai_server: OpenAIServer, stub: ShellStub, body: str, message: str
) -> None:
    openai_server.script("claude", [ScriptedReply(body=body)])
    with pytest.raises(BadAgentOutput, match=message):
        await call_backend(stub, agent(openai_server))


async def test_streamed_response_over_the_cap(openai_server: OpenAIServer, stub: ShellStub) -> None:
    openai_server.script("claude", [ScriptedReply(content="word " * 2000)])
    with pytest.raises(BadAgentOutput, match="too large"):
        await call_backend(
            stub,
            agent(openai_server, max_response_bytes=4096),
            AgentRequest(prompt="hi", stream=True),
        )


async def test_huge_response_fails_alone_in_a_fan_out(
    openai_server: OpenAIServer, stub: ShellStub
) -> None:
    big = b'{"choices": [{"message": {"content": "' + b"x" * (10 * 1024 * 1024) + b'"}}]}'
    openai_server.script("huge", [ScriptedReply(body=big)])
    openai_server.script("bad", [ScriptedReply(body="{oops")])
    openai_server.script("good", [ScriptedReply(content="fine")])
    h = harness(stub)
    names = ["good", "huge", "bad"]
    outcomes = await h.runner.run_many(
        [agent(openai_server, n) for n in names], AgentRequest(prompt="hi")
    )
    assert outcomes[0].response is not None and outcomes[0].response.content == "fine"
    assert isinstance(outcomes[1].error, BadAgentOutput) and "too large" in str(outcomes[1].error)
    assert isinstance(outcomes[2].error, BadAgentOutput)
    await h.runner.aclose()


async def test_unreachable_server_is_a_disconnect(stub: ShellStub) -> None:
    with OpenAIServer() as server:
        spec = agent(server)
    with pytest.raises(AgentDisconnected, match=r"cannot connect to 127\.0\.0\.1:"):
        await call_backend(stub, spec)


# -- cancellation ---------------------------------------------------------------------------


def established_to(port: int) -> int:
    """Client-side TCP connections of this machine to 127.0.0.1:port (ESTABLISHED)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state = fields[2], fields[3]
        if remote == f"0100007F:{port:04X}" and state == "01":
            count += 1
    return count


async def test_cancel_fan_out_closes_every_connection(
    openai_server: OpenAIServer, stub: ShellStub
) -> None:
    openai_server.default = ScriptedReply(delay_s=30)
    h = harness(stub)
    names = [f"agent{i}" for i in range(16)]
    task = asyncio.create_task(
        h.runner.run_many([agent(openai_server, n) for n in names], AgentRequest(prompt="hi"))
    )
    for _ in range(3000):  # until all 16 are held (a 30 s bound: a loaded machine is slow)
        if openai_server.call_count == 16:
            break
        await asyncio.sleep(0.01)
    assert openai_server.call_count == 16
    assert established_to(openai_server.port) == 16
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert established_to(openai_server.port) == 0
    failed: list[Any] = h.events("agent.call.failed")
    assert len(failed) == 16 and {e.error_type for e in failed} == {"cancelled"}
    await h.runner.aclose()
