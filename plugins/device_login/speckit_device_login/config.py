"""The ``[plugins.device_login]`` section: one table per provider.

A provider names either an ``issuer`` (endpoints come from its discovery document) or
its endpoints explicitly. A client secret may only come from the environment or the
keyring — never a literal in a config file that may be committed or shared.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentshell.config import Secret

from .urls import check_endpoint


class ProviderConfig(BaseModel):
    """``[plugins.device_login.providers.<name>]``."""

    model_config = ConfigDict(extra="forbid")

    issuer: str | None = None
    device_authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    revocation_endpoint: str | None = None
    client_id: str = Field(min_length=1)
    client_secret: Secret | None = None
    scopes: list[str] = Field(default_factory=lambda: ["openid", "offline_access"])
    #: advanced/testing: poll interval used when the server sends none (RFC 8628: 5 s);
    #: a server-sent ``interval`` always wins, and ``slow_down`` still adds 5 s.
    poll_interval_s: float = Field(default=5.0, gt=0)
    http_timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("client_secret")
    @classmethod
    def _no_literal_secret(cls, value: Secret | None) -> Secret | None:
        if value is not None and value.literal is not None:
            raise ValueError(
                'a literal client_secret is not allowed; use { env = "NAME" } or '
                '{ keyring = "service/name" }'
            )
        return value

    @field_validator(
        "issuer", "device_authorization_endpoint", "token_endpoint", "revocation_endpoint"
    )
    @classmethod
    def _secure_url(cls, value: str | None) -> str | None:
        if value is not None:
            check_endpoint(value, "URL")
        return value

    @model_validator(mode="after")
    def _endpoints(self) -> ProviderConfig:
        if self.issuer is None and not (self.device_authorization_endpoint and self.token_endpoint):
            raise ValueError("set issuer, or both device_authorization_endpoint and token_endpoint")
        return self

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)


class DeviceLoginConfig(BaseModel):
    """``[plugins.device_login]``."""

    model_config = ConfigDict(extra="forbid")

    #: when no secure keyring exists: store tokens in a 0600 file (with a warning) or refuse
    allow_plaintext: bool = True
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)

    @field_validator("providers", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for name in value:
                if not name or not all(c.isalnum() or c in "_-." for c in str(name)):
                    raise ValueError(
                        f"provider name {name!r}: use letters, digits, '_', '-' or '.'"
                    )
        return value
