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

    @property
    def transient(self) -> bool:
        """Whether asking again later may succeed: the server failed (5xx), not the
        request (RFC 6749 §5.2 errors such as ``invalid_grant`` are final)."""
        return self.status >= 500 or self.error == "temporarily_unavailable"


class BadAnswer(OAuthError):
    """An answer that is not an OAuth one: an HTTP error status without an OAuth error
    body, or a body that is not a JSON object (a proxy's HTML page, a crashed server).
    Its text says what happened in words, e.g. ``HTTP 502 from the token endpoint``."""

    def __init__(
        self, status: int, endpoint: str, *, json_object: bool, text: str | None = None
    ) -> None:
        self.endpoint = endpoint
        self.json_object = json_object
        if text is None and status >= 400:
            text = f"HTTP {status} from the {endpoint}"
        elif text is None:
            text = f"an answer from the {endpoint} that is not a JSON object (HTTP {status})"
        super().__init__("bad_answer", None, status)
        self.args = (text,)

    def __str__(self) -> str:
        return str(self.args[0])

    @property
    def transient(self) -> bool:
        # 5xx and 429 are the server's trouble; a 2xx that is not JSON is a proxy or a
        # half-restarted server. A 4xx without an OAuth error is a wrong URL: final.
        if self.status < 400:
            return not self.json_object
        return self.status >= 500 or self.status == 429


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
    endpoint: str,
    expect_json: bool = True,
) -> dict[str, Any]:
    """POST ``data`` (plus ``client_id``) to the ``endpoint`` (its name, for messages);
    return the JSON body or raise OAuthError (BadAnswer for a non-OAuth answer).
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
        raise BadAnswer(response.status_code, endpoint, json_object=isinstance(body, dict))
    return body
