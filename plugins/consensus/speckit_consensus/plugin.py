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
    from functools import partial

    from .agents import ROSTER_KEY, roster, sync_default_agents
    from .commands import settings_of
    from .stages import STATUS_STYLES

    shell.output.words.update(STATUS_STYLES)  # status words in /spec-status and friends
    # recorded demo agents: used until the user configures agents of these names
    sync_default_agents(shell, settings_of(shell).demo_latency_scale)
    # /resume (another plugin) asks which agents each stage will call
    shell.state[ROSTER_KEY] = partial(roster, shell)
