"""Endpoint discovery from an issuer, against a real loopback HTTP server serving
scripted metadata documents (the real oidc-provider case is in the e2e tests); /login
says in words why discovery failed: a refused connection, a server that never answers
(a real listener that accepts and stays silent)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from agentshell import CommandError
from speckit_device_login.config import ProviderConfig
from speckit_device_login.discovery import metadata_urls, resolve_endpoints
from speckit_device_login.urls import check_endpoint
from tests.helpers.sockets import HungCollector, free_port, hung_fixture  # noqa: F401 - fixture
from tests.plugins.device_login.oauth_support import (  # noqa: F401 - fixtures
    Reply,
    ScriptedOAuthServer,
    oauth_server_fixture,
)

ShellFactory = Any


def _meta(server: ScriptedOAuthServer, issuer: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "issuer": issuer or server.url,
        "device_authorization_endpoint": f"{server.url}/device/auth",
        "token_endpoint": f"{server.url}/token",
        "revocation_endpoint": f"{server.url}/token/revocation",
        **extra,
    }


async def _resolve(server: ScriptedOAuthServer, **cfg: Any) -> Any:
    config = ProviderConfig(client_id="c", **({"issuer": server.url} | cfg))
    async with httpx.AsyncClient() as client:
        return await resolve_endpoints(client, "idp", config)


async def test_openid_configuration(oauth_server: ScriptedOAuthServer) -> None:
    oauth_server.script("/.well-known/openid-configuration", Reply(200, _meta(oauth_server)))
    endpoints = await _resolve(oauth_server)
    assert endpoints.device_authorization_endpoint == f"{oauth_server.url}/device/auth"
    assert endpoints.revocation_endpoint == f"{oauth_server.url}/token/revocation"


async def test_falls_back_to_rfc8414_metadata(oauth_server: ScriptedOAuthServer) -> None:
    oauth_server.script("/.well-known/oauth-authorization-server", Reply(200, _meta(oauth_server)))
    endpoints = await _resolve(oauth_server)
    assert endpoints.token_endpoint == f"{oauth_server.url}/token"
    assert [r.path for r in oauth_server.received()] == [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ]


async def test_explicit_endpoints_override_discovery(oauth_server: ScriptedOAuthServer) -> None:
    oauth_server.script("/.well-known/openid-configuration", Reply(200, _meta(oauth_server)))
    endpoints = await _resolve(oauth_server, token_endpoint=f"{oauth_server.url}/other-token")
    assert endpoints.token_endpoint == f"{oauth_server.url}/other-token"
    assert endpoints.device_authorization_endpoint == f"{oauth_server.url}/device/auth"


async def test_issuer_mismatch_is_refused(oauth_server: ScriptedOAuthServer) -> None:
    body = _meta(oauth_server, issuer="https://attacker.example")
    oauth_server.script("/.well-known/openid-configuration", Reply(200, body))
    with pytest.raises(CommandError, match=r"issuer 'https://attacker\.example' does not match"):
        await _resolve(oauth_server)


async def test_no_device_flow_support(oauth_server: ScriptedOAuthServer) -> None:
    body = _meta(oauth_server)
    del body["device_authorization_endpoint"]
    oauth_server.script("/.well-known/openid-configuration", Reply(200, body))
    with pytest.raises(CommandError, match="does not support the device authorization grant"):
        await _resolve(oauth_server)


async def test_discovered_plain_http_endpoint_is_refused(oauth_server: ScriptedOAuthServer) -> None:
    body = _meta(oauth_server, token_endpoint="http://idp.example.com/token")
    oauth_server.script("/.well-known/openid-configuration", Reply(200, body))
    with pytest.raises(CommandError, match="refusing token endpoint"):
        await _resolve(oauth_server)


def test_metadata_urls_for_an_issuer_with_a_path() -> None:
    assert metadata_urls("https://idp.example.com/realms/ai/") == [
        "https://idp.example.com/realms/ai/.well-known/openid-configuration",
        "https://idp.example.com/.well-known/oauth-authorization-server/realms/ai",
    ]


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://idp.example.com/token", True),
        ("http://127.0.0.1:8080/token", True),
        ("http://localhost/token", True),
        ("http://[::1]:9000/token", True),
        ("http://idp.example.com/token", False),
        ("http://127.0.0.1.evil.example/token", False),
        ("ftp://idp.example.com/token", False),
        ("https:///token", False),
    ],
)
def test_only_https_or_loopback_http(url: str, ok: bool) -> None:
    if ok:
        assert check_endpoint(url, "endpoint") == url
    else:
        with pytest.raises(ValueError, match="only https is allowed"):
            check_endpoint(url, "endpoint")


async def test_login_says_why_discovery_could_not_connect(
    make_shell: ShellFactory, output: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "builtins,device_login")
    issuer = f"http://127.0.0.1:{free_port()}"
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
