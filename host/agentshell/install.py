"""``agentshell install`` and ``agentshell uninstall``: add or remove plugin
distributions in the shell's own environment.

The environment is the one of the interpreter running agentshell (``sys.executable``),
which is what a ``pipx install agentshell`` or ``uv tool install agentshell`` user
cannot reach with a plain ``pip install`` (the same idea as ``llm install``). pip does
the work (``sys.executable -m pip``); a uv-made environment has no pip, so when pip is
missing and ``uv`` is on PATH, ``uv pip … --python sys.executable`` does it instead.

Afterwards the command says which agentshell plugins the installed distributions
registered (entry points in group ``agentshell``), warns about a distribution that
registered none, and drops the entry-point discovery cache so the next start scans.
pip's own output goes straight to the terminal; our messages are one line each.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .plugins import CACHE_FILE, ENTRY_POINT_GROUP

if TYPE_CHECKING:
    import argparse

HOST_DISTRIBUTION = "agentshell"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


class InstallError(Exception):
    """A one-line reason the command cannot go on (printed as ``error: …``)."""


def normalize(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


# -- what is installed ---------------------------------------------------------------


@dataclass(frozen=True)
class Dist:
    """One installed distribution: what the report needs from its metadata."""

    name: str
    version: str
    plugins: tuple[str, ...] = ()  # its entry points of group "agentshell"
    requires: tuple[str, ...] = ()  # normalized names it requires (extras left out)


@dataclass
class Environment:
    """The distributions installed for this interpreter, by normalized name."""

    dists: dict[str, Dist] = field(default_factory=dict)

    @classmethod
    def scan(cls) -> Environment:
        import importlib
        import importlib.metadata as md

        importlib.invalidate_caches()  # pip just changed site-packages under us
        dists: dict[str, Dist] = {}
        for dist in md.distributions():
            try:
                name = dist.metadata["Name"]
                if not name or normalize(name) in dists:
                    continue  # no name, or shadowed by an earlier sys.path entry
                found = Dist(
                    name=name,
                    version=dist.version or "",
                    plugins=tuple(
                        sorted(ep.name for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP)
                    ),
                    requires=tuple(_required_names(dist.requires or ())),
                )
            except Exception:
                continue  # broken metadata of someone else's: it must not stop the command
            dists[normalize(name)] = found
        return cls(dists)

    def get(self, name: str) -> Dist | None:
        return self.dists.get(normalize(name))

    def closure(self, name: str) -> list[Dist]:
        """``name`` and every installed distribution it requires, transitively."""
        seen: dict[str, Dist] = {}
        todo = [normalize(name)]
        while todo:
            key = todo.pop()
            dist = self.dists.get(key)
            if key in seen or dist is None:
                continue
            seen[key] = dist
            todo.extend(dist.requires)
        return list(seen.values())

    def dependents(self, name: str) -> list[Dist]:
        """The installed distributions that require ``name`` directly."""
        key = normalize(name)
        return [d for d in self.dists.values() if key in d.requires]

    def plugin_owners(self) -> dict[str, list[str]]:
        owners: dict[str, list[str]] = {}
        for dist in self.dists.values():
            for plugin in dist.plugins:
                owners.setdefault(plugin, []).append(dist.name)
        return owners


def _required_names(requires: Iterable[str]) -> Iterable[str]:
    for line in requires:
        requirement, _, marker = line.partition(";")
        if "extra" in marker:
            continue  # an optional extra: not installed by a plain install
        match = _NAME.match(requirement)
        if match:
            yield normalize(match.group(1))


def requested_name(arg: str) -> str | None:
    """The distribution name in a pip requirement argument, when it can be told without
    pip: ``name``, ``name[extra]>=1``, ``name @ url``, a wheel file, a project folder."""
    if arg.endswith(".whl"):
        return normalize(os.path.basename(arg).split("-")[0])
    if os.path.isdir(arg):
        return _project_name(arg)
    if "@" in arg:
        head = arg.split("@", 1)[0].strip()
        match = _NAME.fullmatch(head.split("[")[0]) if head else None
        return normalize(match.group(1)) if match else None
    if "://" in arg or os.sep in arg or arg.endswith((".tar.gz", ".zip")):
        return None
    match = _NAME.match(arg)
    return normalize(match.group(1)) if match else None


def _project_name(path: str) -> str | None:
    import tomllib

    try:
        with open(os.path.join(path, "pyproject.toml"), "rb") as fh:
            name = tomllib.load(fh).get("project", {}).get("name")
    except (OSError, ValueError):
        return None
    return normalize(name) if isinstance(name, str) else None


# -- running pip (or uv) ---------------------------------------------------------------


@dataclass(frozen=True)
class Installer:
    """How to run pip against ``python``: its own pip, or uv's pip interface."""

    kind: str  # "pip" or "uv"
    python: str
    uv: str = ""

    def install_argv(self, ns: argparse.Namespace) -> list[str]:
        if self.kind == "pip":
            argv = [self.python, "-m", "pip", "install", "--disable-pip-version-check"]
            if ns.pre:
                argv.append("--pre")
            if ns.force_reinstall:
                argv.append("--force-reinstall")
            if ns.no_cache_dir:
                argv.append("--no-cache-dir")
        else:
            argv = [self.uv, "pip", "install", "--python", self.python]
            if ns.pre:
                argv += ["--prerelease", "allow"]
            if ns.force_reinstall:
                argv.append("--reinstall")
            if ns.no_cache_dir:
                argv.append("--no-cache")
        if ns.quiet:
            argv.append("--quiet")
        if ns.upgrade:
            argv.append("--upgrade")
        if ns.no_index:
            argv.append("--no-index")
        if ns.index_url:
            argv += ["--index-url", ns.index_url]
        for where in ns.find_links:
            argv += ["--find-links", where]
        for path in ns.editable:
            argv += ["--editable", path]
        return [*argv, *ns.names]

    def uninstall_argv(self, names: Sequence[str]) -> list[str]:
        if self.kind == "pip":
            argv = [self.python, "-m", "pip", "uninstall", "--disable-pip-version-check", "-y"]
        else:
            argv = [self.uv, "pip", "uninstall", "--python", self.python]
        return [*argv, *names]


