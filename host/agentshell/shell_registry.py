"""What plugins register with the shell (commands, agent backends, telemetry sinks,
auth providers) and what the shell builds from it: the agents and their runner.

Each ``register`` callback is made per plugin, so the shell knows who registered what:
a clash names both plugins, and a plugin that fails mid-way has its registrations
dropped (the ``_drop_*`` methods, called by :meth:`PluginHost.collect`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .commands import Command
from .shell_state import ShellState


class ShellRegistry(ShellState):
    """Registrations by plugin, and the agents and runner built from them."""

    def _add_command(self, plugin: str) -> Callable[..., None]:
        def register(command: Command) -> None:
            if not isinstance(command, Command):
                raise TypeError(f"register() takes a Command, got {type(command).__name__}")
            self.commands.add(command, plugin)

        return register

    def _drop_commands(self, plugin: str) -> None:
        self.commands.remove_plugin(plugin)

    def _add_backend(self, plugin: str) -> Callable[..., None]:
        def register(
            name: str,
            factory: Callable[[Any], Any],
            check: Callable[[Any], None] | None = None,
        ) -> None:
            _check_registration("backend", name, factory)
            if check is not None and not callable(check):
                raise TypeError("check must be callable")
            if name in self._backend_factories:
                self.output.warn(
                    f"backend {name!r} from plugin {plugin} clashes with plugin "
                    f"{self._backend_owner[name]} (kept the latter)"
                )
                return
            self._backend_factories[name] = factory
            self._backend_owner[name] = plugin
            if check is not None:
                self._backend_checks[name] = check

        return register

    def _drop_backends(self, plugin: str) -> None:
        for name in [n for n, owner in self._backend_owner.items() if owner == plugin]:
            self._backend_factories.pop(name, None)
            self._backend_owner.pop(name, None)
            self._backend_checks.pop(name, None)

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

    def _drop_sinks(self, plugin: str) -> None:
        for name in [n for n, entry in self._sink_factories.items() if entry[2] == plugin]:
            self._sink_factories.pop(name, None)

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

    async def _collect_auth_providers(self) -> None:
        """(Re)collect ``register_auth_providers``: what the previous collection
        registered is dropped first, so a provider removed from the config goes away."""
        for plugin in set(self._auth_owner.values()):
            self._drop_auth_providers(plugin)
        await self.plugins.collect(
            "register_auth_providers",
            self._add_auth_provider,
            self._drop_auth_providers,
            shell=self,
        )

    def _drop_auth_providers(self, plugin: str) -> None:
        for name in [n for n, owner in self._auth_owner.items() if owner == plugin]:
            self._auth_owner.pop(name, None)
            self.auth.remove_provider(name)

    def _plugin_code_failed(self, plugin: str, reason: str, exc: BaseException) -> None:
        """Plugin code the host called outside a hook (its config model's validator)
        raised: fail that plugin alone, as a raising hook would, and drop what it
        registered, so the shell goes on without it."""
        self.plugins.fail(plugin, reason)
        self._drop_registrations(plugin)
        self._plugin_error(plugin, None, exc)

    def _drop_registrations(self, plugin: str) -> None:
        """Forget everything ``plugin`` registered."""
        self._drop_commands(plugin)
        self._drop_backends(plugin)
        self._drop_sinks(plugin)
        if self.auth is not None:
            self._drop_auth_providers(plugin)
        # its sections' owners are kept: [plugins.<section>] still names a known plugin
        for section in [s for s, owner in self._section_owners.items() if owner == plugin]:
            self._plugin_sections.pop(section, None)
            self._plugin_config.pop(section, None)

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


def _check_registration(kind: str, name: object, factory: object) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"a {kind} name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"the {kind} factory for {name!r} is not callable")


__all__ = ["ShellRegistry"]
