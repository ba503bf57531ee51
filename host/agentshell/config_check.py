"""Validating configuration: every valid key is kept, every problem is one line naming
the file, the key and the line, and nothing a user wrote is accepted by accident —
values are read strictly (as JSON: ``true`` is not ``1``), unknown keys are refused with
a "did you mean", in the host's sections and every plugin's alike.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from .config import Config, TelemetrySettings, redacted
from .configfiles import Path_, RawConfig, clip, key_text
from .errors import ConfigError
from .redact import MASK, is_secret_key


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


__all__ = [
    "Checked",
    "check",
    "check_config",
    "check_section",
    "strict_validate",
    "unknown_keys",
    "validate",
    "validate_section",
]
