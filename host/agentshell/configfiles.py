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
import stat
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


#: how deep tables and values may nest: far beyond any real configuration, far below
#: what would exhaust the interpreter's recursion limit in the parser or the validators
MAX_DEPTH = 32
#: a config file larger than this is not a config file (``/dev/zero``, a log)
MAX_BYTES = 4 * 1024 * 1024
#: keys and values quoted in error messages are cut to this many characters
CLIP = 60


def clip(text: object, limit: int = CLIP) -> str:
    """``text`` for an error message: a 1 MB key must not make a 1 MB line."""
    value = str(text)
    return value if len(value) <= limit else value[: limit - 3] + "..."


def key_text(path: Path_) -> str:
    """A dotted key path as messages show it, each part cut (see :func:`clip`)."""
    return ".".join(clip(p, 40) for p in path) or "(top level)"


def file_kind(mode: int) -> str | None:
    """What a path is when it is not a regular file (None when it is one)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_toml(path: Path, label: str | None = None) -> Source:
    """Read one TOML file; a syntax error becomes one ConfigError naming file and line.
    Only a regular file is read: a FIFO is never opened for a blocking read, a device
    (``/dev/zero``) is never read at all."""
    label = label or str(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then says what it is
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        kind = file_kind(info.st_mode)
        if kind is not None:
            raise ConfigError(f"{label}: is {kind}, not a config file")
        if info.st_size > MAX_BYTES:
            raise ConfigError(
                f"{label}: {info.st_size:,} bytes is too large for a config file "
                f"(at most {MAX_BYTES:,})"
            )
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read ({exc.strerror})") from None
    finally:
        os.close(fd)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{label}: not UTF-8 text ({exc.reason})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: {_toml_message(exc)}") from None
    except RecursionError:  # arrays or inline tables nested hundreds deep
        raise ConfigError(f"{label}: values nested more than {MAX_DEPTH} levels deep") from None
    source = Source(label=label, data=data, text=text)
    check_shape(source)
    return source


def check_shape(source: Source) -> None:
    """Reject what no setting can hold and what would break the validators: nesting
    deeper than :data:`MAX_DEPTH`, and NUL characters (no path or name can hold one).
    Iterative, so it cannot overflow the stack itself."""
    stack: list[tuple[Path_, Any]] = [((), source.data)]
    while stack:
        path, node = stack.pop()
        if len(path) > MAX_DEPTH:
            where = source.locate(path[: MAX_DEPTH + 1])
            raise ConfigError(
                f"{where}: {key_text(path[:3])}...: nested more than {MAX_DEPTH} levels deep"
            )
        if isinstance(node, dict):
            for key, value in node.items():
                if "\0" in key:
                    raise ConfigError(
                        f"{source.locate(path)}: {key_text((*path, key))}: "
                        "a key contains a NUL character"
                    )
                stack.append(((*path, key), value))
        elif isinstance(node, list):
            stack.extend(((*path, i), value) for i, value in enumerate(node))
        elif isinstance(node, str) and "\0" in node:
            raise ConfigError(
                f"{source.locate(path)}: {key_text(path)}: contains a NUL character "
                "(no path, name or command can hold one)"
            )


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
    source = Source(label="environment", data=data, env_names=names, unknown_env=unknown)
    check_shape(source)
    return source


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
        except (ValueError, RecursionError):  # nested too deep: check_shape says so
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
        label = f"./{PROJECT_FILE}" if path == cwd / PROJECT_FILE else str(path)
        problem = _not_a_file(path, label, explicit=bool(explicit) and path == candidates[-1])
        if problem == "":
            continue  # no such file: nothing to read
        if problem is not None:
            if strict:
                raise ConfigError(problem)
            problems.append(ConfigError(problem))
            continue
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


def _not_a_file(path: Path, label: str, *, explicit: bool) -> str | None:
    """Why ``path`` cannot be read as a config file (a directory, a FIFO, a device, a
    dangling symlink), "" when it does not exist (only AGENTSHELL_CONFIG must), or None
    when it is a regular file. Skipping any of these silently would hide a mistake."""
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        if path.is_symlink():
            target = clip(os.readlink(path), 200)
            return f"{label}: is a symbolic link to {target}, which does not exist"
        return f"{path}: AGENTSHELL_CONFIG names a missing file" if explicit else ""
    except OSError as exc:
        return f"{label}: cannot read ({exc.strerror})"
    kind = file_kind(info.st_mode)
    return None if kind is None else f"{label}: is {kind}, not a config file"


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
