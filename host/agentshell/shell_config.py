"""The shell's configuration: the plugins' config sections, validating every setting,
and reloading (``/config reload``).

Lenient in the REPL (every valid setting is kept, an invalid key falls back to its
default, an agent with a problem is left out), strict in ``agentshell run`` (see
:mod:`.shell_state` for how problems are reported).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import configfiles
from .errors import ConfigError
from .plugins import is_plugin_failure, summarize_exception
from .shell_checks import ShellChecks
from .shell_registry import ShellRegistry
from .shell_state import fix_advice


class ShellConfig(ShellChecks, ShellRegistry):
    """Validating and reloading the configuration."""

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
        self._section_owners = owners = {}

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
        from .config_check import check_config, check_section

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
        for name, model in list(self._plugin_sections.items()):
            try:
                section = check_section(self.raw_config, config, name, model)
            except BaseException as exc:
                # pydantic turns only ValueError and AssertionError into validation
                # errors: anything else is the plugin's model failing, not a bad setting
                owner = self._section_owners.get(name)
                if owner is None or not is_plugin_failure(exc):
                    raise
                why = f"its [plugins.{name}] model raised {summarize_exception(exc)}"
                self._plugin_code_failed(owner, why, exc)
                continue
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
        # providers may come from configuration (device login: one per configured name)
        await self._collect_auth_providers()
        self._build_agents()
        self._check_agent_auth(strict=True, lenient=True)
        self._build_runner()
        if lines:
            count = f"{len(lines)} problem" + ("" if len(lines) == 1 else "s")
            raise ConfigError(
                f"configuration reloaded with {count} (above): {'; '.join(consequences)}; "
                f"{fix_advice(lines)}"
            )


__all__ = ["ShellConfig"]
