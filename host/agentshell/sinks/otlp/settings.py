"""``[telemetry.otlp]``: where and how the otlp sink exports (validated at start-up
and on ``/telemetry use``, without importing OpenTelemetry)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from agentshell.config import Secret


class OtlpSettings(BaseModel):
    """``[telemetry.otlp]``."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str = "http://localhost:4318"  # base URL; /v1/traces and /v1/metrics appended
    protocol: str = "http/protobuf"
    headers: dict[str, Secret] = Field(default_factory=dict)
    timeout: float = Field(default=10.0, gt=0)  # seconds per export request
    service_name: str = "agentshell"
    providers: dict[str, str] = Field(default_factory=dict)  # agent -> gen_ai.provider.name
    export_interval_s: float = Field(default=60.0, gt=0)  # metrics; also flushed at close
    close_timeout_s: float = Field(default=5.0, ge=0)

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, value: str) -> str:
        if value != "http/protobuf":
            raise PydanticCustomError(
                "otlp_protocol",
                "unsupported protocol '{value}': only 'http/protobuf' is supported",
                {"value": value},
            )
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise PydanticCustomError(
                "otlp_endpoint",
                "endpoint must be an http:// or https:// URL, not '{value}'",
                {"value": value},
            )
        return value.rstrip("/")


__all__ = ["OtlpSettings"]
