"""Synthesis table: every combination of worker states, aggregator state, reported
conflicts and quorum gives the status the spec-kit rules define."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest

from speckit_consensus.schemas import Role
from speckit_consensus.synthesis import (
    AgentResult,
    AgentState,
    default_quorum,
    synthesize,
)

WORKER_STATES: tuple[AgentState, ...] = ("valid", "invalid", "failed")
AGG_STATES: tuple[str, ...] = ("valid", "invalid", "failed", "skipped", "none")


def worker(name: str, state: AgentState, role: Role = "researcher", **fields: Any) -> AgentResult:
    output = {"stage": "audit", **fields} if state == "valid" else None
    reason = None if state == "valid" else f"{name} {state}"
    return AgentResult(agent=name, role=role, state=state, output=output, reason=reason)


def aggregator(state: str, conflicts: list[str]) -> AgentResult:
    output = None
    if state == "valid":
        output = {
            "stage": "plan",
            "consensus": {"agreements": ["same steps"], "conflicts": conflicts},
            "final_plan": {"work_breakdown": []},
        }
    return AgentResult(
        agent="agg",
        role="aggregator",
        state=state,  # type: ignore[arg-type]
        output=output,
        reason=None if state == "valid" else f"agg {state}",
    )


def expected(states: Sequence[str], agg: str, conflicts: bool, quorum: int) -> str:
    """The rules in words: quorum first, then conflicts, then anything missing."""
    valid = sum(s == "valid" for s in states) + (agg == "valid")
    if valid < quorum:
        return "failed"
    if agg == "valid" and conflicts:
        return "conflict"
    if any(s != "valid" for s in states) or agg != "valid":
        return "degraded"
    return "ok"


CASES = [
    (list(ws), agg, conflicts, quorum)
    for ws in itertools.product(WORKER_STATES, repeat=2)
    for agg in AGG_STATES
    for conflicts in (False, True)
    for quorum in (1, 2, 3)
]


def check_row(states: list[AgentState], agg: str, conflicts: bool, quorum: int) -> None:
    results = [worker(f"w{i}", s, "synthesizer") for i, s in enumerate(states)]
    if agg != "none":
        results.append(aggregator(agg, ["step 2 vs step 3 order"] if conflicts else []))
    syn = synthesize("plan", results, aggregator=None if agg == "none" else "agg", quorum=quorum)
    assert syn.status == expected(states, agg, conflicts, quorum)
    # missing agents, with reasons, are always reported — and never as conflicts
    missing = [r.agent for r in results if r.state != "valid"]
    assert syn.missing_agents == missing
    assert set(syn.missing_reasons) == set(missing)
    assert not any("w0" in c or "w1" in c for c in syn.conflicts)
    assert syn.reasons or syn.status == "ok"


def test_status_table() -> None:
    # one test over the whole table (270 rows): each row is named when it fails
    assert len(CASES) == 270
    for row in CASES:
        try:
            check_row(*row)
        except AssertionError as exc:
            raise AssertionError(f"row {row}: {exc}") from exc


def test_literal_rows() -> None:
    """A few rows spelled out, independent of the oracle above."""
    ok = synthesize(
        "plan",
        [worker("a", "valid"), worker("b", "valid"), aggregator("valid", [])],
        aggregator="agg",
        quorum=2,
    )
    assert ok.status == "ok" and ok.agreements == ["same steps"] and ok.conflicts == []
    one_failed = synthesize(
        "plan",
        [worker("a", "valid"), worker("b", "failed"), aggregator("valid", [])],
        aggregator="agg",
        quorum=2,
    )
    assert one_failed.status == "degraded"
    assert one_failed.missing_agents == ["b"] and one_failed.conflicts == []
    two_failed = synthesize(
        "plan",
        [worker("a", "failed"), worker("b", "failed"), aggregator("valid", [])],
        aggregator="agg",
        quorum=2,
    )
    assert two_failed.status == "failed"
    reported = synthesize(
        "plan",
        [worker("a", "valid"), worker("b", "valid"), aggregator("valid", ["x"])],
        aggregator="agg",
        quorum=2,
    )
    assert reported.status == "conflict" and reported.conflicts == ["x"]
    no_agg = synthesize(
        "plan", [worker("a", "valid"), worker("b", "valid")], aggregator=None, quorum=2
    )
    assert no_agg.status == "degraded"


def test_decision_disagreement_is_a_conflict_even_without_reported_conflicts() -> None:
    results = [
        worker("gemini", "valid", recommendation="changes_requested"),
        worker("claude", "valid", "synthesizer", recommendation="approve"),
        AgentResult(
            agent="gpt_pro",
            role="aggregator",
            state="valid",
            output={
                "stage": "audit",
                "recommendation": "approve",
                "consensus": {"agreements": [], "conflicts": []},
            },
        ),
    ]
    syn = synthesize("audit", results, aggregator="gpt_pro", quorum=2)
    assert syn.status == "conflict"
    assert syn.conflicts == [
        "recommendation differs between agents: "
        "claude=approve, gemini=changes_requested, gpt_pro=approve"
    ]
    assert syn.decision is None


def test_a_failed_agent_is_missing_not_a_conflicting_decision() -> None:
    results = [
        worker("u1", "valid", unlock_decision="UNLOCK"),
        worker("u2", "failed"),
        AgentResult(
            agent="agg",
            role="aggregator",
            state="valid",
            output={
                "stage": "unlock",
                "unlock_decision": "UNLOCK",
                "consensus": {"agreements": ["UNLOCK"], "conflicts": []},
            },
        ),
    ]
    syn = synthesize("unlock", results, aggregator="agg", quorum=2)
    assert syn.status == "degraded"
    assert syn.conflicts == [] and syn.missing_agents == ["u2"] and syn.decision == "UNLOCK"


@pytest.mark.parametrize(("n", "q"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3)])
def test_default_quorum_is_a_majority(n: int, q: int) -> None:
    assert default_quorum(n) == q
