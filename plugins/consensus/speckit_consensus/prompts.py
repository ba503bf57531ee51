"""Prompt templates: versioned files shipped in ``prompts/`` (or a user's file),
rendered with the spec's documents, the goal, previous stages' results, and — for each
role — the JSON shape that role is validated against."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from agentshell.errors import CommandError

from .markdown import strip_meta
from .schemas import Role, output_shape
from .stages import Stage, previous_stages

PROMPTS_DIR = Path(__file__).parent / "prompts"
DEFAULT_VERSION = "20251002"
MAX_PREVIOUS_CHARS = 5000

ROLE_BRIEFS: dict[Role, str] = {
    "researcher": "As researcher, gather the facts the team needs: summarise what the spec and "
    "the previous stages say, name open questions, and never invent requirements.",
    "synthesizer": "As synthesizer, turn the spec into a concrete, ordered proposal with a "
    "rationale and an observable success signal for every item.",
    "coder": "As coder, propose the concrete code changes (file paths and diffs in words) "
    "and the commands that test them.",
    "aggregator": "As executor and QA (the aggregator), compare the other agents' answers "
    "below, merge them into one result, and list every point they agree on and every point "
    "they contradict each other on. Report a conflict only when answers are incompatible.",
}


@dataclass(frozen=True)
class Template_:
    version: str
    text: str


def default_version(stage: Stage) -> str:
    return f"{DEFAULT_VERSION}-{stage}-a"


def load_template(stage: Stage, setting: str | None, cwd: Path) -> Template_:
    """The shipped template ``setting`` (a version name) or a file path; default per stage."""
    name = setting or default_version(stage)
    shipped = PROMPTS_DIR / f"{name}.md"
    if "/" not in name and "\\" not in name and shipped.is_file():
        return Template_(name, shipped.read_text(encoding="utf-8"))
    path = (cwd / name).expanduser()
    if path.is_file():
        return Template_(path.stem, path.read_text(encoding="utf-8"))
    shipped_names = sorted(p.stem for p in PROMPTS_DIR.glob("*.md"))
    raise CommandError(
        f"prompt template {name!r} for stage {stage} not found "
        f"(shipped: {', '.join(shipped_names)}; or give a file path)"
    )


def truncate(text: str, limit: int = MAX_PREVIOUS_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... truncated {len(text) - limit} characters ...]"


def spec_context(spec_dir: Path) -> str:
    """spec.md first, then any other documents of the spec that are not stage results."""
    from .stages import STAGES

    docs = [spec_dir / "spec.md"]
    skip = {"spec.md", *(f"{s}.md" for s in STAGES)}
    docs += sorted(p for p in spec_dir.glob("*.md") if p.name not in skip)
    parts = [
        f"### {p.name}\n\n{p.read_text(encoding='utf-8').strip()}" for p in docs if p.is_file()
    ]
    return "\n\n".join(parts)


def missing_results(spec_dir: Path, stage: Stage) -> list[Stage]:
    """The earlier stages with no result (``<stage>.md``) in the spec folder."""
    return [prev for prev in previous_stages(stage) if not (spec_dir / f"{prev}.md").is_file()]


def previous_outputs(spec_dir: Path, stage: Stage) -> str:
    parts = []
    for prev in previous_stages(stage):
        path = spec_dir / f"{prev}.md"
        if path.is_file():
            # a damaged file still gives the agents what it can, never a crash
            text = strip_meta(path.read_text(encoding="utf-8", errors="replace")).strip()
            parts.append(f"### {prev}\n\n{truncate(text)}")
    missing = missing_results(spec_dir, stage)
    if missing:  # said in the prompt: silence would read as "nothing to build on"
        parts.append(
            f"(no result from {', '.join(missing)}: "
            f"{'that stage has' if len(missing) == 1 else 'those stages have'} not run for "
            "this spec; do not assume what they would have said)"
        )
    return "\n\n".join(parts) or "(none yet)"


def agent_outputs_block(outputs: dict[str, Any], missing: dict[str, str]) -> str:
    if not outputs and not missing:
        return ""
    lines = ["## The other agents' answers", "", "```json", json.dumps(outputs, indent=2), "```"]
    if missing:
        lines += ["", "Missing agents (no valid answer): "]
        lines += [f"- {agent}: {reason}" for agent, reason in sorted(missing.items())]
    return "\n".join(lines)


def render(
    template: Template_,
    *,
    spec_id: str,
    stage: Stage,
    role: Role,
    goal: str | None,
    context: str,
    previous: str,
    agent_outputs: str = "",
) -> str:
    values = {
        "SPEC_ID": spec_id,
        "STAGE": stage,
        "ROLE": role,
        "ROLE_BRIEF": ROLE_BRIEFS[role],
        "GOAL": goal or "(none given: follow the spec)",
        "CONTEXT": context,
        "PREVIOUS_OUTPUTS": previous,
        "AGENT_OUTPUTS": agent_outputs,
        "OUTPUT_SHAPE": output_shape(stage, role, template.version),
        "PROMPT_VERSION": template.version,
    }
    # safe_substitute: a literal "$" in a user's template is text, not an error
    return Template(template.text).safe_substitute(values)


def prompt_hash(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()
