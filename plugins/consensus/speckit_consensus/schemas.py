"""The JSON each role answers at each stage, as pydantic models.

These models are the single source of truth: the prompts render their output shape
from them (see :func:`output_shape`), and validation uses them — so the fields an agent
is asked for are exactly the fields it is checked for.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .stages import Stage

Role = Literal["researcher", "synthesizer", "coder", "aggregator"]
ROLE_ALIASES: dict[str, Role] = {
    "researcher": "researcher",
    "research": "researcher",
    "synthesizer": "synthesizer",
    "synthesiser": "synthesizer",
    "coder": "coder",
    "implementer": "coder",
    "aggregator": "aggregator",
    "executor": "aggregator",
    "qa": "aggregator",
    "executor & qa": "aggregator",
}


class _Out(BaseModel):
    # models may add fields of their own; they are kept, not rejected
    model_config = ConfigDict(extra="allow")


class AgentOutput(_Out):
    """Fields every agent answer carries."""

    stage: Stage
    prompt_version: str = ""
    agent: str = ""
    model: str = ""
    model_release: str = ""
    reasoning_mode: str = ""


class Topic(_Out):
    topic: str
    details: str


class Step(_Out):
    step: str
    rationale: str
    success_signal: str


class Acceptance(_Out):
    requirement: str
    validation_step: str
    artifact: str


class Risk(_Out):
    risk: str
    owner: str
    mitigation: str


class Task(_Out):
    id: str
    title: str
    acceptance: str
    depends_on: list[str] = Field(default_factory=list)


class Diff(_Out):
    path: str
    change: str
    rationale: str


class Scenario(_Out):
    name: str
    steps: list[str]
    expected: str


class Finding(_Out):
    area: str
    finding: str
    severity: Literal["low", "medium", "high"]


class Check(_Out):
    check: str
    status: Literal["pass", "fail"]
    notes: str = ""


class Consensus(_Out):
    agreements: list[str]
    conflicts: list[str]


class Aggregate(AgentOutput):
    consensus: Consensus


# -- plan -------------------------------------------------------------------------
class PlanResearcher(AgentOutput):
    research_summary: list[Topic] = Field(min_length=1)
    questions: list[str]


class PlanSynthesizer(AgentOutput):
    work_breakdown: list[Step] = Field(min_length=1)
    acceptance_mapping: list[Acceptance] = Field(min_length=1)
    risks: list[Risk]


class FinalPlan(_Out):
    work_breakdown: list[Step] = Field(min_length=1)
    acceptance_mapping: list[Acceptance]
    risks: list[Risk]


class PlanAggregator(Aggregate):
    feasibility_notes: list[str]
    missing_items: list[str]
    final_plan: FinalPlan


# -- tasks ------------------------------------------------------------------------
class TasksResearcher(AgentOutput):
    research_summary: list[Topic] = Field(min_length=1)
    dependencies: list[str]


class TasksSynthesizer(AgentOutput):
    tasks: list[Task] = Field(min_length=1)


class TasksAggregator(Aggregate):
    final_tasks: list[Task] = Field(min_length=1)


# -- implement --------------------------------------------------------------------
class ImplementResearcher(AgentOutput):
    research_summary: list[Topic] = Field(min_length=1)
    touched_files: list[str]


class ImplementSynthesizer(AgentOutput):
    approach: list[Step] = Field(min_length=1)
    risks: list[Risk]


class ImplementCoder(AgentOutput):
    diff_proposals: list[Diff] = Field(min_length=1)
    test_commands: list[str]


class FinalImplementation(_Out):
    summary: str
    diff_proposals: list[Diff] = Field(min_length=1)
    test_commands: list[str]


class ImplementAggregator(Aggregate):
    final_implementation: FinalImplementation


# -- validate ---------------------------------------------------------------------
class ValidateResearcher(AgentOutput):
    research_summary: list[Topic] = Field(min_length=1)
    test_gaps: list[str]


class ValidateSynthesizer(AgentOutput):
    scenarios: list[Scenario] = Field(min_length=1)


class ValidationPlan(_Out):
    scenarios: list[Scenario] = Field(min_length=1)
    commands: list[str]


class ValidateAggregator(Aggregate):
    validation_plan: ValidationPlan


# -- audit ------------------------------------------------------------------------
Recommendation = Literal["approve", "changes_requested", "reject"]


class AuditResearcher(AgentOutput):
    findings: list[Finding]
    recommendation: Recommendation


class Compliance(_Out):
    requirement: str
    status: Literal["met", "partial", "unmet"]
    evidence: str


class AuditSynthesizer(AgentOutput):
    compliance: list[Compliance] = Field(min_length=1)
    recommendation: Recommendation


class AuditAggregator(Aggregate):
    audit_summary: str
    findings: list[Finding]
    recommendation: Recommendation


# -- unlock -----------------------------------------------------------------------
Decision = Literal["UNLOCK", "BLOCK"]


class UnlockResearcher(AgentOutput):
    readiness: list[Check] = Field(min_length=1)
    unlock_decision: Decision


class UnlockSynthesizer(AgentOutput):
    rationale: list[str] = Field(min_length=1)
    unlock_decision: Decision


class UnlockAggregator(Aggregate):
    unlock_decision: Decision
    rationale: str
    conditions: list[str]


SCHEMAS: dict[Stage, dict[Role, type[AgentOutput]]] = {
    "plan": {
        "researcher": PlanResearcher,
        "synthesizer": PlanSynthesizer,
        "aggregator": PlanAggregator,
    },
    "tasks": {
        "researcher": TasksResearcher,
        "synthesizer": TasksSynthesizer,
        "aggregator": TasksAggregator,
    },
    "implement": {
        "researcher": ImplementResearcher,
        "synthesizer": ImplementSynthesizer,
        "coder": ImplementCoder,
        "aggregator": ImplementAggregator,
    },
    "validate": {
        "researcher": ValidateResearcher,
        "synthesizer": ValidateSynthesizer,
        "aggregator": ValidateAggregator,
    },
    "audit": {
        "researcher": AuditResearcher,
        "synthesizer": AuditSynthesizer,
        "aggregator": AuditAggregator,
    },
    "unlock": {
        "researcher": UnlockResearcher,
        "synthesizer": UnlockSynthesizer,
        "aggregator": UnlockAggregator,
    },
}

#: the field whose value every role gives at a stage; differing values are a conflict
DECISION_FIELDS: dict[Stage, str] = {"audit": "recommendation", "unlock": "unlock_decision"}


def normalize_role(role: str) -> Role | None:
    return ROLE_ALIASES.get(role.strip().lower())


def schema_for(stage: Stage, role: Role) -> type[AgentOutput] | None:
    return SCHEMAS[stage].get(role)


def validate_output(
    stage: Stage, role: Role, value: Any
) -> tuple[dict[str, Any] | None, str | None]:
    """(the validated answer, None) or (None, a one-line reason)."""
    model = schema_for(stage, role)
    if model is None:
        return None, f"stage {stage} has no role {role!r}"
    if not isinstance(value, dict):
        kind = "no JSON object" if value is None else f"JSON {type(value).__name__}, not an object"
        return None, f"{kind} in the answer"
    try:
        parsed = model.model_validate(value)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return None, f"invalid {stage}/{role} JSON: {where}: {first['msg']}{more}"
    if parsed.stage != stage:
        return None, f"answer is for stage {parsed.stage!r}, expected {stage!r}"
    return parsed.model_dump(mode="json"), None


def _example(annotation: Any) -> Any:
    """A skeleton value for a field's type, for the prompt."""
    origin = getattr(annotation, "__origin__", None)
    args = getattr(annotation, "__args__", ())
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {name: _example(f.annotation) for name, f in annotation.model_fields.items()}
    if origin is list and args:
        return [_example(args[0])]
    if origin is Literal:
        return " | ".join(str(a) for a in args)
    if annotation is str:
        return "..."
    return str(annotation)


def output_shape(stage: Stage, role: Role, prompt_version: str) -> str:
    """The JSON skeleton a role must answer with, rendered from its model."""
    model = SCHEMAS[stage][role]
    shape: dict[str, Any] = {
        "stage": stage,
        "prompt_version": prompt_version,
        "agent": "<your agent name>",
        "model": "<model id>",
        "model_release": "<release date or tag>",
        "reasoning_mode": "<e.g. high | medium | none>",
    }
    for name, f in model.model_fields.items():
        if name not in AgentOutput.model_fields:
            shape[name] = _example(f.annotation)
    return json.dumps(shape, indent=2)


def required_fields(stage: Stage, role: Role) -> list[str]:
    """Top-level fields validation requires (tests check each is asked for in the prompt)."""
    model = SCHEMAS[stage][role]
    return [n for n, f in model.model_fields.items() if f.is_required()]
