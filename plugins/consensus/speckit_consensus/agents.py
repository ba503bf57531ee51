"""Which agents answer a stage, in which role, which one aggregates, and the quorum.

Defaults are the recorded demo agents (replay backend), so the demo runs with no keys;
any agent the user configures under ``[agents.<name>]`` replaces its namesake."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentshell.agents import AgentSpec
from agentshell.errors import CommandError

from .config import ConsensusSettings
from .stages import Stage

if TYPE_CHECKING:  # the schemas build many models: load them when a stage runs
    from .schemas import Role

RECORDINGS_DIR = Path(__file__).parent / "recordings"

#: name -> (role, model) of the recorded demo agents
DEFAULT_AGENTS: dict[str, tuple[Role, str]] = {
    "gemini": ("researcher", "gemini-2.5-pro"),
    "claude": ("synthesizer", "claude-sonnet-4-5"),
    "gpt_codex": ("coder", "gpt-5-codex"),
    "gpt_pro": ("aggregator", "gpt-5"),
}


def default_agent_specs(latency_scale: float = 1.0) -> list[AgentSpec]:
    return [
        AgentSpec(
            name=name,
            backend="replay",
            model=model,
            role=role,
            options={
                "dir": str(RECORDINGS_DIR),
                "latency_scale": latency_scale,
                "honour_latency": latency_scale > 0,
            },
        )
        for name, (role, model) in DEFAULT_AGENTS.items()
    ]


SCALE_KEY = "speckit.consensus.demo_latency_scale"
ROSTER_KEY = "speckit.consensus.roster"  # read by speckit_resume's /resume


def sync_default_agents(shell: Any, latency_scale: float) -> None:
    """(Re-)define the recorded demo agents when the scale they were defined with is
    not the current one: ``/config reload`` changes the setting after shell_started."""
    if shell.state.get(SCALE_KEY) == latency_scale:
        return
    for spec in default_agent_specs(latency_scale):
        shell.define_default_agent(spec)
    shell.state[SCALE_KEY] = latency_scale


def roster(shell: Any, stage: str) -> tuple[list[str], str | None] | None:
    """A stage's (workers, aggregator) as the next run resolves them (``/resume`` reads
    this through ``shell.state``); None when the stage or its settings do not resolve."""
    from .commands import settings_of
    from .stages import parse_stage

    try:
        plan = resolve(parse_stage(stage), settings_of(shell), shell.agents)
    except (CommandError, ValueError):
        return None
    return [spec.name for spec, _ in plan.workers], (
        plan.aggregator.name if plan.aggregator else None
    )


def default_names(stage: Stage) -> list[str]:
    if stage == "implement":
        return ["gemini", "claude", "gpt_codex", "gpt_pro"]
    return ["gemini", "claude", "gpt_pro"]


@dataclass(frozen=True)
class StagePlan:
    """The resolved agents of one stage."""

    stage: Stage
    workers: list[tuple[AgentSpec, Role]]  # answer the stage prompt concurrently
    aggregator: AgentSpec | None
    quorum: int
    template: str | None

    @property
    def names(self) -> list[str]:
        names = [spec.name for spec, _ in self.workers]
        return [*names, self.aggregator.name] if self.aggregator else names


def resolve(stage: Stage, settings: ConsensusSettings, agents: dict[str, Any]) -> StagePlan:
    """Resolve a stage's agents; a bad setting is a one-line :class:`CommandError`."""
    from .schemas import SCHEMAS, normalize_role
    from .synthesis import default_quorum

    cfg = settings.stage(stage)
    names = cfg.agents or settings.agents or default_names(stage)
    where = f"[plugins.consensus.stages.{stage}]"
    unknown = [n for n in names if n not in agents]
    if unknown:
        known = ", ".join(sorted(agents)) or "none"
        raise CommandError(
            f"stage {stage}: agent {unknown[0]!r} is not configured (known: {known})"
        )
    if len(set(names)) != len(names):
        raise CommandError(f"stage {stage}: an agent is listed twice in {names}")
    roles: dict[str, Role] = {}
    for name in names:
        text = cfg.roles.get(name) or agents[name].role or "synthesizer"
        role = normalize_role(text)
        if role is None:
            raise CommandError(
                f"stage {stage}: agent {name} has unknown role {text!r} "
                f"(roles: {', '.join(SCHEMAS[stage])}; set {where} roles)"
            )
        if role not in SCHEMAS[stage]:
            role = "synthesizer"  # e.g. a coder outside implement answers as a synthesizer
        roles[name] = role
    aggregator = cfg.aggregator or settings.aggregator
    if aggregator is None:
        aggregator = next((n for n in names if roles[n] == "aggregator"), None)
    elif aggregator not in names:
        raise CommandError(f"stage {stage}: aggregator {aggregator!r} is not one of {names}")
    workers: list[tuple[AgentSpec, Role]] = []
    for name in names:
        if name == aggregator:
            continue
        role = roles[name]
        workers.append((agents[name], "synthesizer" if role == "aggregator" else role))
    quorum = cfg.quorum or default_quorum(len(names))
    if quorum > len(names):
        raise CommandError(f"stage {stage}: quorum {quorum} exceeds the {len(names)} agents")
    timeout = cfg.timeout_s
    if timeout is not None:
        workers = [(spec.model_copy(update={"timeout_s": timeout}), r) for spec, r in workers]
    agg_spec = agents[aggregator] if aggregator else None
    if agg_spec is not None and timeout is not None:
        agg_spec = agg_spec.model_copy(update={"timeout_s": timeout})
    return StagePlan(stage, workers, agg_spec, quorum, cfg.template)
