"""speckit_consensus: multi-agent spec-kit stages with computed consensus, evidence and
``/spec-auto`` halt gating. Hook implementations only; everything else loads lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentshell.plugins import hookimpl

if TYPE_CHECKING:
    from agentshell import Register


@hookimpl
def register_config(register: Register) -> None:
    from .config import SECTION, ConsensusSettings

    register(SECTION, ConsensusSettings)


@hookimpl
def register_commands(register: Register) -> None:
    from .commands import all_commands

    for command in all_commands():
        register(command)


@hookimpl
def shell_started(shell: Any) -> None:
    from .agents import default_agent_specs
    from .commands import settings_of

    # recorded demo agents: used until the user configures agents of these names
    for spec in default_agent_specs(settings_of(shell).demo_latency_scale):
        shell.define_default_agent(spec)
