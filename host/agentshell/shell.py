"""The :class:`Shell`: one session, and the public API plugins use to reach it.

Plugins reach the running shell only through this object: its configuration, agents
and runner, telemetry, auth, output, data directory and command execution.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from . import configfiles
from ._version import __version__
from .commands import Command, CommandContext, CommandRegistry
from .errors import AgentshellError, CommandError, ConfigError
from .output import Output
from .plugins import PluginHost, summarize_exception
from .redact import register_secret
from .tally import SessionTally

Mode = Literal["repl", "run"]


class Shell:
    """A shell session. Create it, ``await start()``, ``await execute(line)``, ``await stop()``."""

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
        self.session_id = uuid.uuid4().hex[:12]
        self.started_at = time.time()
        self.home = configfiles.user_home(self.environ)
        self.data_dir = configfiles.data_dir(self.environ)
        self.raw_config: configfiles.RawConfig | None = None
        self.config_errors: list[str] = []
        self._config: Any = None
        self._plugin_sections: dict[str, Any] = {}
        self._plugin_config: dict[str, Any] = {}
        self._sink_factories: dict[str, tuple[Callable[..., Any], Any, str]] = {}
        self._backend_factories: dict[str, Callable[[Any], Any]] = {}
        self._backend_owner: dict[str, str] = {}
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
        self.runner: Any = None
        self.tally = SessionTally()  # commands, calls, tokens, cost: the exit summary
        self.auth: Any = None
        self.state: dict[str, Any] = {}  # a place for plugins to share session state
        self.current_task: asyncio.Task[Any] | None = None
        self.exit_requested = False
        self.started = False

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
            self.plugins.load_entry_points(
                disabled=set(reasons), only=only, cache_dir=self.data_dir, disabled_by=reasons
            )
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
        await self.plugins.collect(
            "register_auth_providers", self._add_auth_provider, self._drop_auth_providers
        )
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
        # providers are known only now (device login adds its own in shell_started)
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
        self.telemetry.close(self.config.telemetry.flush_timeout_s)

    # -- configuration -----------------------------------------------------------------

    @property
    def config(self) -> Any:
        """The validated :class:`agentshell.config.Config`."""
        if self._config is None:
            from .config import Config

            self._config = Config()
        return self._config

    @property
    def plugin_sections(self) -> list[str]:
        """The ``[plugins.<name>]`` sections plugins registered a model for."""
        return list(self._plugin_sections)

    def plugin_config(self, name: str) -> Any:
        """The validated ``[plugins.<name>]`` section of a plugin (its registered model)."""
        if name not in self._plugin_config:
            model = self._plugin_sections.get(name)
            if model is None:
                return self.config.plugins.section(name)
            self._plugin_config[name] = model()
        return self._plugin_config[name]

    async def _collect_config_models(self) -> None:
        self._plugin_sections = {}

        owners: dict[str, str] = {}

        def make(plugin: str) -> Callable[..., None]:
            def register(section: str, model: Any) -> None:
                from pydantic import BaseModel

                if not isinstance(section, str) or not section:
                    raise TypeError(f"register_config: section must be a name, got {section!r}")
                if not (isinstance(model, type) and issubclass(model, BaseModel)):
                    raise TypeError("register_config: model must be a pydantic model class")
                if section in self._plugin_sections:
                    self.output.warn(
                        f"plugin {plugin}: config section [plugins.{section}] is already registered"
                    )
                    return
                self._plugin_sections[section] = model
                owners[section] = plugin

            return register

        def discard(plugin: str) -> None:
            for section in [s for s, owner in owners.items() if owner == plugin]:
                self._plugin_sections.pop(section, None)

        await self.plugins.collect("register_config", make, discard)

    def _validate_config(self, strict: bool) -> None:
        """Keep every valid setting: only an invalid key falls back to its default (a
        budget cap next to a typo must not be dropped), and an agent with a bad key is
        left out whole. Every problem is reported, not just the first."""
        from .config import check_config, check_section

        assert self.raw_config is not None
        checked = check_config(self.raw_config)
        config = checked.value
        by_agent: dict[str, list[str]] = {}
        settings: list[str] = []
        for loc, line in checked.located:
            if len(loc) >= 2 and loc[0] == "agents":
                by_agent.setdefault(str(loc[1]), []).append(line)
            else:
                settings.append(line)
        sections: dict[str, Any] = {}
        for name, model in self._plugin_sections.items():
            section = check_section(self.raw_config, config, name, model)
            sections[name] = section.value
            settings += section.problems
        self.broken_agents = {}
        if settings:
            self._config_error(
                ConfigError("\n".join(settings)),
                strict,
                "only these settings fall back to their defaults, the rest is kept",
            )
        for name, lines in sorted(by_agent.items()):
            self.broken_agents[name] = lines[0]
            self._config_error(ConfigError("\n".join(lines)), strict, f"agent {name} is left out")
        self._config = config
        self._plugin_config = sections
        self._warn_literal_secrets()

    def _warn_literal_secrets(self) -> None:
        """A key written into a config file ends up in backups and commits: say so once."""
        from pydantic import BaseModel

        from .config import Secret

        found: list[tuple[str | int, ...]] = []

        def walk(value: Any, path: tuple[str | int, ...]) -> None:
            if isinstance(value, Secret):
                if value.literal is not None:
                    found.append(path)
            elif isinstance(value, BaseModel):
                items = {**value.__dict__, **(value.model_extra or {})}
                fields = type(value).model_fields
                for key, item in items.items():
                    alias = fields[key].alias if key in fields else None
                    walk(item, (*path, alias or key))
            elif isinstance(value, Mapping):
                for key, item in value.items():
                    walk(item, (*path, str(key)))

        walk(self._config, ())
        for name, section in self._plugin_config.items():
            walk(section, ("plugins", name))
        for path in found:
            if self.raw_config is None or self.raw_config.origin(path) is None:
                continue  # set by code, not by a file
            source = self.raw_config.origin(path)
            if source is not None and source.text is None:
                continue  # from the environment: not written down anywhere
            where = self.raw_config.locate(path)
            env = "_".join(str(p) for p in path if p not in ("agents", "plugins")).upper()
            self.output.warn_once(
                f"literal:{where}", f'literal secret in {where}: prefer {{ env = "{env}" }}'
            )

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

    def _check_plugin_names(self, only: set[str] | None, reasons: Mapping[str, str]) -> None:
        """Warn about names in the plugin lists that match no plugin (typos)."""
        import difflib

        known = [n for n in self.plugins.infos if " (" not in n]
        groups: dict[str, list[str]] = {"AGENTSHELL_LOAD_PLUGINS": sorted(only or ())}
        for name, why in reasons.items():
            where = why.removeprefix("disabled by ")
            where = "plugins.disable" if where.startswith("plugins.disable") else where
            groups.setdefault(where, []).append(name)
        for where, names in groups.items():
            unknown = sorted(n for n in names if n not in known)
            if not unknown:
                continue
            hints = []
            for name in unknown:
                guess = difflib.get_close_matches(name, known, n=1)
                hints.append(f"{name!r}" + (f" (did you mean {guess[0]!r}?)" if guess else ""))
            self.output.warn_once(
                f"plugin-names:{where}",
                f"{where} names no known plugin: {', '.join(hints)}",
            )

    def _warn_unknown_env(self, raw: configfiles.RawConfig) -> None:
        import difflib

        known = configfiles.known_env_names()
        for source in raw.sources:
            for name in source.unknown_env:
                guess = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
                hint = f" (did you mean {guess[0]}?)" if guess else ""
                self.output.warn_once(
                    f"env:{name}",
                    f"environment variable {name} is not a setting{hint}; config overrides "
                    "are named AGENTSHELL_<SECTION>__<KEY>",
                )

    def _warn_unknown_plugin_sections(self) -> None:
        import difflib

        known = set(self.plugins.infos) | set(self._plugin_sections)
        for name in self.config.plugins.model_extra or {}:
            if name in known:
                continue
            guess = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean [plugins.{guess[0]}]?)" if guess else ""
            where = self.raw_config.locate(("plugins", name)) if self.raw_config else ""
            self.output.warn_once(
                f"plugin-section:{name}",
                f"{where}: [plugins.{name}]: no plugin named {name!r}{hint}",
            )

    def _check_backends(self, strict: bool) -> None:
        """Each configured agent's backend must exist once backends are registered."""
        for name, cfg in self.config.agents.items():
            if not cfg.enabled or cfg.backend in self._backend_factories:
                continue
            where = self.raw_config.locate(("agents", name, "backend")) if self.raw_config else ""
            available = ", ".join(self.backend_names) or "none"
            exc = ConfigError(
                f"{where}: agents.{name}.backend: unknown backend {cfg.backend!r} "
                f"(available: {available})"
            )
            self.broken_agents[name] = str(exc)
            self._config_error(exc, strict, f"agent {name} is left out")

    def _check_agent_auth(self, strict: bool, *, lenient: bool = False) -> None:
        """Each agent's ``auth`` provider must exist once plugins have registered theirs.
        ``lenient`` (``/config reload``): warn only, as a provider that plugins add at
        start-up from the new settings (device login) is not registered yet."""
        for name, cfg in self.config.agents.items():
            kind = (cfg.auth or "").partition(":")[0]
            if not cfg.enabled or name in self.broken_agents or kind in ("", "env", "keyring"):
                continue
            if kind in self.auth.provider_names:
                continue
            where = self.raw_config.locate(("agents", name, "auth")) if self.raw_config else ""
            known = ", ".join(self.auth.provider_names)
            use = (
                f"use env:NAME, keyring:SERVICE/NAME or a provider: {known}"
                if known
                else "use env:NAME or keyring:SERVICE/NAME; no auth providers are registered"
            )
            message = f"{where}: agents.{name}.auth: unknown auth provider {kind!r} ({use})"
            if lenient:
                self.output.warn(message)
                continue
            self.broken_agents[name] = message
            self.agents.pop(name, None)
            self._config_error(ConfigError(message), strict, f"agent {name} is left out")

    async def reload_config(self) -> None:
        """Re-read every configuration source (``/config reload``). Lenient like an
        interactive start: every valid setting is applied, each problem is one line, an
        invalid key falls back to its default and an agent with a problem is left out;
        then a :class:`ConfigError` says how many problems there were."""
        try:
            raw = configfiles.load_raw(environ=self.environ, cwd=self.cwd, strict=True)
            if raw.problems:  # a directory where a file should be, a missing file
                raise ConfigError("\n".join(str(p) for p in raw.problems))
        except ConfigError as exc:
            # a file that cannot be read: applying the rest would drop all its settings
            lines = str(exc).splitlines()
            for line in lines:
                self.output.error(line)
            raise ConfigError(
                f"configuration not reloaded, the running one is unchanged; {fix_advice(lines)}"
            ) from None
        self.raw_config = raw
        self.config_errors = []
        self._shown = ([], [])
        try:
            await self._collect_config_models()
            self._validate_config(strict=False)
            self._check_backends(strict=False)
        finally:
            lines, consequences = self._print_config_errors(summary=False)
        self._build_agents()
        self._check_agent_auth(strict=True, lenient=True)
        self._build_runner()
        if lines:
            count = f"{len(lines)} problem" + ("" if len(lines) == 1 else "s")
            raise ConfigError(
                f"configuration reloaded with {count} (above): {'; '.join(consequences)}; "
                f"{fix_advice(lines)}"
            )

    # -- registrations -----------------------------------------------------------------

    def _add_command(self, plugin: str) -> Callable[..., None]:
        def register(command: Command) -> None:
            if not isinstance(command, Command):
                raise TypeError(f"register() takes a Command, got {type(command).__name__}")
            self.commands.add(command, plugin)

        return register

    def _drop_commands(self, plugin: str) -> None:
        self.commands.remove_plugin(plugin)

    def _drop_backends(self, plugin: str) -> None:
        for name in [n for n, owner in self._backend_owner.items() if owner == plugin]:
            self._backend_factories.pop(name, None)
            self._backend_owner.pop(name, None)

    def _drop_sinks(self, plugin: str) -> None:
        for name in [n for n, entry in self._sink_factories.items() if entry[2] == plugin]:
            self._sink_factories.pop(name, None)

    def _drop_auth_providers(self, plugin: str) -> None:
        for name in [n for n, owner in self._auth_owner.items() if owner == plugin]:
            self._auth_owner.pop(name, None)
            self.auth.remove_provider(name)

    def _add_backend(self, plugin: str) -> Callable[..., None]:
        def register(name: str, factory: Callable[[Any], Any]) -> None:
            _check_registration("backend", name, factory)
            if name in self._backend_factories:
                self.output.warn(
                    f"backend {name!r} from plugin {plugin} clashes with plugin "
                    f"{self._backend_owner[name]} (kept the latter)"
                )
                return
            self._backend_factories[name] = factory
            self._backend_owner[name] = plugin

        return register

    def _add_sink(self, plugin: str) -> Callable[..., None]:
        def register(name: str, factory: Callable[..., Any], config_model: Any = None) -> None:
            _check_registration("telemetry sink", name, factory)
            if config_model is not None and not hasattr(config_model, "model_validate"):
                raise TypeError("config_model must be a pydantic model class")
            if name in self._sink_factories:
                self.output.warn(
                    f"telemetry sink {name!r} from plugin {plugin} clashes with plugin "
                    f"{self._sink_factories[name][2]} (kept the latter)"
                )
                return
            self._sink_factories[name] = (factory, config_model, plugin)

        return register

    def _add_auth_provider(self, plugin: str) -> Callable[..., None]:
        def register(name: str, factory: Callable[[Any], Any]) -> None:
            _check_registration("auth provider", name, factory)
            if name in self.auth.provider_names:
                self.output.warn(
                    f"auth provider {name!r} from plugin {plugin} clashes; kept the first"
                )
                return
            self.auth.add_provider(name, factory)
            self._auth_owner[name] = plugin

        return register

    # -- agents ------------------------------------------------------------------------

    def define_default_agent(self, spec: Any) -> None:
        """Offer an agent that applies only if the user has not configured one of that name
        (the consensus plugin's recorded demo agents, for instance)."""
        self._default_agents[spec.name] = spec
        if spec.name in self.broken_agents:
            pass  # the user's agent of that name is broken: never swap in a stand-in
        elif spec.name not in self.config.agents:
            self.agents[spec.name] = spec
        else:  # the user's agent of that name replaces it, keeping its role if it sets none
            mine = self.agents.get(spec.name)
            if mine is not None and not mine.role and spec.role:
                self.agents[spec.name] = mine.model_copy(update={"role": spec.role})

    def _build_agents(self) -> None:
        from .agents import AgentSpec

        agents = {n: s for n, s in self._default_agents.items() if n not in self.broken_agents}
        for name, cfg in self.config.agents.items():
            if name in self.broken_agents:
                agents.pop(name, None)
            elif cfg.enabled:
                mine = AgentSpec.from_config(name, cfg)
                default = self._default_agents.get(name)
                if default is not None and not mine.role and default.role:
                    mine = mine.model_copy(update={"role": default.role})  # inherit the role
                agents[name] = mine
            else:
                agents.pop(name, None)
        self.agents = agents

    def _build_runner(self) -> None:
        from .agents import AgentRunner

        old = self.runner
        self.runner = AgentRunner(
            backends=self._backend_factories,
            hooks=self.plugins,
            telemetry=self.telemetry,
            retry=self.config.retry,
            shell=self,
            notify=self.output.info,
        )
        if old is not None:
            self.runner.adopt_backends(old)

    @property
    def backend_names(self) -> list[str]:
        return sorted(self._backend_factories)

    # -- telemetry ---------------------------------------------------------------------

    @property
    def sink_names(self) -> list[str]:
        return sorted(self._sink_factories)

    def _configured_sinks(self, strict: bool = False) -> list[str]:
        names = list(dict.fromkeys(self.config.telemetry.sinks))
        explicit = self.raw_config is not None and self.raw_config.origin(("telemetry", "sinks"))
        unknown = [name for name in names if name not in self._sink_factories]
        if explicit and unknown and self.raw_config is not None:
            where = self.raw_config.locate(("telemetry", "sinks"))
            available = ", ".join(self.sink_names) or "none"
            shown = ", ".join(repr(n) for n in unknown)
            self._config_error(
                ConfigError(
                    f"{where}: telemetry.sinks: unknown telemetry sink {shown} "
                    f"(available: {available})"
                ),
                strict,
                "telemetry goes to the other sinks",
            )
        # the default sinks are a convenience: if their plugin is disabled, do without
        return [name for name in names if name in self._sink_factories]

    def _check_sink_settings(self, names: list[str], strict: bool) -> None:
        """``run``: every sink's settings are checked up front, so their problems are
        listed with all the others (the REPL reports them as each sink starts)."""
        if not strict or self.raw_config is None:
            return
        from .config import check

        for name in names:
            model = self._sink_factories[name][1]
            if model is not None:
                section = self.config.telemetry.sink_section(name)
                for line in check(self.raw_config, model, section, ("telemetry", name)).problems:
                    self._pending.append(line)

    def make_sink(self, name: str, overrides: Mapping[str, Any] | None = None) -> Any:
        """Create the sink ``name`` from its ``[telemetry.<name>]`` settings (plus overrides)."""
        entry = self._sink_factories.get(name)
        if entry is None:
            known = ", ".join(self.sink_names) or "none"
            raise CommandError(f"unknown telemetry sink {name!r} (available: {known})")
        factory, model, _ = entry
        settings: Any = {**self.config.telemetry.sink_section(name), **dict(overrides or {})}
        if model is not None:
            from pydantic import ValidationError

            try:
                settings = model.model_validate(settings)
            except ValidationError as exc:
                first = exc.errors()[0]
                key = ".".join(str(p) for p in first["loc"])
                where = (
                    self.raw_config.locate(("telemetry", name, *first["loc"]))
                    if self.raw_config
                    else ""
                )
                raise ConfigError(f"{where}: telemetry.{name}.{key}: {first['msg']}") from None
        return factory(self, settings)

    def use_sinks(
        self,
        names: list[str],
        *,
        strict: bool = False,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[str]:
        """Make ``names`` the active sinks; return the names that could not be started."""
        sinks: list[tuple[str, Any]] = []
        failed: list[str] = []
        for name in names:
            try:
                sinks.append((name, self.make_sink(name, (overrides or {}).get(name))))
            except Exception as exc:
                if strict and isinstance(exc, AgentshellError):
                    raise
                failed.append(name)
                why: object = exc if isinstance(exc, AgentshellError) else summarize_exception(exc)
                if isinstance(exc, OSError) and exc.filename:  # a file problem: say which
                    why = f"cannot write {exc.filename}: {exc.strerror or exc}"
                self.output.error(f"telemetry sink {name}: {why}")
        self.telemetry.replace_sinks(sinks)
        return failed

    def _sink_error(self, name: str, exc: BaseException) -> None:
        self.output.warn(
            f"telemetry sink {name} failed: {type(exc).__name__}: {exc} "
            "(reported once; /telemetry shows the count)"
        )

    def _plugin_error(self, plugin: str, hook: str | None, exc: BaseException) -> None:
        info = self.plugins.infos.get(plugin)
        if plugin in self.plugins.requested and info is not None and info.state == "failed":
            # asked for by name (-p) and now unusable: an error, in every mode
            self.output.error(f"plugin {plugin}: {info.reason}")
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

    # -- commands ----------------------------------------------------------------------

    async def execute(self, line: str) -> int:
        """Run one command line; return its exit status (0 is success). Errors are
        printed as one line; nothing raises out of here except cancellation."""
        line = line.strip()
        if not line or line.startswith("#"):
            return 0
        try:
            command, args = self.commands.resolve(line)
            result = command.handler(CommandContext(self, args, line, command))
            if inspect.isawaitable(result):
                result = await result
            return int(result or 0)
        except asyncio.CancelledError:
            raise
        except AgentshellError as exc:
            self.output.error(str(exc))
            return 1
        except OSError as exc:
            # a file or network problem is the user's to fix: say what, not where in Python
            what = exc.strerror or str(exc) or type(exc).__name__
            target = f": {exc.filename}" if exc.filename else ""
            self.output.error(f"{line.split()[0]}: {what}{target}")
            if self.environ.get("AGENTSHELL_DEBUG"):
                import traceback

                traceback.print_exc()
            return 1
        except Exception as exc:
            self.output.error(
                f"{line.split()[0]} failed: {summarize_exception(exc)} "
                "(a bug: run with AGENTSHELL_DEBUG=1 for the traceback)"
            )
            if self.environ.get("AGENTSHELL_DEBUG"):
                import traceback

                traceback.print_exc()
            return 1

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
            more = f" (and {len(failed) - 1} more; see /plugins)" if len(failed) > 1 else ""
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
        return "; ".join(parts) + " — see /plugins" if parts else None

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


def _check_registration(kind: str, name: object, factory: object) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"a {kind} name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"the {kind} factory for {name!r} is not callable")


def _few(names: list[str], shown: int = 4) -> str:
    """``a, b, c, d and 3 more``: a list that stays short enough for one line."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(sorted(names)[:shown]) + more


__all__ = ["Shell"]


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