def find_installer(python: str | None = None) -> Installer:
    """pip in agentshell's environment, else uv; neither is one clear error."""
    import importlib.util
    import shutil

    python = python or sys.executable
    if importlib.util.find_spec("pip") is not None:
        return Installer("pip", python)
    uv = shutil.which("uv")
    if uv:
        return Installer("uv", python, uv=uv)
    raise InstallError(
        f"pip is not available in agentshell's environment ({python}) and uv is not on "
        f"PATH: install uv, or add pip with '{python} -m ensurepip', "
        "or reinstall with the plugin: uv tool install agentshell --with NAME"
    )


def _run(argv: list[str]) -> int:
    import subprocess

    try:
        # pip's progress and its own errors go straight to the user's terminal
        return subprocess.run(argv, check=False).returncode
    except OSError as exc:
        raise InstallError(f"cannot run {argv[0]}: {exc.strerror}") from None


def forget_discovered_plugins() -> None:
    """Drop the entry-point cache so the next start scans what is installed now. (Its
    key, the mtimes of ``sys.path``, changes on an install too; this does not rely on
    the file system's mtime resolution.)"""
    import contextlib

    from .configfiles import data_dir

    with contextlib.suppress(OSError):  # none yet, or not ours: its key changed anyway
        os.unlink(data_dir() / CACHE_FILE)


# -- the commands --------------------------------------------------------------------


Say = Callable[[str], None]


def _err(line: str) -> None:
    print(line, file=sys.stderr)


def _plugins_phrase(plugins: Sequence[str]) -> str:
    noun = "plugin" if len(plugins) == 1 else "plugins"
    return f"{noun} {', '.join(plugins)}"


