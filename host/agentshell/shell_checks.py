"""Settings that are valid on their own but wrong against what is installed, and
likely mistakes: an agent's backend or auth provider that no plugin registered, a
plugin list or ``[plugins.<name>]`` section naming no plugin, an environment variable
that is no setting, a key written literally into a config file. Each is one line
naming where it comes from and, when there is one, the likely intended name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import configfiles
from .errors import AgentshellError, ConfigError
from .plugins import summarize_exception
from .shell_state import ShellState


class ShellChecks(ShellState):
    """Checks of the settings against the installed plugins, and typo warnings."""

    def _check_backends(self, strict: bool) -> None:
        """Each configured agent's backend must exist once backends are registered."""
        for name, cfg in self.config.agents.items():
            if not cfg.enabled or name in self.broken_agents:
                continue
            if cfg.backend in self._backend_factories:
                self._check_agent_options(name, cfg, strict)
                continue
            where = self.raw_config.locate(("agents", name, "backend")) if self.raw_config else ""
            available = ", ".join(self.backend_names) or "none"
            owner = self._unavailable_plugin(cfg.backend)
            problem = (
                f"backend {cfg.backend!r} comes from {owner}"
                if owner
                else f"unknown backend {cfg.backend!r} (available: {available})"
            )
            exc = ConfigError(f"{where}: agents.{name}.backend: {problem}")
            self.broken_agents[name] = str(exc)
            self._config_error(exc, strict, f"agent {name} is left out")

    def _check_agent_options(self, name: str, cfg: Any, strict: bool) -> None:
        """The backend's own check of an agent's options (``register(..., check=)``)."""
        check = self._backend_checks.get(cfg.backend)
        if check is None:
            return
        from .agents import AgentSpec

        try:
            check(AgentSpec.from_config(name, cfg))
        except Exception as exc:  # ValueError/AgentshellError by contract; anything else too
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if not isinstance(exc, ValueError | AgentshellError):
                why = f"the {cfg.backend} backend's check failed: {summarize_exception(exc)}"
            why = why.removeprefix(f"{name}: ")  # the line names the agent already
            where = self.raw_config.locate(("agents", name)) if self.raw_config else ""
            problem = ConfigError(f"{where}: agents.{name}: {configfiles.clip(why, 200)}")
            self.broken_agents[name] = str(problem)
            self._config_error(problem, strict, f"agent {name} is left out")

    def _check_agent_auth(self, strict: bool, *, lenient: bool = False) -> None:
        """Each agent's ``auth`` provider must exist once plugins have registered theirs.
        ``lenient`` (``/config reload``): warn only and keep the agent, as a reload
        never takes away an agent that was working."""
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

        known = set(self.plugins.infos) | set(self._plugin_sections) | set(self._section_owners)
        for name in self.config.plugins.model_extra or {}:
            if name in known:
                continue
            guess = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean [plugins.{guess[0]}]?)" if guess else ""
            where = self.raw_config.locate(("plugins", name)) if self.raw_config else ""
            shown = configfiles.clip(name)
            self.output.warn_once(
                f"plugin-section:{name}",
                f"{where}: [plugins.{shown}]: no plugin named {shown!r}{hint}",
            )

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


__all__ = ["ShellChecks"]
