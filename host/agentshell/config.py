"""The configuration models: what ``agentshell.toml`` may hold, and ``Secret``.

The merged raw configuration (see :mod:`agentshell.configfiles`) is validated into
:class:`Config` by :mod:`agentshell.config_check`, which also validates each plugin's
``[plugins.<name>]`` table against the model it registered through ``register_config``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    model_validator,
)
from pydantic_core import core_schema

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
            env, ref = value.get("env"), value.get("keyring")
            if isinstance(env, str):
                if not env.strip():  # would read no variable and look "set" in /agents
                    raise ValueError('env: the variable name is empty (use { env = "NAME" })')
                return cls(env=env)
            if isinstance(ref, str):
                check_keyring_ref(ref)
                return cls(keyring=ref)
        raise ValueError('expected a string, { env = "NAME" } or { keyring = "service/name" }')


def check_keyring_ref(ref: str) -> str:
    """``service/name``: both parts are needed to find a keyring entry."""
    service, _, name = ref.partition("/")
    if not service.strip() or not name.strip():
        raise ValueError(f"keyring: expected 'service/name', got {ref!r}")
    return ref


def _check_auth(value: str | None) -> str | None:
    """``env:NAME``, ``keyring:SERVICE/NAME`` or a provider name (checked against the
    registered providers once plugins have registered them, see the shell)."""
    if value is None:
        return None
    kind, _, rest = value.partition(":")
    if not kind.strip():
        raise ValueError(
            f"auth: expected env:NAME, keyring:SERVICE/NAME or a provider name, got {value!r}"
        )
    if kind == "env" and not rest.strip():
        raise ValueError("auth: the variable name after 'env:' is empty")
    if kind == "keyring":
        check_keyring_ref(rest)
    return value


def _check_agent_name(name: str) -> str:
    if not name or not all(c.isalnum() or c in "_-." for c in name):
        raise ValueError(f"agent name {name!r}: use letters, digits, '_', '-' or '.'")
    return name


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
    auth: Annotated[str | None, AfterValidator(_check_auth)] = None
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
    # every other key is a sink's table ([telemetry.jsonl]); a plain value (``sinkz``,
    # ``path``) is an unknown key, reported as one (see _format_error)
    __pydantic_extra__: dict[str, dict[str, Any]] = Field(init=False)

    sinks: list[str] = Field(default_factory=lambda: ["jsonl"])
    # sinks whose lost events do not fail `agentshell run` (exit status 4): a warning
    optional: list[str] = Field(default_factory=list)
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
    # names are checked per key so one bad name drops that agent, not all of them
    agents: dict[Annotated[str, AfterValidator(_check_agent_name)], AgentConfig] = Field(
        default_factory=dict
    )
    retry: RetrySettings = Field(default_factory=RetrySettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    plugins: PluginsSettings = Field(default_factory=PluginsSettings)


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
]
