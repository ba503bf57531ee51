"""Finding and reading configuration sources, before any validation.

Kept free of pydantic so the shell can decide which plugins to load (``plugins.disable``)
with nothing heavier than ``tomllib``. Sources, lowest precedence first: the user file
``$AGENTSHELL_HOME/config.toml``, the project file ``./agentshell.toml``, then
``AGENTSHELL_*`` environment variables.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

PROJECT_FILE = "agentshell.toml"
USER_FILE = "config.toml"

#: environment variables the shell reads itself; they are not config overrides
RESERVED_ENV = frozenset(
    {
        "AGENTSHELL_HOME",
        "AGENTSHELL_DATA_DIR",
        "AGENTSHELL_LOAD_PLUGINS",
        "AGENTSHELL_DISABLE_PLUGINS",
        "AGENTSHELL_TRACE_PLUGINS",
        "AGENTSHELL_CONFIG",
        "AGENTSHELL_DEBUG",
        "AGENTSHELL_NO_PLUGIN_CACHE",
    }
)
#: shorthand variables for common settings, mapped to their config path
ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "AGENTSHELL_TELEMETRY_SINKS": ("telemetry", "sinks"),
}

Path_ = tuple[str | int, ...]


@dataclass
class Source:
    """One place configuration came from: a file or the environment."""

    label: str
    data: dict[str, Any]
    text: str | None = None  # the file's text, for line numbers in error messages
    env_names: dict[Path_, str] = field(default_factory=dict)  # key path -> env var
    unknown_env: list[str] = field(default_factory=list)  # AGENTSHELL_* names not understood

    def locate(self, path: Path_) -> str:
        """``label:line`` (or the env variable) for a key path, as precisely as known."""
        for n in range(len(path), 0, -1):
            name = self.env_names.get(path[:n])
            if name:
                return f"environment variable {name}"
        # a problem with a section the variable sits in (AGENTSHELL_RETRYY__ATTEMPTS)
        below = sorted(n for p, n in self.env_names.items() if p[: len(path)] == path)
        if path and below:
            return f"environment variable {', '.join(below)}"
        if self.text is not None:
            line = find_line(self.text, path)
            if line is not None:
                return f"{self.label}:{line}"
        return self.label

    def has(self, path: Path_) -> bool:
        node: Any = self.data
        for part in path:
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return False
        return True


@dataclass
class RawConfig:
    """The merged, unvalidated configuration and the sources it came from."""

    data: dict[str, Any]
    sources: list[Source]
    problems: list[ConfigError] = field(default_factory=list)  # files skipped as unreadable

    def origin(self, path: Path_) -> Source | None:
        """The highest-precedence source that sets ``path`` (or its nearest parent)."""
        for n in range(len(path), 0, -1):
            for source in reversed(self.sources):
                if source.has(path[:n]):
                    return source
        return None

    def locate(self, path: Path_) -> str:
        source = self.origin(path)
        return source.locate(path) if source else "defaults"


def user_home(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    home = environ.get("AGENTSHELL_HOME")
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("agentshell", appauthor=False))


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    explicit = environ.get("AGENTSHELL_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    home = environ.get("AGENTSHELL_HOME")
    if home:
        return Path(home).expanduser() / "data"
    import platformdirs

    return Path(platformdirs.user_data_dir("agentshell", appauthor=False))


def read_toml(path: Path, label: str | None = None) -> Source:
    """Read one TOML file; a syntax error becomes one ConfigError naming file and line."""
    label = label or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{label}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: {_toml_message(exc)}") from None
    return Source(label=label, data=data, text=text)


def _toml_message(exc: tomllib.TOMLDecodeError) -> str:
    # tomllib says "Invalid value (at line 3, column 9)"; lead with the line like compilers do
    message = str(exc)
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if match:
        what = message[: match.start()].strip()
        return f"line {match.group(1)}, column {match.group(2)}: invalid TOML: {what}"
    return f"invalid TOML: {message}"


def env_source(environ: Mapping[str, str]) -> Source:
    """Overrides from ``AGENTSHELL_<SECTION>__<KEY>[__<KEY>...]`` and the aliases."""
    data: dict[str, Any] = {}
    names: dict[Path_, str] = {}
    unknown: list[str] = []
    for name in sorted(environ):
        if not name.startswith("AGENTSHELL_") or name in RESERVED_ENV:
            continue
        raw = environ[name]
        if name in ENV_ALIASES:
            path: tuple[str, ...] = ENV_ALIASES[name]
            value: Any = [item.strip() for item in raw.split(",") if item.strip()]
        elif "__" in name:
            path = tuple(part.lower() for part in name[len("AGENTSHELL_") :].split("__"))
            if any(not part for part in path):
                raise ConfigError(f"environment variable {name}: empty key in the name")
            value = parse_env_value(raw)
        else:
            if not name.startswith("AGENTSHELL_TESTS_"):  # the test suite's own switches
                unknown.append(name)  # a typo would otherwise be silently ignored
            continue
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name}: conflicts with another variable")
        node[path[-1]] = value
        names[path] = name
    return Source(label="environment", data=data, env_names=names, unknown_env=unknown)


def known_env_names() -> list[str]:
    """The ``AGENTSHELL_*`` names the shell understands without a ``__`` path."""
    return sorted(RESERVED_ENV | set(ENV_ALIASES))


def parse_env_value(raw: str) -> Any:
    """Environment values are JSON when they parse as JSON (numbers, booleans, lists)."""
    text = raw.strip()
    if text.lower() in {"true", "false"}:
        return text.lower() == "true"
    if text and (text[0] in '[{"-' or text[0].isdigit()):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return raw


def deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict) and not _is_ref(value):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _is_ref(value: Mapping[str, Any]) -> bool:
    # a secret reference ({ env = "X" }) replaces what it overrides instead of merging
    return set(value) <= {"env", "keyring"} and bool(value)


def load_raw(
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    strict: bool = False,
) -> RawConfig:
    """Read every source and merge them. Unreadable files are recorded in ``problems``
    (or raised when ``strict``) so an interactive shell can still start without them."""
    environ = os.environ if environ is None else environ
    cwd = cwd or Path.cwd()
    sources: list[Source] = []
    problems: list[ConfigError] = []
    candidates = [user_home(environ) / USER_FILE, cwd / PROJECT_FILE]
    explicit = environ.get("AGENTSHELL_CONFIG")
    if explicit:
        candidates.append(Path(explicit).expanduser())
    problems.extend(_check_dirs(environ))
    for path in candidates:
        if path.is_dir():  # exists, but is not a file: silently skipping it would hide it
            label = f"./{PROJECT_FILE}" if path == cwd / PROJECT_FILE else str(path)
            problem = ConfigError(f"{label}: is a directory, not a config file")
            if strict:
                raise problem
            problems.append(problem)
            continue
        if not path.is_file():
            if (
                path == candidates[-1]
                and explicit
                and str(path) == str(Path(explicit).expanduser())
            ):
                problems.append(ConfigError(f"{path}: AGENTSHELL_CONFIG names a missing file"))
            continue
        label = f"./{PROJECT_FILE}" if path == cwd / PROJECT_FILE else str(path)
        try:
            sources.append(read_toml(path, label))
        except ConfigError as exc:
            if strict:
                raise
            problems.append(exc)
    try:
        sources.append(env_source(environ))
    except ConfigError as exc:
        if strict:
            raise
        problems.append(exc)
    merged: dict[str, Any] = {}
    for source in sources:
        merged = deep_merge(merged, source.data)
    return RawConfig(data=merged, sources=sources, problems=problems)


def _check_dirs(environ: Mapping[str, str]) -> list[ConfigError]:
    """``AGENTSHELL_HOME`` / ``AGENTSHELL_DATA_DIR`` naming a file: one clear line each,
    rather than an OS error from whatever first writes there (a telemetry sink)."""
    problems = []
    for name in ("AGENTSHELL_HOME", "AGENTSHELL_DATA_DIR"):
        value = environ.get(name)
        if value and Path(value).expanduser().exists() and not Path(value).expanduser().is_dir():
            problems.append(ConfigError(f"{name}={value} is not a directory"))
    return problems


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\.\"' ]+?)\s*=")


def _split_key(key: str) -> tuple[str, ...]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([^.\s]+)', key)
    return tuple(next(p for p in group if p) if any(group) else "" for group in parts)


def find_line(text: str, path: Path_) -> int | None:
    """1-based line of the deepest prefix of ``path`` defined in TOML ``text``."""
    want = tuple(str(p) for p in path if not isinstance(p, int))
    table: tuple[str, ...] = ()
    best: tuple[int, int] | None = None  # (matched depth, line)
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _split_key(header.group(1))
            full = table
        else:
            key = _KEY.match(line)
            if not key:
                continue
            full = table + _split_key(key.group(1))
        depth = 0
        for a, b in zip(full, want, strict=False):
            if a != b:
                break
            depth += 1
        if depth == len(full) and depth > 0 and (best is None or depth > best[0]):
            best = (depth, number)
    return best[1] if best else None


def disabled_reasons(raw: RawConfig, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Disabled plugin names, each with where it was disabled (for ``/plugins``)."""
    environ = os.environ if environ is None else environ
    reasons: dict[str, str] = {}
    plugins = raw.data.get("plugins")
    if isinstance(plugins, dict):
        listed = plugins.get("disable", [])
        if isinstance(listed, list):
            source = raw.origin(("plugins", "disable"))
            where = source.label if source else "configuration"
            why = (
                f"disabled by {source.env_names.get(('plugins', 'disable'))}"
                if source and source.env_names.get(("plugins", "disable"))
                else f"disabled by plugins.disable in {where}"
            )
            reasons.update({str(x): why for x in listed})
    env = environ.get("AGENTSHELL_DISABLE_PLUGINS", "")
    reasons.update(
        {x.strip(): "disabled by AGENTSHELL_DISABLE_PLUGINS" for x in env.split(",") if x.strip()}
    )
    return reasons
