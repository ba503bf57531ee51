"""The configuration models and their validation.

The merged raw configuration (see :mod:`agentshell.configfiles`) is validated into
:class:`Config`; each plugin's ``[plugins.<name>]`` table is validated against the
model it registered through the ``register_config`` hook. Errors name the file, the
key and the line.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationError,
    model_validator,
)
from pydantic_core import core_schema

from .configfiles import Path_, RawConfig, clip, key_text
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


def _clean_loc(loc: Any) -> Path_:
    # pydantic adds validator names ("function-plain[...]", "[key]") to loc; drop them
    return tuple(p for p in loc if not (isinstance(p, str) and "[" in p))


def _format_error(
    raw: RawConfig, err: Mapping[str, Any], prefix: Path_ = (), model: Any = None
) -> str:
    loc: Path_ = prefix + _clean_loc(err.get("loc", ()))
    key = key_text(loc)
    where = raw.locate(loc)
    message = str(err.get("msg", "invalid value"))
    parent = _model_at(loc[len(prefix) : -1], model or Config)
    if (
        err.get("type") == "dict_type"
        and loc
        and parent is TelemetrySettings
        and loc[-1] not in TelemetrySettings.model_fields
    ):  # a plain value where only sink tables may be: a typo, or a sink setting misplaced
        guess = difflib.get_close_matches(str(loc[-1]), list(TelemetrySettings.model_fields), n=1)
        hint = (
            f" (did you mean '{guess[0]}'?)"
            if guess
            else " (a sink's settings go in its own table, [telemetry.<sink>])"
        )
        return f"{where}: {key}: unknown key{hint}"
    if err.get("type") == "extra_forbidden" and loc:
        siblings = _siblings(loc[len(prefix) : -1], model or Config)
        guess = difflib.get_close_matches(str(loc[-1]), siblings, n=1)
        hint = f" (did you mean '{guess[0]}'?)" if guess else ""
        if len(loc) == 1:  # a whole section: "[retryy]" or AGENTSHELL_RETRYY__ATTEMPTS
            return f"{where}: unknown section {clip(loc[0])!r}{hint}"
        message = "unknown key" + hint
    elif "input" in err and not (
        err.get("type") == "value_error" and isinstance(err["input"], dict | list)
    ):  # a validator's message about a whole table says what is wrong; the table is noise
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
        message += f" (got {clip(repr(shown))})"
    return f"{where}: {key}: {message}"


def _model_at(path: Path_, model: Any) -> Any:
    """The model class that holds the key at ``path`` below ``model`` (None if unknown)."""
    for part in path:
        field_ = getattr(model, "model_fields", {}).get(part)
        if field_ is None:
            return None
        model = field_.annotation
    return model


def _siblings(path: Path_, model: Any = None) -> list[str]:
    model = model or Config
    for part in path:
        field_ = getattr(model, "model_fields", {}).get(part)
        if field_ is None:
            return []
        model = field_.annotation
    return list(getattr(model, "model_fields", {}))


M = TypeVar("M", bound=BaseModel)

#: at most this many problems are listed per validation, then "... and N more"
MAX_PROBLEMS = 25


@dataclass
class Checked(Generic[M]):
    """A lenient validation: the value built from every valid key, one line per problem,
    and the key paths (relative to the model) that fell back to their defaults."""

    value: M
    located: list[tuple[Path_, str]] = field(default_factory=list)  # (key path, line)
    dropped: list[Path_] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        lines = [line for _, line in self.located]
        if len(lines) > MAX_PROBLEMS:
            return [*lines[:MAX_PROBLEMS], f"... and {len(lines) - MAX_PROBLEMS} more"]
        return lines


def _existing(data: Any, path: Path_) -> Path_:
    """The longest prefix of ``path`` present in ``data`` (mappings only: a bad list
    item drops the whole list, so it falls back to its default as one key)."""
    node: Any = data
    found: Path_ = ()
    for part in path:
        if isinstance(node, Mapping) and not isinstance(part, int) and part in node:
            node, found = node[part], (*found, part)
        else:
            break
    return found


def _delete(data: dict[str, Any], path: Path_) -> None:
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node.pop(path[-1], None)


def strict_validate(
    model: type[M],
    data: Mapping[str, Any],
    context: Mapping[str, Any] | None = None,
    *,
    strict: bool = True,
) -> M:
    """``model`` from config data, strictly: as if the data were JSON (which is what TOML
    and the environment give), so ``true`` is not the number 1, ``"3"`` is not 3 and a
    number is not a string, while a path or a choice may still be written as a string.
    ``strict=False`` for values typed as text (``/telemetry use --set n=3``)."""
    text = json.dumps(data, default=str)
    return model.model_validate_json(text, strict=strict, context=dict(context or {}))


def unknown_keys(value: Any, data: Any, path: Path_ = ()) -> list[tuple[Path_, list[str]]]:
    """Keys of ``data`` that ``value`` (validated from it) silently ignored: those of
    every model that does not choose what to do with other keys (no ``extra`` in its
    ``model_config``), with the keys it does know, for a "did you mean" hint. So a plugin
    model written the plain way still rejects a typo (``pth = ...``)."""
    found: list[tuple[Path_, list[str]]] = []
    if isinstance(value, BaseModel) and isinstance(data, Mapping):
        cls = type(value)
        names: dict[str, str] = {}
        for name, info in cls.model_fields.items():
            names[name] = name
            for alias in (info.alias, info.validation_alias):
                if isinstance(alias, str):
                    names[alias] = name
        shown = [info.alias or name for name, info in cls.model_fields.items()]
        for key, item in data.items():
            field_name = names.get(str(key))
            if field_name is None:
                if "extra" not in cls.model_config:
                    found.append(((*path, key), shown))
                continue
            found += unknown_keys(getattr(value, field_name, None), item, (*path, key))
    elif isinstance(value, Mapping) and isinstance(data, Mapping):
        for key, item in data.items():
            if key in value:
                found += unknown_keys(value[key], item, (*path, key))
    elif isinstance(value, list | tuple) and isinstance(data, list):
        for i, (one, item) in enumerate(zip(value, data, strict=False)):
            found += unknown_keys(one, item, (*path, i))
    return found


def check(
    raw: RawConfig,
    model: type[M],
    data: Mapping[str, Any],
    prefix: Path_ = (),
    unit: Callable[[Path_], Path_] | None = None,
    context: Mapping[str, Any] | None = None,
    *,
    strict: bool = True,
) -> Checked[M]:
    """Validate ``data`` keeping everything valid: each invalid key is reported (file,
    key, line) and dropped, so it alone falls back to its default. ``unit`` widens what
    is dropped for a problem at a location (a whole agent, for instance). ``context``
    reaches the model's validators (``info.context``). Unknown keys are problems in
    every model, also one that does not forbid them itself (see :func:`unknown_keys`)."""
    work: dict[str, Any] = copy.deepcopy(dict(data))
    located: list[tuple[Path_, str]] = []
    dropped: list[Path_] = []
    for _ in range(50):  # each round drops at least one key: bounded by the data's size
        try:
            value = strict_validate(model, work, context, strict=strict)
            for loc, known in unknown_keys(value, work):
                guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
                hint = f" (did you mean '{guess[0]}'?)" if guess else ""
                full = prefix + loc
                located.append((loc, f"{raw.locate(full)}: {key_text(full)}: unknown key{hint}"))
            break
        except ValidationError as exc:
            progress = False
            for err in exc.errors():
                loc = _clean_loc(err.get("loc", ()))
                # a follow-on of a key already dropped ("Field required") is not news
                if not any(loc[: len(d)] == d for d in dropped):
                    line = _format_error(raw, err, prefix, model)
                    if all(line != seen for _, seen in located):
                        located.append((loc, line))
                target = _existing(work, unit(loc) if unit else loc)
                if target and not any(target[: len(d)] == d for d in dropped):
                    _delete(work, target)
                    dropped.append(target)
                    progress = True
            if not progress:
                value = _defaults(model)
                break
    else:
        value = _defaults(model)
    return Checked(value, located, dropped)


def _defaults(model: type[M]) -> M:
    try:
        return model()
    except ValidationError:  # a model with required keys has no defaults to fall back to
        return model.model_construct()


def _agent_unit(loc: Path_) -> Path_:
    # an agent with any bad key is left out whole: half an agent (say, the default
    # backend instead of a mistyped one) could send prompts somewhere unintended
    return loc[:2] if len(loc) >= 2 and loc[0] == "agents" else loc


def check_config(raw: RawConfig) -> Checked[Config]:
    """:class:`Config` from every valid key of the merged sources (see :func:`check`);
    an agent with a bad key is dropped whole (``dropped`` holds ``("agents", name)``)."""
    return check(raw, Config, raw.data, unit=_agent_unit)


def check_section(raw: RawConfig, config: Config, name: str, model: type[M]) -> Checked[M]:
    """``[plugins.<name>]`` against a plugin's model, keeping every valid key. The
    model's validators find the validated host config in ``info.context["config"]``
    (to check agent names against ``[agents]``, say)."""
    return check(
        raw, model, config.plugins.section(name), ("plugins", name), context={"config": config}
    )


def validate(raw: RawConfig) -> Config:
    """Validate the merged configuration; raise one :class:`ConfigError` naming file,
    key and line for each problem."""
    checked = check_config(raw)
    if checked.problems:
        raise ConfigError("\n".join(checked.problems))
    return checked.value


def validate_section(
    raw: RawConfig, config: Config, name: str, model: type[BaseModel]
) -> BaseModel:
    """Validate ``[plugins.<name>]`` against a plugin's model."""
    checked = check_section(raw, config, name, model)
    if checked.problems:
        raise ConfigError("\n".join(checked.problems))
    return checked.value


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
    "Checked",
    "Config",
    "PluginsSettings",
    "RetrySettings",
    "Secret",
    "ShellSettings",
    "TelemetrySettings",
    "check",
    "check_config",
    "check_section",
    "redacted",
    "strict_validate",
    "unknown_keys",
    "validate",
    "validate_section",
]
