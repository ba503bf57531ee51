"""Pytest fixtures for the loopback test servers.

Enable with ``pytest_plugins = ["tests.servers.fixtures"]`` in the root ``conftest.py``
(the repository root must be importable, i.e. on ``sys.path``).

- ``openai_server``: a started `OpenAIServer` (function scope).
- ``otlp_receiver``: a started `OTLPReceiver` (function scope).
- ``oidc_server``: a started `OIDCServer` with defaults (function scope).
- ``oidc_server_factory``: ``factory(device_code_ttl=..., access_token_ttl=...,
  refresh_token_ttl=..., slow_down=..., slow_down_interval=...)`` -> a started
  `OIDCServer`; every server it made is stopped at teardown.

The OIDC fixtures skip when Node.js or ``tests/servers/oidc/node_modules`` is missing,
unless ``AGENTSHELL_TESTS_REQUIRE_OIDC=1`` was set when pytest started, which turns that
into a failure (for CI). It is read at import, before any fixture cleans the environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from tests.servers.oidc_server import OIDCServer, oidc_unavailable_reason
from tests.servers.openai_server import OpenAIServer
from tests.servers.otlp_receiver import OTLPReceiver

_REQUIRE_OIDC = os.environ.get("AGENTSHELL_TESTS_REQUIRE_OIDC") == "1"

__all__ = [
    "OIDCServerFactory",
    "oidc_server",
    "oidc_server_factory",
    "openai_server",
    "otlp_receiver",
]


class OIDCServerFactory(Protocol):
    def __call__(
        self,
        *,
        device_code_ttl: int | None = None,
        access_token_ttl: int | None = None,
        refresh_token_ttl: int | None = None,
        slow_down: bool = False,
        slow_down_interval: float | None = None,
    ) -> OIDCServer: ...


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def otlp_receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as receiver:
        yield receiver


def _require_oidc() -> None:
    reason = oidc_unavailable_reason()
    if reason is None:
        return
    if _REQUIRE_OIDC:
        pytest.fail(f"OIDC test server unavailable: {reason}", pytrace=False)
    pytest.skip(f"OIDC test server unavailable: {reason}")


@pytest.fixture
def oidc_server_factory() -> Iterator[OIDCServerFactory]:
    _require_oidc()
    servers: list[OIDCServer] = []

    def factory(**kwargs: Any) -> OIDCServer:
        server = OIDCServer(**kwargs)
        servers.append(server)
        return server.start()

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def oidc_server(oidc_server_factory: OIDCServerFactory) -> OIDCServer:
    return oidc_server_factory()