def report_installed(
    before: Environment,
    after: Environment,
    requested: list[str],
    *,
    unnamed: bool = False,
    say: Say = print,
    warn: Say = _err,
) -> None:
    """Say which plugins came with each requested distribution (``requested``: their
    normalized names); warn about one that registers no plugin, or a plugin name that
    another distribution has too. ``unnamed``: some arguments were URLs or archives
    whose names are known only now, so the new top-level distributions count as
    requested too (never the dependencies: those need no plugin)."""
    targets = list(dict.fromkeys(requested))
    if unnamed or not targets:
        changed = [
            key
            for key, dist in after.dists.items()
            if key not in before.dists or before.dists[key].version != dist.version
        ]
        required = {
            req
            for key in {*changed, *targets}
            if key in after.dists
            for req in after.dists[key].requires
        }
        targets += [key for key in changed if key not in required and key not in targets]
    owners = after.plugin_owners()
    for key in targets:
        dist = after.dists.get(key)
        if dist is None:
            continue
        if key == HOST_DISTRIBUTION:  # e.g. install -U agentshell, or 'agentshell[otlp]'
            say(f"{dist.name} {dist.version} (the shell itself)")
            continue
        found: list[str] = []
        through: list[str] = []
        for member in after.closure(key):
            if normalize(member.name) == HOST_DISTRIBUTION:
                continue  # the host's built-ins are not what this install added
            found += member.plugins
            if member.plugins and member is not dist:
                through.append(member.name)
        label = f"{dist.name} {dist.version}"
        if not found:
            warn(
                f"warning: {label} registers no agentshell plugin (no entry point in group "
                f"{ENTRY_POINT_GROUP!r}): agentshell loads nothing from it"
            )
            continue
        via = f" (through {', '.join(sorted(through))})" if through else ""
        say(f"{label}: {_plugins_phrase(sorted(set(found)))}{via}")
        for plugin in dist.plugins:
            others = [o for o in owners.get(plugin, []) if normalize(o) != key]
            if others:
                warn(
                    f"warning: plugin name {plugin!r} of {dist.name} is also registered by "
                    f"{', '.join(others)}: only one of them loads"
                )


def install(ns: argparse.Namespace) -> int:
    if not ns.names and not ns.editable:
        _err("error: nothing to install: give a distribution name, or -e PATH")
        return EXIT_USAGE
    try:
        installer = find_installer()
        before = Environment.scan()
        status = _run(installer.install_argv(ns))
    except InstallError as exc:
        _err(f"error: {exc}")
        return EXIT_FAILED
    forget_discovered_plugins()  # even a failed install may have changed something
    if status != 0:
        _err(f"error: installing failed ({installer.kind} exited with status {status})")
        return EXIT_FAILED
    names = [requested_name(arg) for arg in [*ns.names, *ns.editable]]
    requested = [name for name in names if name]
    report_installed(before, Environment.scan(), requested, unnamed=len(requested) < len(names))
    return EXIT_OK


def _confirm(prompt: str) -> bool:
    print(prompt, end="", flush=True)
    stdin = sys.stdin
    try:
        answer = stdin.readline() if stdin is not None else ""
        echoed = stdin is not None and stdin.isatty()
    except (OSError, ValueError):
        answer, echoed = "", False
    if not echoed:
        print()  # the answer was not echoed: end the prompt's line
    return answer.strip().lower() in {"y", "yes"}


def uninstall(ns: argparse.Namespace) -> int:
    keys = list(dict.fromkeys(normalize(n) for n in ns.names))
    if HOST_DISTRIBUTION in keys:
        _err(
            "error: refusing to uninstall agentshell itself from its own environment; "
            "remove it with the tool that installed it (pipx uninstall agentshell, "
            "uv tool uninstall agentshell, or pip uninstall agentshell)"
        )
        return EXIT_USAGE
    env = Environment.scan()
    missing = [name for name in ns.names if env.get(name) is None]
    if missing:
        for name in missing:
            _err(f"error: {name} is not installed in agentshell's environment ({sys.prefix})")
        _err("nothing was uninstalled")
        return EXIT_FAILED
    try:
        installer = find_installer()  # before asking: a "yes" must not end in "cannot"
    except InstallError as exc:
        _err(f"error: {exc}")
        return EXIT_FAILED
    dists = [d for d in (env.get(k) for k in keys) if d is not None]
    for dist in dists:
        what = _plugins_phrase(dist.plugins) if dist.plugins else "no agentshell plugin"
        print(f"{dist.name} {dist.version} ({what})")
    for dist in dists:
        users = [d.name for d in env.dependents(dist.name) if normalize(d.name) not in keys]
        if users:
            _err(
                f"warning: {', '.join(users)} requires {dist.name}; it may fail to load without it"
            )
    if not ns.yes and not _confirm("Uninstall? [y/N] "):
        _err("error: not confirmed, nothing was uninstalled (-y uninstalls without asking)")
        return EXIT_FAILED
    try:
        status = _run(installer.uninstall_argv([d.name for d in dists]))
    except InstallError as exc:
        _err(f"error: {exc}")
        return EXIT_FAILED
    forget_discovered_plugins()
    if status != 0:
        _err(f"error: uninstalling failed ({installer.kind} exited with status {status})")
        return EXIT_FAILED
    after = Environment.scan()
    for dist in dists:
        if after.get(dist.name) is None:
            print(f"removed {dist.name} {dist.version}")
        else:
            _err(f"warning: {dist.name} is still installed (another copy on sys.path?)")
    return EXIT_OK
