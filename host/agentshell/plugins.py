"""The plugin manager: discovery, enabling and disabling, isolation of broken plugins,
and calling hooks that may be sync or async.

Built-in features are plugins too: they are entry points of group ``agentshell`` in
agentshell's own distribution and go through exactly the same path as a third party's
(finding them is :mod:`agentshell.discovery`'s job).
A plugin that fails to import, to register, or in a collection hook is marked failed
with the reason (``/plugins`` shows it) and the shell goes on without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

from . import hookspecs
from .discovery import (
    CACHE_FILE,
    ENTRY_POINT_GROUP,
    PluginEntryPoint,
    discover_entry_points,
)
from .errors import AgentError

hookimpl = pluggy.HookimplMarker("agentshell")

PluginState = Literal["loaded", "disabled", "failed"]


@dataclass
class PluginInfo:
    """What ``/plugins`` and ``agentshell plugins --json`` show about one plugin."""

    name: str
    module: str = ""
    version: str = ""
    distribution: str = ""
    hooks: list[str] = field(default_factory=list)
    state: PluginState = "loaded"
    reason: str | None = None
    builtin: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "version": self.version,
            "distribution": self.distribution,
            "hooks": list(self.hooks),
            "state": self.state,
            "reason": self.reason,
            "builtin": self.builtin,
        }


# frames that are never the culprit: a module named with ``-p`` is imported from cli.py
_HOST_FRAMES = (
    "pluggy/",
    "importlib",
    "agentshell/plugins.py",
    "agentshell/discovery.py",
    "agentshell/cli.py",
    "<frozen",
)


def summarize_exception(exc: BaseException) -> str:
    """One line: the exception and where it was raised (file:line in the plugin)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    for frame in reversed(frames):
        name = frame.filename.replace(os.sep, "/")
        if not any(part in name for part in _HOST_FRAMES):
            where = f" at {os.path.basename(frame.filename)}:{frame.lineno}"
            break
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}{where}" if message else f"{type(exc).__name__}{where}"


def is_plugin_failure(exc: BaseException) -> bool:
    """Whether an exception out of plugin code is that plugin's failure (isolated: the
    plugin is reported and the shell goes on) rather than a request to stop everything.
    Only Ctrl-C and cancellation stop: a plugin calling ``sys.exit()`` in a hook, or
    raising some other ``BaseException``, must not end the shell, nor leave it
    half-started (before its commands are registered)."""
    return not isinstance(exc, KeyboardInterrupt | asyncio.CancelledError | GeneratorExit)


