"""The stored token record, and the refresh and revocation requests."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentshell import describe_http_error
from agentshell.redact import register_secret

from .config import ProviderConfig
from .discovery import Endpoints
from .flow import TokenResponse, register_secrets_in
from .oauth import BadAnswer, OAuthError, post_form


class TokenRecord(BaseModel):
    """What one keyring entry holds (JSON). ``expires_at`` is epoch seconds counted from
    when the token request was *sent*, so the expiry is never overestimated."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    access_token: str = Field(min_length=1, repr=False)
    refresh_token: str | None = Field(default=None, repr=False)
    id_token: str | None = Field(default=None, repr=False)
    token_type: str = "Bearer"
    scope: str | None = None
    expires_at: float | None = None
    obtained_at: float = 0.0

    def model_post_init(self, __context: Any) -> None:
        for value in (self.access_token, self.refresh_token, self.id_token):
            register_secret(value)

    @classmethod
    def from_response(
        cls,
        response: TokenResponse,
        *,
        sent_at: float,
        previous: TokenRecord | None = None,
        requested_scope: str | None = None,
    ) -> TokenRecord:
        # RFC 6749 §6: a refresh answer may omit the refresh token (keep the old one)
        # and the scope (unchanged); §5.1: an omitted scope is the requested one.
        fallback_scope = previous.scope if previous is not None else requested_scope
        return cls(
            access_token=response.access_token,
            refresh_token=response.refresh_token
            or (previous.refresh_token if previous is not None else None),
            id_token=response.id_token or (previous.id_token if previous is not None else None),
            token_type=response.token_type,
            scope=response.scope or fallback_scope,
            expires_at=None if response.expires_in is None else sent_at + response.expires_in,
            obtained_at=sent_at,
        )

    def expires_in(self, now: float) -> float | None:
        return None if self.expires_at is None else self.expires_at - now

    def expires_within(self, seconds: float, now: float) -> bool:
        left = self.expires_in(now)
        return left is not None and left <= seconds


async def refresh(
    client: httpx.AsyncClient,
    endpoints: Endpoints,
    cfg: ProviderConfig,
    record: TokenRecord,
    *,
    sent_at: float,
) -> TokenRecord:
    """RFC 6749 §6. Raises OAuthError (``invalid_grant`` when the refresh token was
    rejected) or an httpx transport error."""
    assert record.refresh_token is not None
    body = await post_form(
        client,
        endpoints.token_endpoint,
        {"grant_type": "refresh_token", "refresh_token": record.refresh_token},
        cfg,
        endpoint="token endpoint",
    )
    register_secrets_in(body)
    try:
        response = TokenResponse.model_validate(body)
    except ValidationError:
        raise BadAnswer(
            200,
            "token endpoint",
            json_object=True,
            text="the token endpoint answered without an access token",
        ) from None
    return TokenRecord.from_response(response, sent_at=sent_at, previous=record)


async def revoke(
    client: httpx.AsyncClient, url: str, cfg: ProviderConfig, token: str, hint: str
) -> str | None:
    """RFC 7009; ``None`` on success, else a short reason (no secrets)."""
    try:
        await post_form(
            client,
            url,
            {"token": token, "token_type_hint": hint},
            cfg,
            endpoint="revocation endpoint",
            expect_json=False,
        )
    except OAuthError as exc:
        return str(exc)
    except httpx.HTTPError as exc:
        return describe_http_error(exc)
    return None
