"""Consensus settings that could only fail when a stage runs are config errors when
the configuration is checked: a stage naming an unknown agent, an agent with an
unknown role, an aggregator outside the stage, a quorum larger than the stage."""

from __future__ import annotations

from typing import Any

import pytest

from agentshell import ConfigError


async def _problem(make_shell: Any, config: str) -> str:
    with pytest.raises(ConfigError) as caught:
        await make_shell(mode="run", config=config)
    lines = str(caught.value).splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            '[plugins.consensus.stages.plan]\nagents = ["gemini", "nobody"]\n',
            "stage plan: agent 'nobody' is not configured",
        ),
        (
            '[plugins.consensus]\nagents = ["gemini", "claude", "ghost"]\n',
            "stages plan, tasks, implement, validate, audit, unlock: "
            "agent 'ghost' is not configured",
        ),
        (
            '[plugins.consensus.stages.tasks]\nagents = ["gemini", "claude"]\nquorum = 3\n',
            "stage tasks: quorum 3 exceeds its 2 agents (gemini, claude)",
        ),
        (
            '[agents.gemini]\nbackend = "replay"\nrole = "wizard"\n',
            "stages plan, tasks, implement, validate, audit, unlock: "
            "agent gemini has unknown role 'wizard'",
        ),
        (
            '[plugins.consensus.stages.audit]\nroles = { claude = "bard" }\n',
            "stage audit: agent claude has unknown role 'bard'",
        ),
        (
            '[plugins.consensus.stages.plan]\naggregator = "gpt_codex"\n',
            "stage plan: aggregator 'gpt_codex' is not one of",
        ),
    ],
    ids=["stage-agent", "section-agent", "quorum", "agent-role", "stage-role", "aggregator"],
)
async def test_stage_settings_that_cannot_resolve_are_config_errors(
    make_shell: Any, config: str, expected: str
) -> None:
    line = await _problem(make_shell, config)
    assert "plugins.consensus" in line and expected in line


async def test_a_disabled_agent_is_not_a_stage_agent(make_shell: Any) -> None:
    line = await _problem(make_shell, "[agents.claude]\nenabled = false\n")
    assert (
        "plan, tasks, implement, validate, audit, unlock: agent 'claude' is not configured" in line
    )


async def test_agents_configured_and_resolvable_pass(make_shell: Any) -> None:
    shell = await make_shell(
        mode="run",
        config=(
            '[agents.mine]\nbackend = "replay"\nrole = "implementer"\n\n'
            '[plugins.consensus.stages.implement]\nagents = ["mine", "gemini", "gpt_pro"]\n'
            "quorum = 3\n"
        ),
    )
    assert shell.plugin_config("consensus").stages["implement"].quorum == 3
