"""The small part of OAuth 2.0 every step shares: a form POST that authenticates the
client, and the error shape of RFC 6749 §5.2 (also sent with HTTP 200 by GitHub)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from agentshell.redact import redact

from .config import ProviderConfig


class Clock(Protocol):
    """Time for the polling state machine; injectable so tests need not wait."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class OAuthError(Exception):
    """An OAuth error response: ``error`` code and optional description (redacted)."""

    def __init__(self, error: str, description: str | None = None, status: int = 400) -> None:
        self.error = error
        self.description = redact(description or "")[:300]
        self.status = status
        super().__init__(self.error + (f": {self.description}" if self.description else ""))


def client_auth(cfg: ProviderConfig) -> httpx.BasicAuth | None:
    """``client_secret_basic`` for confidential clients (RFC 6749 §2.3.1 form-encodes
    both parts); public clients send only ``client_id`` in the body."""
    if cfg.client_secret is None:
        return None
    secret = cfg.client_secret.get()
    if not secret:
        return None
    return httpx.BasicAuth(quote(cfg.client_id, safe=""), quote(secret, safe=""))


async def post_form(
    client: httpx.AsyncClient,
    url: str,
    data: dict[str, str],
    cfg: ProviderConfig,
    *,
    expect_json: bool = True,
) -> dict[str, Any]:
    """POST ``data`` (plus ``client_id``); return the JSON body or raise OAuthError.
    Transport errors (timeouts, refused connections) propagate as httpx errors.
    ``expect_json=False`` accepts any 2xx body (revocation answers an empty 200)."""
    auth = client_auth(cfg)
    form = {"client_id": cfg.client_id, **data}
    headers = {"Accept": "application/json"}
    if auth is not None:
        response = await client.post(url, data=form, headers=headers, auth=auth)
    else:
        response = await client.post(url, data=form, headers=headers)
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        description = body.get("error_description")
        raise OAuthError(
            body["error"],
            description if isinstance(description, str) else None,
            response.status_code,
        )
    if not expect_json and response.status_code < 400:
        return body if isinstance(body, dict) else {}
    if response.status_code >= 400 or not isinstance(body, dict):
        raise OAuthError(
            f"http_{response.status_code}",
            "the server did not answer with a JSON object" if body is None else None,
            response.status_code,
        )
    return body
