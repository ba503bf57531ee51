"""The state of a :class:`agentshell.shell.Shell` session, and how problems with its
configuration are reported.

Every attribute the shell's parts share is set here, in one ``__init__``, so what a
session holds can be read in one place. The parts (:mod:`.shell_config`,
:mod:`.shell_checks`, :mod:`.shell_registry`, :mod:`.shell_sinks`) build on this class.

Problems are reported in two ways: the REPL is lenient (each problem is one error line,
printed together at the end of start-up or a reload, then one line saying what happens
now and how to fix it); ``agentshell run`` is strict (every problem is collected, then
raised together as one :class:`ConfigError` before anything runs).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from . import configfiles
from .commands import CommandRegistry
from .errors import ConfigError
from .output import Output
from .plugins import PluginHost, summarize_exception
from .tally import SessionTally

Mode = Literal["repl", "run"]


class ShellState:
    """What a session holds, and the reporting of configuration and plugin problems."""

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        mode: Mode = "repl",
        output: Output | None = None,
        plugin_host: PluginHost | None = None,
        load_entry_points: bool = True,
    ) -> None:
        self.environ = os.environ if environ is None else environ
        self.cwd = cwd or Path.cwd()
        self.mode: Mode = mode
        self.output = output or Output()
        self.plugins = plugin_host or PluginHost()
        self.plugins.set_error_reporter(self._plugin_error)
        self._load_entry_points = load_entry_points
        self.commands = CommandRegistry()
        # 12 random hex digits, as uuid4().hex[:12] gave, without importing uuid (and
        # platform) on the way to the first prompt
        self.session_id = os.urandom(6).hex()
        self.started_at = time.time()
        self.home = configfiles.user_home(self.environ)
        self.data_dir = configfiles.data_dir(self.environ)
        self.raw_config: configfiles.RawConfig | None = None
        self.config_errors: list[str] = []
        self._config: Any = None
        self._plugin_sections: dict[str, Any] = {}
        self._section_owners: dict[str, str] = {}  # [plugins.<section>] -> its plugin
        self._plugin_config: dict[str, Any] = {}
        self._sink_factories: dict[str, tuple[Callable[..., Any], Any, str]] = {}
        self._backend_factories: dict[str, Callable[[Any], Any]] = {}
        self._backend_owner: dict[str, str] = {}
        self._backend_checks: dict[str, Callable[[Any], None]] = {}
        self._auth_owner: dict[str, str] = {}
        # agents left out for a configuration problem: name -> the error line
        self.broken_agents: dict[str, str] = {}
        self._pending: list[str] = []  # run mode: every config problem, raised together
        # while starting or reloading: the problems shown, printed together at the end so
        # the "what happens now" line comes after every problem line, not between them
        self._shown: tuple[list[str], list[str]] | None = None
        self.agents: dict[str, Any] = {}
        self._default_agents: dict[str, Any] = {}
        self.telemetry: Any = None
        # set by `agentshell run` and for piped commands: a telemetry sink not listed
        # in [telemetry] optional that lost events is then an error at stop(), and
        # telemetry_lost is True (the command line exits with status 4)
        self.fail_on_telemetry_loss = False
        self.telemetry_lost = False
        self.runner: Any = None
        self.tally = SessionTally()  # commands, calls, tokens, cost: the exit summary
        self.auth: Any = None
        self.state: dict[str, Any] = {}  # a place for plugins to share session state
        self.current_task: asyncio.Task[Any] | None = None
        self.exit_requested = False
        self.started = False
        # what the command line asked of the session, for plugins to honour:
        # ``--continue`` (pick up the last conversation: a chat plugin does) and
        # ``agentshell run --json`` (print results as JSON where a result has that form)
        self.continue_last = False
        self.json_output = False

    @property
    def config(self) -> Any:
        """The validated :class:`agentshell.config.Config`."""
        if self._config is None:
            from .config import Config

            self._config = Config()
        return self._config

    @property
    def backend_names(self) -> list[str]:
        return sorted(self._backend_factories)

    @property
    def sink_names(self) -> list[str]:
        return sorted(self._sink_factories)

    def _config_error(
        self,
        exc: ConfigError,
        strict: bool,
        consequence: str = "using defaults for the settings above",
    ) -> None:
        if strict:
            self._pending.extend(str(exc).splitlines())  # raised together by _raise_pending
            return
        lines = str(exc).splitlines()
        self.config_errors.extend(lines)  # /config: one "# problem:" each
        if self._shown is not None:  # starting or reloading: printed together at the end
            self._shown[0].extend(lines)
            if consequence not in self._shown[1]:
                self._shown[1].append(consequence)
            return
        # the same "error: <file>:<line>: <key>: ..." lines as `agentshell run` prints
        for line in lines:
            self.output.error(line)
        self.output.warn(f"{consequence}; {fix_advice(lines)}")

    def _print_config_errors(self, *, summary: bool = True) -> tuple[list[str], list[str]]:
        """Print the problems collected while starting or reloading, then (``summary``)
        one line saying what happens now and how to fix them; return what was shown."""
        shown, self._shown = self._shown or ([], []), None
        lines, consequences = shown
        for line in lines:
            self.output.error(line)
        if lines and summary:
            self.output.warn(f"{'; '.join(consequences)}; {fix_advice(lines)}")
        return shown

    def _raise_pending(self) -> None:
        if self._pending:
            lines, self._pending = list(dict.fromkeys(self._pending)), []
            raise ConfigError("\n".join(lines))

    def _unavailable_plugin(self, name: str) -> str | None:
        """``plugin 'openai', which is disabled (AGENTSHELL_DISABLE_PLUGINS)``: when a
        backend or sink ``name`` is missing and the plugin of that name (built-in
        backends and sinks are named after their plugin) is disabled or failed, that is
        the reason to give, not "unknown". ``None`` when there is no such plugin."""
        info = self.plugins.infos.get(name)
        if info is None or info.state == "loaded":
            return None
        if info.state == "disabled":
            why = (info.reason or "").removeprefix("disabled by ")
            return f"plugin {name!r}, which is disabled ({why})"
        return f"plugin {name!r}, which failed: {info.reason}"

    def _plugin_error(self, plugin: str, hook: str | None, exc: BaseException) -> None:
        info = self.plugins.infos.get(plugin)
        if plugin in self.plugins.requested and info is not None and info.state == "failed":
            # asked for by name (-p) and now unusable: an error, in every mode
            self.output.error(f"plugin {plugin}: {info.reason}")
        elif hook is None and info is not None and info.state == "failed":
            # failed outside a hook (its config model raised): one line, with the reason
            self.output.warn_once(f"{plugin}:failed", f"plugin {plugin} failed: {info.reason}")
        else:
            key = f"{plugin}:{hook}"
            self.output.warn_once(
                key, f"plugin {plugin}: hook {hook} raised {summarize_exception(exc)}"
            )
        if self.telemetry is not None:
            from .telemetry import PluginErrorEvent

            self.telemetry.emit(
                PluginErrorEvent(plugin=plugin, hook=hook, error=summarize_exception(exc))
            )


_ENV_LINE = re.compile(r"^environment variables? ([A-Z0-9_]+(?:, [A-Z0-9_]+)*):")


def fix_advice(lines: list[str]) -> str:
    """How to fix these problems: editing a file cannot fix a bad environment variable,
    so name the ``/set-env NAME=`` that unsets it."""
    names: list[str] = []
    in_files = False
    for line in lines:
        match = _ENV_LINE.match(line)
        if match:
            names += [n for n in match.group(1).split(", ") if n not in names]
        else:
            in_files = True
    advice = ["fix the file"] if in_files else []
    advice += [f"unset {name} with /set-env {name}=" for name in names]
    return f"{' and '.join(advice)}, then run /config reload"


__all__ = ["Mode", "ShellState", "fix_advice"]
