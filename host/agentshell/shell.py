"""The :class:`Shell`: one session, and the public API plugins use to reach it.

Plugins reach the running shell only through this object: its configuration, agents
and runner, telemetry, auth, output, data directory and command execution.

This module is the session's life cycle (start, stop) and running command lines. The
rest of the object comes from one module per job, so each reads on its own:
:mod:`.shell_state` (what a session holds; how configuration problems are reported),
:mod:`.shell_config` (validating and reloading the configuration),
:mod:`.shell_checks` (settings checked against what is installed; typo warnings),
:mod:`.shell_registry` (what plugins register, and the agents built from it) and
:mod:`.shell_sinks` (telemetry sinks).
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import os
import time
from collections.abc import Mapping
from typing import Any

from . import configfiles
from ._version import __version__
from .commands import NO_CHAT, CommandContext, bare_word_hint
from .errors import AgentshellError, CommandError
from .plugins import summarize_exception
from .redact import register_secret
from .shell_config import ShellConfig
from .shell_sinks import ShellSinks
from .shell_state import Mode, fix_advice


class Shell(ShellConfig, ShellSinks):
    """A shell session. Create it, ``await start()``, ``await execute(line)``, ``await stop()``."""

    # -- start and stop ----------------------------------------------------------------

    async def start(self) -> None:
        self._shown = ([], [])
        try:
            await self._start()
        finally:
            self._print_config_errors()

    async def _start(self) -> None:
        from .auth import AuthRegistry, TokenStore
        from .telemetry import SessionStarted, TelemetryBus

        strict = self.mode == "run"
        self._pending = []
        raw = configfiles.load_raw(environ=self.environ, cwd=self.cwd)
        self.raw_config = raw
        for problem in raw.problems:
            self._config_error(problem, strict)
        if self._load_entry_points:
            load = self.environ.get("AGENTSHELL_LOAD_PLUGINS")
            only = None if load is None else {x.strip() for x in load.split(",") if x.strip()}
            reasons = configfiles.disabled_reasons(raw, self.environ)
            for name, info in list(self.plugins.infos.items()):  # registered before start (-p)
                if name in reasons and info.state == "loaded":
                    self.plugins.disable(name, reasons[name])
            before = set(self.plugins.infos)
            self.plugins.load_entry_points(
                disabled=set(reasons), only=only, cache_dir=self.data_dir, disabled_by=reasons
            )
            # a plugin that failed to import or register would otherwise go unnoticed
            # until its command is missing: one line each, now (-p ones are reported
            # by the command line, as errors)
            for name, info in self.plugins.infos.items():
                if name not in before and info.state == "failed":
                    self.output.warn(f"plugin {name} failed: {info.reason}")
            self._check_plugin_names(only, reasons)
        self._warn_unknown_env(raw)
        await self._collect_config_models()
        self._validate_config(strict)
        if self._load_entry_points:
            self._warn_unknown_plugin_sections()
        self.commands.unknown_hint = self._unknown_command_hint
        self.commands.unknown_note = self._unknown_command_note
        await self.plugins.collect("register_commands", self._add_command, self._drop_commands)
        for clash in self.commands.clashes:
            self.output.warn(clash)
        await self.plugins.collect(
            "register_agent_backends", self._add_backend, self._drop_backends
        )
        self._check_backends(strict)
        await self.plugins.collect("register_telemetry_sinks", self._add_sink, self._drop_sinks)
        self.auth = AuthRegistry(TokenStore(self.data_dir, warn=self.output.warn))
        self.auth.shell = self
        await self._collect_auth_providers()
        try:
            self.plugins.check_pending()
        except Exception as exc:  # _register already rejects unknown hooks; belt and braces
            self.output.warn(f"plugins: {exc}")
        sinks = self._configured_sinks(strict)
        self._check_sink_settings(sinks, strict)
        self._raise_pending()  # `run`: every problem at once, before anything runs
        telemetry = self.config.telemetry
        self.telemetry = TelemetryBus(
            session_id=self.session_id,
            queue_size=telemetry.queue_size,
            capture_content=telemetry.capture_content,
            on_sink_error=self._sink_error,
            exit_timeout=telemetry.flush_timeout_s,
            on_warning=self.output.warn,
        )
        self.use_sinks(sinks, strict=strict)
        self._build_agents()
        self._build_runner()
        self.telemetry.emit(
            SessionStarted(version=__version__, plugins=self.plugins.loaded, mode=self.mode)
        )
        try:
            await self.plugins.each("shell_started", startup=True, shell=self)
        finally:
            # also when cancelled in a slow hook (SIGTERM while plugins start): the
            # session is open, so stop() must still close it and flush telemetry
            self.started = True
        for name in self.plugins.requested:  # a -p plugin failed in shell_started:
            if self.plugins.infos.get(name) and self.plugins.infos[name].state == "failed":
                self._drop_commands(name)  # its commands go with it, as for a collect hook
        # after shell_started: a plugin may still add a provider there
        self._check_agent_auth(strict)
        if self._pending:
            await self.stop()
            self._raise_pending()

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        from .telemetry import SessionStopped

        await self.plugins.each("shell_stopping", shell=self)
        if self.runner is not None:
            await self.runner.aclose()
        self.telemetry.emit(
            SessionStopped(
                duration_s=time.time() - self.started_at, dropped_events=self.telemetry.dropped
            )
        )
        # what any sink lost is reported here, one line each, not by the bus: `run`
        # makes it an error (and its exit status) unless the sink is optional
        self.telemetry.close(self.config.telemetry.flush_timeout_s, report=False)
        self.telemetry_lost = self.report_telemetry_losses(fail=self.fail_on_telemetry_loss)

    # -- commands ----------------------------------------------------------------------

    async def execute(self, line: str) -> int:
        """Run one command line; return its exit status (0 is success). Errors are
        printed as one line; nothing raises out of here except cancellation."""
        line = line.strip()
        if not line or line.startswith("#"):
            return 0
        try:
            try:
                if not line.startswith("/"):
                    return await self._text(line)
                command, args = self.commands.resolve(line)
                result = command.handler(CommandContext(self, args, line, command))
                if inspect.isawaitable(result):
                    result = await result
                return int(result or 0)
            except BaseExceptionGroup as group:  # a TaskGroup's: report its first real error
                raise _first_error(group) from None
        except asyncio.CancelledError:
            raise
        except AgentshellError as exc:
            self.output.error(str(exc))
            return 1
        except Exception as exc:
            return self._failed(line, exc)

    def _failed(self, line: str, exc: Exception) -> int:
        """One error line for an exception no handler turned into a message."""
        # a message is no command name: its errors are the message's
        what = line.split()[0] if line.startswith("/") else "message"
        if isinstance(exc, OSError):
            # a file or network problem is the user's to fix: say what, not where in Python
            why = exc.strerror or str(exc) or type(exc).__name__
            if exc.filename:
                self.output.error(
                    f"{what}: cannot write {exc.filename}: {why}"
                    if exc.errno in _WRITE_ERRNOS
                    else f"{what}: {why}: {exc.filename}"
                )
            else:
                self.output.error(f"{what}: {why}")
        else:
            self.output.error(
                f"{what} failed: {summarize_exception(exc)} "
                "(a bug: run with AGENTSHELL_DEBUG=1 for the traceback)"
            )
        if self.environ.get("AGENTSHELL_DEBUG"):
            import traceback

            traceback.print_exception(exc)
        return 1

    async def _text(self, text: str) -> int:
        """A line that is not a command: the ``handle_text`` hook's (a chat plugin's),
        except the bare words that mean a command (``exit``, ``help``)."""
        hint = bare_word_hint(text)
        if hint is not None:
            raise CommandError(hint)
        status = await self.plugins.first(
            "handle_text", propagate=(AgentshellError,), shell=self, text=text
        )
        if status is None:
            raise CommandError(NO_CHAT)
        return int(status)

    def _unknown_command_hint(self, name: str) -> str | None:
        """``/faults`` when the faults plugin is disabled or failed: say so instead of
        guessing. A name that matches no plugin, is no typo of a command, while some
        plugin failed, most likely belonged to that plugin: name it too."""
        failed: list[str] = []
        for info in self.plugins.infos.values():
            if info.state == "loaded":
                continue
            why = (
                f"plugin {info.name!r} is disabled "
                f"({(info.reason or '').removeprefix('disabled by ')})"
                if info.state == "disabled"
                else f"plugin {info.name!r} failed: {info.reason}"
            )
            short = info.name.rpartition(".")[2]  # a -p module: tests.helpers.sleepy
            if name in (info.name, short) or name.startswith((info.name, short)):
                return why
            if info.state == "failed":
                failed.append(why)
        if failed and not self.commands.suggest(name):
            where = "/plugins" if self.commands.get("plugins") else "agentshell plugins"
            more = f" (and {len(failed) - 1} more; see {where})" if len(failed) > 1 else ""
            return failed[0] + more
        return None

    def _unknown_command_note(self) -> str | None:
        """``2 plugins are disabled: consensus, metrics — see /plugins`` after an unknown
        command: the command may belong to one of them. One line, a few names at most."""
        disabled = [i.name for i in self.plugins.infos.values() if i.state == "disabled"]
        failed = [i.name for i in self.plugins.infos.values() if i.state == "failed"]
        parts = []
        if disabled:
            verb = "plugin is" if len(disabled) == 1 else "plugins are"
            parts.append(f"{len(disabled)} {verb} disabled: {_few(disabled)}")
        if failed:
            noun = "" if parts else (" plugin" if len(failed) == 1 else " plugins")
            parts.append(f"{len(failed)}{noun} failed to load: {_few(failed)}")
        if not parts:
            return None
        # /plugins is itself a plugin's (builtins): when it is gone, point at the CLI
        where = "/plugins" if self.commands.get("plugins") else "agentshell plugins"
        return "; ".join(parts) + f" — see {where}"

    async def work_completed(self, context: Mapping[str, Any]) -> None:
        """Tell every plugin that a unit of work labelled ``context`` (the labels its
        agent calls carried) has finished: the ``work_completed`` hook. A plugin whose
        hook raises is reported, never the caller's problem."""
        await self.plugins.each("work_completed", shell=self, context=dict(context))

    def set_env(self, name: str, value: str) -> None:
        """Set an environment variable for this session (``/set-env``)."""
        if (
            not name
            or not (name[0].isalpha() or name[0] == "_")
            or not all(c.isalnum() or c == "_" for c in name)
        ):
            raise CommandError(f"invalid variable name {name!r}")
        if value == "":
            # "NAME=" unsets; losing PATH or HOME would break every command that follows
            if name in {"PATH", "HOME"}:
                raise CommandError(f"refusing to unset {name}: the shell and its tools need it")
            os.environ.pop(name, None)
            return
        register_secret(value)
        os.environ[name] = value

    def status_text(self) -> str:
        segments: list[str] = []
        for result in self.plugins.each_sync("status_segments", shell=self):
            if isinstance(result, str):
                segments.append(result)
            elif isinstance(result, list | tuple):
                segments.extend(str(s) for s in result if s)
        return " | ".join(s for s in segments if s)

    def request_exit(self) -> None:
        self.exit_requested = True


#: errors that only a write can cause: the message says "cannot write <file>"
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error a TaskGroup's failure stands for: its first error that is not a
    cancellation (a sibling cancelled because of it), else the group itself."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            exc = _first_error(exc)
        if not isinstance(exc, asyncio.CancelledError | BaseExceptionGroup):
            return exc
    return group


def _few(names: list[str], shown: int = 4) -> str:
    """``a, b, c, d and 3 more``: a list that stays short enough for one line."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(sorted(names)[:shown]) + more


__all__ = ["Mode", "Shell", "fix_advice"]
