"""Transport errors in words, as the user reads them: the openai backend's connect errors
on a real closed port and a real unresolvable name on this machine (no mocking), and
``describe_http_error``, which names the cause and never repeats the message."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentshell.agents import AgentCall, AgentRequest, AgentSpec
from agentshell.backends.openai import OpenAIBackend
from agentshell.errors import AgentDisconnected
from tests.agents.harness import make_shell_stub
from tests.helpers.sockets import free_port


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that is bound but not listening, for the whole test: a connect to it is
    refused. (Bound then released, it was free for anything else to take meanwhile, and
    a free ephemeral port can even be picked as the client's own source port: a TCP
    self-connect that "succeeds".)"""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def call(tmp_path: Path, base_url: str) -> AgentDisconnected:
    backend = OpenAIBackend(make_shell_stub(tmp_path / "data"))
    spec = AgentSpec(name="a", backend="openai", model="m", base_url=base_url, timeout_s=10.0)
    try:
        with pytest.raises(AgentDisconnected) as caught:
            await backend.complete(AgentCall(agent=spec, request=AgentRequest(prompt="hi")))
    finally:
        await backend.aclose()
    return caught.value


async def test_connection_refused_in_words(tmp_path: Path, closed_port: int) -> None:
    port = closed_port
    error = await call(tmp_path, f"http://127.0.0.1:{port}/v1")
    assert str(error) == f"cannot connect to 127.0.0.1:{port}: connection refused"
    assert "Errno" not in str(error)


async def test_unknown_host_in_words(tmp_path: Path) -> None:
    error = await call(tmp_path, "http://no-such-host.invalid/v1")  # .invalid never resolves
    assert str(error) == "cannot connect to no-such-host.invalid:80: unknown host"


def test_describe_http_error_names_the_cause_without_the_message() -> None:
    import httpx

    from agentshell import describe_http_error

    with pytest.raises(httpx.ConnectError) as refused:
        httpx.get(f"http://127.0.0.1:{free_port()}/?token=sk-secret-value", timeout=5)
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
