"""The configuration models and their validation.

The merged raw configuration (see :mod:`agentshell.configfiles`) is validated into
:class:`Config`; each plugin's ``[plugins.<name>]`` table is validated against the
model it registered through the ``register_config`` hook. Errors name the file, the
key and the line.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema

from .configfiles import Path_, RawConfig
from .errors import ConfigError
from .redact import MASK, is_secret_key, register_secret


class Secret:
    """A secret setting: a reference (``{ env = "NAME" }``, ``{ keyring = "svc/name" }``)
    or, discouraged, a literal. Resolved when used, so ``/set-env`` takes effect, and
    never shown: ``str()`` and ``repr()`` are redacted."""

    __slots__ = ("env", "keyring", "literal")

    def __init__(
        self, *, env: str | None = None, keyring: str | None = None, literal: str | None = None
    ) -> None:
        self.env = env
        self.keyring = keyring
        self.literal = literal
        register_secret(literal)

    def get(self) -> str | None:
        if self.env:
            value = os.environ.get(self.env)
        elif self.keyring:
            from .auth import keyring_get

            value = keyring_get(self.keyring)
        else:
            value = self.literal
        register_secret(value)
        return value

    def describe(self) -> Any:
        """What ``/config`` shows: the reference, or a mask for a literal."""
        if self.env:
            return {"env": self.env}
        if self.keyring:
            return {"keyring": self.keyring}
        return MASK

    def __repr__(self) -> str:
        return f"Secret({self.describe()!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and (self.env, self.keyring, self.literal) == (
            other.env,
            other.keyring,
            other.literal,
        )

    def __hash__(self) -> int:
        return hash((self.env, self.keyring, self.literal))

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda s: s.describe()),
        )

    @classmethod
    def _validate(cls, value: Any) -> Secret:
        if isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return cls(literal=value)
        if isinstance(value, Mapping) and len(value) == 1:
            if isinstance(value.get("env"), str):
                return cls(env=value["env"])
            if isinstance(value.get("keyring"), str):
                return cls(keyring=value["keyring"])
        raise ValueError('expected a string, { env = "NAME" } or { keyring = "service/name" }')


class ShellSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = "agentshell> "
    history: bool = True
    toolbar: bool = True


class AgentConfig(BaseModel):
    """``[agents.<name>]``: how to reach one agent. Keys other than the ones below are
    backend options (for example ``command`` for the ``command`` backend)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    backend: str = "openai"
    model: str = ""
    role: str = ""
    timeout_s: float = Field(default=120.0, gt=0, alias="timeout")
    auth: str | None = None
    base_url: str | None = None
    api_key: Secret | None = None
    enabled: bool = True
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _collect_options(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        known = {"backend", "model", "role", "timeout", "timeout_s", "auth", "base_url"}
        known |= {"api_key", "enabled", "options"}
        extra = {k: v for k, v in data.items() if k not in known}
        if not extra:
            return data
        out = {k: v for k, v in data.items() if k in known}
        out["options"] = {**extra, **dict(data.get("options") or {})}
        return out


class RetrySettings(BaseModel):
    """``[retry]``: the runner's policy for retryable agent errors."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=4, ge=1, le=100)
    total_budget_s: float = Field(default=300.0, gt=0)
    base_delay_s: float = Field(default=0.5, ge=0)
    max_delay_s: float = Field(default=30.0, ge=0)
    rate_limit_jitter_s: float = Field(default=0.25, ge=0)


class TelemetrySettings(BaseModel):
    """``[telemetry]``: which sinks receive events; ``[telemetry.<sink>]`` per sink."""

    model_config = ConfigDict(extra="allow")

    sinks: list[str] = Field(default_factory=lambda: ["jsonl"])
    capture_content: bool = False
    queue_size: int = Field(default=10_000, ge=1)
    flush_timeout_s: float = Field(default=2.0, ge=0)

    def sink_section(self, name: str) -> dict[str, Any]:
        section = (self.model_extra or {}).get(name, {})
        return dict(section) if isinstance(section, Mapping) else {}


class PluginsSettings(BaseModel):
    """``[plugins]``: ``disable`` plus one ``[plugins.<name>]`` table per plugin."""

    model_config = ConfigDict(extra="allow")

    disable: list[str] = Field(default_factory=list)

    def section(self, name: str) -> dict[str, Any]:
        value = (self.model_extra or {}).get(name, {})
        return dict(value) if isinstance(value, Mapping) else {}


class Config(BaseModel):
    """The merged configuration of a shell session."""

    model_config = ConfigDict(extra="forbid")

    shell: ShellSettings = Field(default_factory=ShellSettings)
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    plugins: PluginsSettings = Field(default_factory=PluginsSettings)

    @field_validator("agents")
    @classmethod
    def _agent_names(cls, value: dict[str, AgentConfig]) -> dict[str, AgentConfig]:
        for name in value:
            if not name or not all(c.isalnum() or c in "_-." for c in name):
                raise ValueError(f"agent name {name!r}: use letters, digits, '_', '-' or '.'")
        return value


def _format_error(raw: RawConfig, err: Mapping[str, Any], prefix: Path_ = ()) -> str:
    loc: Path_ = prefix + tuple(err.get("loc", ()))
    # pydantic adds validator names (e.g. "function-plain[...]") to loc; drop them
    loc = tuple(p for p in loc if not (isinstance(p, str) and "[" in p))
    key = ".".join(str(p) for p in loc) or "(top level)"
    where = raw.locate(loc)
    message = str(err.get("msg", "invalid value"))
    if err.get("type") == "extra_forbidden" and loc:
        siblings = _siblings(loc[:-1])
        guess = difflib.get_close_matches(str(loc[-1]), siblings, n=1)
        hint = f" (did you mean '{guess[0]}'?)" if guess else ""
        if len(loc) == 1:  # a whole section: "[retryy]" or AGENTSHELL_RETRYY__ATTEMPTS
            return f"{where}: unknown section {str(loc[0])!r}{hint}"
        message = "unknown key" + hint
    elif "input" in err:
        shown: Any = err["input"]
        if is_secret_key(key):
            shown = MASK
        elif isinstance(shown, dict | list):
            import json

            # a structure shown as it was written, with secret-named values masked
            text = json.dumps(redacted(shown), default=str)
            shown = text if len(text) <= 60 else text[:57] + "..."
            message += f" (got {shown})"
            return f"{where}: {key}: {message}"
        message += f" (got {shown!r})"
    return f"{where}: {key}: {message}"


def _siblings(path: Path_) -> list[str]:
    model: Any = Config
    for part in path:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = field.annotation
    return list(getattr(model, "model_fields", {}))


def _raise(raw: RawConfig, exc: ValidationError, prefix: Path_ = ()) -> None:
    errors = exc.errors()
    lines = [_format_error(raw, e, prefix) for e in errors[:5]]
    if len(errors) > 5:
        lines.append(f"... and {len(errors) - 5} more")
    raise ConfigError("\n".join(lines)) from None


def validate(raw: RawConfig) -> Config:
    """Validate the merged configuration; raise one :class:`ConfigError` naming file,
    key and line for each problem."""
    try:
        return Config.model_validate(raw.data)
    except ValidationError as exc:
        _raise(raw, exc)
        raise AssertionError("unreachable") from None


def validate_section(
    raw: RawConfig, config: Config, name: str, model: type[BaseModel]
) -> BaseModel:
    """Validate ``[plugins.<name>]`` against a plugin's model."""
    try:
        return model.model_validate(config.plugins.section(name))
    except ValidationError as exc:
        _raise(raw, exc, ("plugins", name))
        raise AssertionError("unreachable") from None


def redacted(value: Any, key: str = "") -> Any:
    """A JSON-friendly copy of a config value with every secret masked."""
    if isinstance(value, Secret):
        return value.describe()
    if isinstance(value, BaseModel):
        value = {**value.__dict__, **(value.model_extra or {})}
    if isinstance(value, Mapping):
        if set(value) <= {"env", "keyring"} and value:
            return dict(value)
        return {str(k): redacted(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(v, key) for v in value]
    if isinstance(value, str) and key and is_secret_key(key) and value:
        return MASK
    return value


__all__ = [
    "AgentConfig",
    "Config",
    "PluginsSettings",
    "RetrySettings",
    "Secret",
    "ShellSettings",
    "TelemetrySettings",
    "redacted",
    "validate",
    "validate_section",
]
