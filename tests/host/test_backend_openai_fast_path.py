"""The ``openai`` backend's fast path (``agentshell.backends._httpcore_fast``) plugs into
httpx/httpcore internals. Each patch is guarded: when an internal moves, the backend
quietly falls back to stock httpx, correct but slower. These tests are the loud part
of that guard: they fail when the installed httpx/httpcore (within the range pinned in
pyproject.toml) no longer has the internals where the fast path expects them, so an
upgrade that drops it is noticed here rather than in a benchmark months later.

Real parts: the real httpx/httpcore and the loopback OpenAI-protocol server.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import httpcore
import httpx

from agentshell.agents import AgentCall, AgentRequest, AgentSpec
from agentshell.backends._httpcore_fast import FastBackend, FastStream
from agentshell.backends.openai import OpenAIBackend
from tests.agents.harness import make_shell_stub
from tests.helpers.paths import REPO
from tests.servers.openai_server import OpenAIServer


def _major(version: str) -> int:
    return int(version.split(".")[0])


def test_installed_httpx_and_httpcore_are_in_the_pinned_range() -> None:
    pinned = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for module, name in ((httpx, "httpx"), (httpcore, "httpcore")):
        spec = next(d for d in pinned if re.match(rf"{name}\b", d))
        upper = re.search(r"<\s*(\d+)", spec)
        assert upper is not None, f"{name} must keep an upper bound: the fast path needs it"
        version = module.__version__
        # a major below the bound: the combination the fast path was written for
        assert _major(version) < int(upper.group(1)), f"{name} {version} is outside {spec}"


async def test_a_new_client_gets_the_fast_network_backend_and_lazy_cookies(
    tmp_path: Path,
) -> None:
    backend = OpenAIBackend(make_shell_stub(tmp_path / "data"))
    client = backend._new_client()
    try:
        transports = [client._transport, *client._mounts.values()]
        pools = [getattr(t, "_pool", None) for t in transports]
        assert pools and all(p is not None for p in pools), "httpx moved the transport's pool"
        backends = [getattr(p, "_network_backend", None) for p in pools]
        assert all(isinstance(b, FastBackend) for b in backends), (
            f"httpcore moved the pool's network backend: {backends}"
        )
        assert type(client._cookies).__name__ == "LazyCookies", "httpx moved the cookie store"
    finally:
        await client.aclose()


async def test_a_call_goes_over_the_fast_stream(
    openai_server: OpenAIServer, tmp_path: Path
) -> None:
    backend = OpenAIBackend(make_shell_stub(tmp_path / "data"))
    spec = AgentSpec(name="a", backend="openai", model="m", base_url=openai_server.base_url)
    try:
        response = await backend.complete(AgentCall(agent=spec, request=AgentRequest(prompt="hi")))
        assert response.content
        pool = backend._clients[0]._transport._pool  # type: ignore[attr-defined]
        streams = [
            getattr(getattr(c, "_connection", None), "_network_stream", None)
            for c in pool.connections
        ]
        assert streams and all(isinstance(s, FastStream) for s in streams), (
            f"the kept-alive connection is not on the fast stream: {streams}"
        )
    finally:
        await backend.aclose()
