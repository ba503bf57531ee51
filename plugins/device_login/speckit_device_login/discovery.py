"""Endpoints of a provider: explicit ones from the config, the rest from the issuer's
discovery document (OpenID Connect Discovery, then RFC 8414 metadata)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from agentshell import describe_http_error
from agentshell.errors import CommandError

from .config import ProviderConfig
from .urls import check_endpoint


class DiscoveryError(CommandError):
    """The endpoints cannot be known. ``reason`` is the message without the provider's
    name (for callers that add their own context); ``transient`` when every attempt
    failed for a reason that may pass (unreachable, timed out, a 5xx)."""

    def __init__(self, name: str, reason: str, *, transient: bool = False) -> None:
        super().__init__(f"{name}: {reason}")
        self.reason = reason
        self.transient = transient


class Endpoints(BaseModel):
    model_config = ConfigDict(frozen=True)

    device_authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str | None = None


class _Metadata(BaseModel):
    model_config = ConfigDict(extra="ignore")

    issuer: str | None = None
    device_authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    revocation_endpoint: str | None = None


def metadata_urls(issuer: str) -> list[str]:
    """Where the metadata may live: OIDC appends to the issuer; RFC 8414 inserts the
    well-known segment between host and path."""
    issuer = issuer.rstrip("/")
    parts = urlsplit(issuer)
    rfc8414 = urlunsplit(
        (parts.scheme, parts.netloc, "/.well-known/oauth-authorization-server" + parts.path, "", "")
    )
    return [f"{issuer}/.well-known/openid-configuration", rfc8414]


async def _fetch(client: httpx.AsyncClient, name: str, issuer: str) -> _Metadata:
    problems: list[str] = []
    # an outage (unreachable, 5xx) may pass; a wrong document will not. A 404 is
    # neither: the RFC 8414 URL is often missing while the OIDC one is down.
    outage = final = False
    for url in metadata_urls(issuer):
        try:
            response = await client.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            problems.append(f"{url}: {describe_http_error(exc)}")
            outage = True
            continue
        if response.status_code != 200:
            problems.append(f"{url}: HTTP {response.status_code}")
            outage = outage or response.status_code >= 500
            final = final or (400 <= response.status_code < 500 and response.status_code != 404)
            continue
        final = True  # a 200: whatever is wrong with it below will not pass by itself
        try:
            meta = _Metadata.model_validate_json(response.content)
        except ValidationError:
            problems.append(f"{url}: not a JSON metadata document")
            continue
        # RFC 8414 §3.3 / OIDC Discovery §4.3: the document must be about this issuer
        if meta.issuer is not None and meta.issuer.rstrip("/") != issuer.rstrip("/"):
            problems.append(f"{url}: issuer {meta.issuer!r} does not match")
            continue
        return meta
    raise DiscoveryError(
        name,
        f"cannot read the issuer's metadata ({'; '.join(problems)})",
        transient=outage and not final,
    )


async def resolve_endpoints(client: httpx.AsyncClient, name: str, cfg: ProviderConfig) -> Endpoints:
    device = cfg.device_authorization_endpoint
    token = cfg.token_endpoint
    revocation = cfg.revocation_endpoint
    if cfg.issuer and not (device and token and revocation):
        meta = await _fetch(client, name, cfg.issuer)
        device = device or meta.device_authorization_endpoint
        token = token or meta.token_endpoint
        revocation = revocation or meta.revocation_endpoint
    if not device:
        raise DiscoveryError(name, "the issuer does not support the device authorization grant")
    if not token:
        raise DiscoveryError(name, "the issuer's metadata has no token_endpoint")
    try:
        for url, what in ((device, "device authorization endpoint"), (token, "token endpoint")):
            check_endpoint(url, what)
        if revocation:
            check_endpoint(revocation, "revocation endpoint")
    except ValueError as exc:
        raise DiscoveryError(name, str(exc)) from None
    return Endpoints(
        device_authorization_endpoint=device, token_endpoint=token, revocation_endpoint=revocation
    )
