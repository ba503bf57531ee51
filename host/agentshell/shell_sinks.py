"""The shell's telemetry sinks: which are configured, creating one from its
``[telemetry.<name>]`` settings, and swapping the active set (``/telemetry``).

A sink that cannot start is one error line and the others go on; in ``agentshell
run`` a sink's bad settings are reported up front with every other problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import configfiles
from .errors import AgentshellError, CommandError, ConfigError
from .plugins import is_plugin_failure, summarize_exception
from .shell_registry import ShellRegistry


class ShellSinks(ShellRegistry):
    """The configured telemetry sinks and the active ones."""

    def _configured_sinks(self, strict: bool = False) -> list[str]:
        names = list(dict.fromkeys(self.config.telemetry.sinks))
        explicit = self.raw_config is not None and self.raw_config.origin(("telemetry", "sinks"))
        unknown = [name for name in names if name not in self._sink_factories]
        if explicit and unknown and self.raw_config is not None:
            where = self.raw_config.locate(("telemetry", "sinks"))
            available = ", ".join(self.sink_names) or "none"
            # a sink of a disabled (or failed) plugin: say that, not "unknown"
            owners = {name: self._unavailable_plugin(name) for name in unknown}
            lines = [
                f"{where}: telemetry.sinks: telemetry sink {name!r} comes from {owner}"
                for name, owner in owners.items()
                if owner
            ]
            if any(not owner for owner in owners.values()):
                shown = ", ".join(
                    repr(configfiles.clip(n)) for n, owner in owners.items() if not owner
                )
                lines.append(
                    f"{where}: telemetry.sinks: unknown telemetry sink {shown} "
                    f"(available: {available})"
                )
            known = [name for name in names if name in self._sink_factories]
            then = (
                f"telemetry goes to the other sinks ({', '.join(known)})"
                if known
                else "no telemetry sink is active: events are counted, not kept"
            )
            self._config_error(ConfigError("\n".join(lines)), strict, then)
        self._check_sink_tables()
        self._check_optional_sinks()
        # the default sinks are a convenience: if their plugin is disabled, do without
        return [name for name in names if name in self._sink_factories]

    def _check_sink_tables(self) -> None:
        """``[telemetry.<name>]`` for a sink no plugin registered: a typo, or the settings
        of a sink whose plugin is off; a warning, as for ``[plugins.<name>]``."""
        import difflib

        if self.raw_config is None:
            return
        for name in self.config.telemetry.model_extra or {}:
            if name in self._sink_factories:
                continue
            where = self.raw_config.locate(("telemetry", name))
            guess = difflib.get_close_matches(name, self.sink_names, n=1)
            hint = f"did you mean [telemetry.{guess[0]}]? " if guess else ""
            available = ", ".join(self.sink_names) or "none"
            self.output.warn_once(
                f"sink-section:{name}",
                f"{where}: [telemetry.{configfiles.clip(name)}]: no telemetry sink named "
                f"{configfiles.clip(name)!r} ({hint}available: {available})",
            )

    def _check_optional_sinks(self) -> None:
        """``[telemetry] optional`` naming no sink any plugin provides: a typo would
        silently make a real sink's losses fail ``run``; a warning with a guess."""
        import difflib

        if self.raw_config is None:
            return
        for name in dict.fromkeys(self.config.telemetry.optional):
            if name in self._sink_factories or self._unavailable_plugin(name):
                continue
            where = self.raw_config.locate(("telemetry", "optional"))
            guess = difflib.get_close_matches(name, self.sink_names, n=1)
            hint = f"did you mean {guess[0]!r}? " if guess else ""
            available = ", ".join(self.sink_names) or "none"
            self.output.warn_once(
                f"optional-sink:{name}",
                f"{where}: telemetry.optional: no telemetry sink named "
                f"{configfiles.clip(name)!r} ({hint}available: {available})",
            )

    def report_telemetry_losses(self, *, fail: bool) -> bool:
        """After the session closed: one line per sink that lost events for good (which
        sink, where it wrote, how much, the last error). With ``fail`` (``agentshell
        run``, piped commands) a loss of a sink not listed in ``[telemetry] optional``
        is an error and the result is True (the caller exits with its own status);
        otherwise every loss is a warning (the REPL goes on regardless)."""
        from .cli import EXIT_TELEMETRY_LOST

        optional = set(self.config.telemetry.optional)
        failed = False
        for loss in self.telemetry.losses():
            if fail and loss.name not in optional:
                failed = True
                accept = f'[telemetry] optional = ["{loss.name}"] accepts this'
                self.output.error(f"{loss} (exit status {EXIT_TELEMETRY_LOST}; {accept})")
            else:
                self.output.warn(str(loss))
        return failed

    def _check_sink_settings(self, names: list[str], strict: bool) -> None:
        """``run``: every sink's settings are checked up front, so their problems are
        listed with all the others (the REPL reports them as each sink starts)."""
        if not strict or self.raw_config is None:
            return
        from .config_check import check

        for name in names:
            model = self._sink_factories[name][1]
            if model is not None:
                section = self.config.telemetry.sink_section(name)
                try:
                    checked = check(self.raw_config, model, section, ("telemetry", name))
                except BaseException as exc:
                    if not is_plugin_failure(exc):
                        raise
                    continue  # the sink's own model is broken: use_sinks reports it
                self._pending.extend(checked.problems)

    def make_sink(self, name: str, overrides: Mapping[str, Any] | None = None) -> Any:
        """Create the sink ``name`` from its ``[telemetry.<name>]`` settings (plus overrides)."""
        entry = self._sink_factories.get(name)
        if entry is None:
            owner = self._unavailable_plugin(name)
            if owner:
                raise CommandError(f"telemetry sink {name!r} comes from {owner}")
            known = ", ".join(self.sink_names) or "none"
            raise CommandError(f"unknown telemetry sink {name!r} (available: {known})")
        factory, model, _ = entry
        settings: Any = {**self.config.telemetry.sink_section(name), **dict(overrides or {})}
        if model is not None:
            # the same strict check as every other section: a typo (``pth``) is an
            # unknown key even if the sink's model does not forbid extra keys itself
            from .config_check import check

            raw = self.raw_config or configfiles.RawConfig(data={}, sources=[])
            # --set values are typed text ("3"), converted by the model as before
            checked = check(raw, model, settings, ("telemetry", name), strict=not overrides)
            if checked.problems:
                raise ConfigError("\n".join(checked.problems))
            settings = checked.value
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
        reasons: dict[str, str] = {}
        for name in names:
            try:
                sinks.append((name, self.make_sink(name, (overrides or {}).get(name))))
            except BaseException as exc:  # a sink's factory is plugin code: isolated
                if not is_plugin_failure(exc) or (strict and isinstance(exc, AgentshellError)):
                    raise
                failed.append(name)
                why: object = exc if isinstance(exc, AgentshellError) else summarize_exception(exc)
                if isinstance(exc, OSError) and exc.filename:  # a file problem: say which
                    why = f"cannot write {exc.filename}: {exc.strerror or exc}"
                self.output.error(f"telemetry sink {name}: {why}")
                reasons[name] = str(why)
        # the events those sinks miss are counted: `run` fails on them at the end
        self.telemetry.replace_sinks(sinks, unavailable=reasons)
        return failed

    def _sink_error(self, name: str, exc: BaseException) -> None:
        from .telemetry.worker import describe_error

        self.output.warn(
            f"telemetry sink {name} failed: {describe_error(exc)} "
            "(reported once; /telemetry shows the count)"
        )


__all__ = ["ShellSinks"]
