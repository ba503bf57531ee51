"""A stage's merged result as readable Markdown (``<specs_dir>/<SPEC-ID>/<stage>.md``).

The first line is an HTML comment with the stage's status in JSON, so ``/spec-status``
can show the last result without the evidence directory."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .config import Status
from .stages import Stage
from .synthesis import AgentResult, Synthesis

_META = re.compile(r"^<!-- speckit-consensus: (\{.*\}) -->$", re.MULTILINE)


class StageMeta(BaseModel):
    stage: Stage
    status: Status
    generated_at: str
    prompt_version: str
    total_tokens: int = 0
    cost_usd: float | None = None
    run_id: str | None = None
    branch_id: str | None = None
    recorded_agents: list[str] = []  # provenance: answers from recordings, not live models
    # earlier stages' non-ok verdicts a --force run went past: {stage: status}
    forced_over: dict[str, str] = {}


def _title(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _cell(value: Any) -> str:
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value) or "—"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _render(value: Any, level: int) -> list[str]:
    if isinstance(value, dict):
        lines: list[str] = []
        for key, item in value.items():
            lines += [f"{'#' * level} {_title(key)}", "", *_render(item, level + 1), ""]
        return lines
    if isinstance(value, list):
        if not value:
            return ["_none_"]
        if all(isinstance(v, dict) for v in value):
            columns = list(dict.fromkeys(k for v in value for k in v))
            rows = [f"| {' | '.join(_title(c) for c in columns)} |", f"|{'---|' * len(columns)}"]
            rows += [f"| {' | '.join(_cell(v.get(c, '')) for c in columns)} |" for v in value]
            return rows
        return [f"- {_cell(v)}" for v in value]
    return [str(value)]


def render_stage(
    *,
    spec_id: str,
    synthesis: Synthesis,
    results: list[AgentResult],
    meta: StageMeta,
) -> str:
    stage = synthesis.stage
    lines = [
        f"<!-- speckit-consensus: {meta.model_dump_json()} -->",
        f"# {_title(stage)} — {spec_id}",
        "",
        # volatile facts (time, run, cost) live only in the comment above: the body is
        # deterministic, so later stages' prompts (and their hashes) are reproducible
        f"**Consensus:** {synthesis.status} · prompt {meta.prompt_version}",
        "",
    ]
    # how an answer was obtained (live, recorded, replayed from the resume store) is
    # provenance, kept in the comment: the body feeds later prompts and must not change
    labels = [f"{r.agent} ({r.role})" for r in results if r.valid]
    lines += [f"Agents: {', '.join(labels) or 'none'}", ""]
    if synthesis.decision:
        lines += [f"**Decision:** {synthesis.decision}", ""]
    if synthesis.result is not None:
        lines += ["## Result", "", *_render(synthesis.result, 3), ""]
    else:
        lines += ["## Answers (no aggregated result)", ""]
        for r in results:
            if r.valid and r.output is not None:
                body = {k: v for k, v in r.output.items() if k not in {"stage", "prompt_version"}}
                lines += [f"### {r.agent} ({r.role})", "", *_render(body, 4), ""]
    lines += ["## Consensus", "", "### Agreements", "", *_render(synthesis.agreements, 4), ""]
    lines += ["### Conflicts", "", *_render(synthesis.conflicts, 4), ""]
    if synthesis.missing_agents:
        lines += ["### Missing agents", ""]
        lines += [
            f"- {a}: {synthesis.missing_reasons.get(a, '')}" for a in synthesis.missing_agents
        ]
        lines.append("")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).rstrip() + "\n"


def strip_meta(text: str) -> str:
    """The stage document without its status comment (what later prompts see)."""
    return _META.sub("", text, count=1).lstrip("\n")


def read_meta(path: Path) -> StageMeta | None:
    """The status comment of a stage file, or None when there is none (or it is bad)."""
    try:
        with path.open(encoding="utf-8") as fh:
            first = fh.readline()
    except (OSError, ValueError):  # ValueError: not UTF-8 (a damaged or binary file)
        return None
    match = _META.match(first.strip())
    if not match:
        return None
    try:
        return StageMeta.model_validate(json.loads(match.group(1)))
    except ValueError:
        return None