class PluginHost:
    """Owns the pluggy PluginManager and what is known about each plugin."""

    def __init__(self, *, trace: bool | None = None) -> None:
        self.pm = pluggy.PluginManager("agentshell")
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._impl_cache: dict[str, list[pluggy.HookImpl]] = {}
        # plugins asked for by name (``-p MODULE``): one that breaks at start-up is failed
        # and reported as an error; an entry point that does only gets a warning
        self.requested: set[str] = set()
        self._error_reporter: Callable[[str, str | None, BaseException], None] | None = None
        if trace is None:
            trace = os.environ.get("AGENTSHELL_TRACE_PLUGINS", "") not in {"", "0", "false"}
        self.tracing = trace
        if trace:
            self.pm.trace.root.setwriter(sys.stderr.write)
            self.pm.enable_tracing()

    # -- loading ---------------------------------------------------------------------

    def load_entry_points(
        self,
        *,
        disabled: Iterable[str] = (),
        only: Iterable[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        disabled_by: dict[str, str] | None = None,
    ) -> None:
        """Discover and register every ``agentshell`` entry point.

        With ``cache_dir``, discovery is cached there (see :func:`discover_entry_points`).
        ``disabled_by`` maps a disabled name to why ("disabled by AGENTSHELL_...").
        """
        disabled = set(disabled)
        why_disabled = {name: "disabled by configuration" for name in disabled}
        why_disabled.update(disabled_by or {})
        only_set = None if only is None else set(only)
        for ep in discover_entry_points(cache_dir):
            info = PluginInfo(
                name=ep.name,
                module=ep.value,
                version=ep.version,
                distribution=ep.distribution,
                builtin=ep.distribution == "agentshell",
            )
            if ep.name in self.infos:
                info.state, info.reason = (
                    "failed",
                    (
                        f"name clash: a plugin named {ep.name!r} is already loaded"
                        f" from {self.infos[ep.name].module}"
                    ),
                )
                self.infos[f"{ep.name} ({info.distribution})"] = info
                continue
            self.infos[ep.name] = info
            if only_set is not None and ep.name not in only_set:
                info.state, info.reason = "disabled", "not in AGENTSHELL_LOAD_PLUGINS"
                continue
            if ep.name in disabled:
                info.state, info.reason = "disabled", why_disabled[ep.name]
                continue
            try:
                plugin = ep.load()
            except BaseException as exc:  # an import can raise anything, even SystemExit
                if isinstance(exc, KeyboardInterrupt):
                    raise
                info.state, info.reason = "failed", f"import failed: {summarize_exception(exc)}"
                continue
            self._register(plugin, info)

    def register(self, plugin: object, name: str, *, version: str = "") -> PluginInfo:
        """Register an in-process plugin object (tests, scripts, embedding)."""
        info = PluginInfo(
            name=name, module=getattr(plugin, "__name__", type(plugin).__name__), version=version
        )
        if name in self.infos and self.infos[name].state == "loaded":
            info.state, info.reason = "failed", f"name clash: a plugin named {name!r} is loaded"
            return info
        self.infos[name] = info
        self._register(plugin, info)
        return info

    def _register(self, plugin: object, info: PluginInfo) -> None:
        unknown = self._unknown_hooks(plugin)
        if unknown:
            info.state, info.reason = "failed", "; ".join(unknown)
            return
        try:
            self.pm.register(plugin, name=info.name)
        except Exception as exc:
            info.state, info.reason = "failed", f"register failed: {summarize_exception(exc)}"
            return
        info.hooks = sorted(
            impl_name
            for impl_name in dir(plugin)
            if self.pm.parse_hookimpl_opts(plugin, impl_name) is not None
        )
        info.state, info.reason = "loaded", None
        self._impl_cache.clear()

    def _unknown_hooks(self, plugin: object) -> list[str]:
        problems = []
        for attr in dir(plugin):
            opts = self.pm.parse_hookimpl_opts(plugin, attr)
            if opts is None or opts.get("optionalhook"):
                continue
            if attr not in hookspecs.HOOK_NAMES and not hasattr(self.pm.hook, attr):
                guess = difflib.get_close_matches(attr, hookspecs.HOOK_NAMES, n=1)
                hint = f" (did you mean {guess[0]!r}?)" if guess else ""
                problems.append(f"unknown hook {attr!r}{hint}")
            elif attr in hookspecs.HOOK_NAMES:
                problems.extend(_argument_problems(attr, getattr(plugin, attr)))
        return problems

    def disable(self, name: str, reason: str) -> None:
        """Mark a registered plugin disabled and unregister it (a ``-p`` module named in
        ``plugins.disable``: the configuration is read after it was imported)."""
        info = self.infos.get(name)
        if info is None:
            return
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
            self._impl_cache.clear()
        info.state, info.reason, info.hooks = "disabled", reason, []

    def fail(self, name: str, reason: str) -> None:
        """Mark a loaded plugin failed and unregister it, so its hooks stop running."""
        info = self.infos.get(name)
        if info is None:
            return
        info.state, info.reason = "failed", reason
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
            self._impl_cache.clear()

    def _startup_failed(self, name: str, hook_name: str, exc: BaseException) -> None:
        reason = f"hook {hook_name} raised {summarize_exception(exc)}"
        if name in self.requested:
            self.fail(name, reason)
        elif name in self.infos:
            # a broken third-party plugin must not stop the shell: it stays loaded, and
            # /plugins says what went wrong
            self.infos[name].reason = reason

    def check_pending(self) -> None:
        self.pm.check_pending()

    @property
    def loaded(self) -> list[str]:
        return [name for name, info in self.infos.items() if info.state == "loaded"]

    # -- calling ---------------------------------------------------------------------

    def set_error_reporter(self, report: Callable[[str, str | None, BaseException], None]) -> None:
        self._error_reporter = report

    def _impls(self, hook_name: str) -> list[pluggy.HookImpl]:
        impls = self._impl_cache.get(hook_name)
        if impls is None:
            caller = getattr(self.pm.hook, hook_name)
            # pluggy calls the last registered / tryfirst implementations first
            impls = self._impl_cache[hook_name] = list(reversed(caller.get_hookimpls()))
        return impls

    def _trace(self, hook_name: str, plugin_name: str) -> None:
        if self.tracing:
            sys.stderr.write(f"[agentshell] hook {hook_name} -> {plugin_name}\n")

    def _report(self, plugin_name: str, hook_name: str | None, exc: BaseException) -> None:
        if self._error_reporter is not None:
            with contextlib.suppress(Exception):  # a reporter must not break the caller
                self._error_reporter(plugin_name, hook_name, exc)

    async def collect(
        self,
        hook_name: str,
        make_register: Callable[[str], Callable[..., None]],
        discard: Callable[[str], None] | None = None,
        **hook_args: Any,
    ) -> None:
        """Call a collection hook plugin by plugin. A plugin whose hook raises, or whose
        registrations are rejected when committed (wrong arguments or types), is marked
        failed and what it registered during that call is discarded (``discard``).
        ``hook_args`` are the hook's other arguments (each implementation gets those it
        names)."""
        for impl in list(self._impls(hook_name)):
            staged: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
            register = _stager(staged)

            self._trace(hook_name, impl.plugin_name)
            try:
                result = _invoke(impl, {"register": register, **hook_args})
                if inspect.isawaitable(result):
                    await result
            except BaseException as exc:
                if not is_plugin_failure(exc):
                    raise
                self.fail(impl.plugin_name, f"hook {hook_name} raised {summarize_exception(exc)}")
                self._report(impl.plugin_name, hook_name, exc)
                continue
            commit = make_register(impl.plugin_name)
            try:
                for args, kwargs in staged:
                    # bind first: a wrong call is reported as the plugin's, not the host's
                    signature = inspect.signature(commit)
                    try:
                        signature.bind(*args, **kwargs)
                    except TypeError as exc:
                        names = ", ".join(signature.parameters)
                        raise TypeError(f"register({names}) called wrongly: {exc}") from None
                    commit(*args, **kwargs)
            except BaseException as exc:
                if not is_plugin_failure(exc):
                    raise
                if discard is not None:
                    with contextlib.suppress(Exception):
                        discard(impl.plugin_name)
                self.fail(impl.plugin_name, f"{hook_name}: bad registration: {_why(exc)}")
                self._report(impl.plugin_name, hook_name, exc)

    async def each(
        self,
        hook_name: str,
        *,
        startup: bool = False,
        propagate: tuple[type[Exception], ...] = (),
        **kwargs: Any,
    ) -> list[Any]:
        """Call every implementation, awaiting awaitables; errors are reported, not raised.

        ``startup`` (``shell_started``): a plugin whose hook raises keeps the reason in
        its info (``/plugins`` shows it); a requested one is also marked failed.
        ``propagate``: errors of these types are not reported; every implementation
        still runs, then the first such error is raised."""
        results = []
        deferred: Exception | None = None
        for impl in list(self._impls(hook_name)):
            self._trace(hook_name, impl.plugin_name)
            try:
                result = _invoke(impl, kwargs)
                if inspect.isawaitable(result):
                    result = await result
            except propagate as exc:
                deferred = deferred or exc
                continue
            except BaseException as exc:
                if not is_plugin_failure(exc):
                    raise
                if startup:
                    self._startup_failed(impl.plugin_name, hook_name, exc)
                self._report(impl.plugin_name, hook_name, exc)
                continue
            if result is not None:
                results.append(result)
        if deferred is not None:
            raise deferred
        return results

    async def first(
        self, hook_name: str, *, propagate: tuple[type[Exception], ...] = (), **kwargs: Any
    ) -> Any:
        """Call implementations until one returns non-None. :class:`AgentError` raised by
        an implementation propagates (that is how faults are injected), and so do errors
        of the ``propagate`` types (a user's mistake the caller reports); other errors
        are reported and the next implementation is tried."""
        for impl in self._impls(hook_name):
            self._trace(hook_name, impl.plugin_name)
            try:
                result = _invoke(impl, kwargs)
                if inspect.isawaitable(result):
                    result = await result
            except AgentError:
                raise
            except BaseException as exc:
                if isinstance(exc, propagate) or not is_plugin_failure(exc):
                    raise
                self._report(impl.plugin_name, hook_name, exc)
                continue
            if result is not None:
                return result
        return None

    def each_sync(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call every implementation from synchronous code (the toolbar); an async
        implementation is not awaited there, so it is reported and skipped."""
        results = []
        for impl in self._impls(hook_name):
            try:
                result = _invoke(impl, kwargs)
                if inspect.isawaitable(result):
                    if hasattr(result, "close"):
                        result.close()
                    raise TypeError(f"{hook_name} must be synchronous")
            except BaseException as exc:
                if not is_plugin_failure(exc):
                    raise
                self._report(impl.plugin_name, hook_name, exc)
                continue
            if result is not None:
                results.append(result)
        return results


def _argument_problems(hook_name: str, impl: Any) -> list[str]:
    """An implementation's arguments the hook does not pass: pluggy passes arguments by
    name, so ``register_commands(reg)`` could never be called (pluggy's own error says
    only "Plugin 'x' for hook 'y'")."""
    passed = list(inspect.signature(getattr(hookspecs, hook_name)).parameters)
    try:
        wanted = inspect.signature(impl).parameters.values()
    except (TypeError, ValueError):  # no signature to read: let pluggy judge it
        return []
    return [
        f"hook {hook_name} has no argument {p.name!r} (it passes: {', '.join(passed)})"
        for p in wanted
        if p.name not in passed
        and p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_ONLY)
    ]


def _invoke(impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> Any:
    # pluggy's HookImpl: pass only the arguments the implementation names
    return impl.function(*[kwargs[a] for a in impl.argnames])


def _why(exc: BaseException) -> str:
    # "register() takes 1 positional argument but 2 were given" is the plugin's mistake:
    # say what was wrong, not where in the host it was noticed
    if isinstance(exc, TypeError | ValueError):
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return summarize_exception(exc)


def _stager(staged: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> Callable[..., None]:
    def register(*args: Any, **kwargs: Any) -> None:
        staged.append((args, kwargs))

    return register


__all__ = [
    "CACHE_FILE",
    "ENTRY_POINT_GROUP",
    "PluginEntryPoint",
    "PluginHost",
    "PluginInfo",
    "discover_entry_points",
    "hookimpl",
    "is_plugin_failure",
]
