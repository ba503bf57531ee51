"""Evidence artefacts of a stage run, written atomically under
``<evidence_dir>/consensus/<SPEC-ID>/``, named after the stage's command as in the
spec-kit documents (``spec-plan_…``):

* ``spec-<stage>_<UTC timestamp>_<agent-slug>.json`` — one per agent (:class:`AgentEvidence`);
* ``spec-<stage>_<UTC timestamp>_telemetry.jsonl`` — schema v2 lines, one per agent then
  one for the stage (:class:`TelemetryAgentLine`, :class:`TelemetryStageLine`);
* ``spec-<stage>_<UTC timestamp>_synthesis.json`` — the consensus (:class:`SynthesisRecord`).

Earlier releases wrote ``<stage>_<UTC timestamp>_…``; readers accept both names.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentshell import files
from agentshell.agents import TokenUsage
from agentshell.errors import CommandError
from agentshell.files import atomic_write
from agentshell.redact import redact

from .config import Status
from .stages import Stage
from .synthesis import AgentResult, AgentState, Synthesis

SCHEMA_VERSION = "2.0"
_RESERVED = {"telemetry", "synthesis"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentEvidence(_Model):
    schema_version: Literal["2.0"] = "2.0"
    spec_id: str
    stage: Stage
    agent: str
    role: str
    model: str
    prompt_version: str
    prompt_hash: str
    run_id: str
    branch_id: str
    created_at: str
    state: AgentState
    reason: str | None = None
    recorded: bool = False
    cached: bool = False
    attempts: int = 0
    usage: TokenUsage = Field(default_factory=TokenUsage)
    latency_ms: float = 0.0
    cost_usd: float | None = None
    content: str = ""  # the raw answer, secrets redacted
    output: dict[str, Any] | None = None  # the validated JSON, when valid


class TelemetryAgentLine(_Model):
    schemaVersion: Literal["2.0"] = "2.0"
    type: Literal["agent"] = "agent"
    agent: str
    role: str
    model_id: str
    reasoning_mode: str = ""
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    total_tokens: int
    cache_hit: bool
    cost_usd: float | None
    recorded: bool = False
    status: Literal["ok", "error"]
    error: str | None = None


class StageConsensus(_Model):
    status: Status
    agreements: list[str]
    conflicts: list[str]
    agents: list[str]
    missing_agents: list[str]
    total_tokens: int
    total_latency_ms: float
    total_cost_usd: float | None


class TelemetryStageLine(_Model):
    schemaVersion: Literal["2.0"] = "2.0"
    type: Literal["stage"] = "stage"
    command: str
    specId: str
    sessionId: str
    runId: str
    branchId: str
    stage: Stage
    timestamp: str
    promptVersion: str
    artifacts: list[str]
    consensus: StageConsensus


class AgentRef(_Model):
    agent: str
    role: str
    model: str
    state: AgentState
    recorded: bool
    reason: str | None = None
    path: str | None = None


class Totals(_Model):
    total_tokens: int
    total_latency_ms: float
    total_cost_usd: float | None


class Quorum(_Model):
    required: int
    valid: int


class ConsensusBlock(_Model):
    agreements: list[str]
    conflicts: list[str]


class SynthesisRecord(_Model):
    schema_version: Literal["2.0"] = "2.0"
    spec_id: str
    stage: Stage
    status: Status
    prompt_version: str
    run_id: str
    branch_id: str
    trace_parent: str
    created_at: str
    aggregator: str | None
    quorum: Quorum
    missing_agents: list[str]
    missing_reasons: dict[str, str]
    reasons: list[str]
    consensus: ConsensusBlock
    decision: str | None = None
    agents: list[AgentRef]
    totals: Totals
    result: Any | None = None
    synthesis_path: str
    # the spec-kit documents' key for the same path; absent from records written before
    synthesisPath: str | None = None
    telemetry_path: str
    markdown_path: str | None = None
    # earlier stages' non-ok verdicts a --force run went past: {stage: status}
    forced_over: dict[str, str] = Field(default_factory=dict)


def slug(name: str) -> str:
    """Lowercase alphanumerics; every other run of characters becomes ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "agent"


def timestamp(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"


def totals(results: list[AgentResult]) -> Totals:
    costs = [r.cost_usd for r in results if r.cost_usd is not None]
    # a live answer that used tokens but has no price makes the total unknown (None),
    # never a partial sum; recorded answers cost nothing and are left out
    unpriced = any(r.cost_usd is None and not r.recorded and not r.usage.is_empty for r in results)
    return Totals(
        total_tokens=sum(r.usage.total_tokens for r in results),
        total_latency_ms=round(sum(r.latency_ms for r in results), 3),
        total_cost_usd=round(sum(costs), 6) if costs and not unpriced else None,
    )


def rel(path: Path, cwd: Path) -> str:
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


def write_all(files: list[tuple[Path, str]]) -> None:
    """Atomic writes in parallel: each one fsyncs, and fsyncs overlap well in threads."""
    if len(files) <= 1:
        for path, text in files:
            atomic_write(path, text)
        return
    from concurrent.futures import ThreadPoolExecutor

    files[0][0].parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=min(len(files), 8)) as pool:
        for future in [pool.submit(atomic_write, path, text) for path, text in files]:
            future.result()  # re-raise the first failure


class EvidenceWriter:
    """Writes one stage run's artefacts into ``<evidence_dir>/consensus/<SPEC-ID>/``."""

    def __init__(self, evidence_dir: Path, spec_id: str, stage: Stage, cwd: Path) -> None:
        self.dir = evidence_dir / "consensus" / spec_id
        self.stage = stage
        self.cwd = cwd
        now = dt.datetime.now(dt.UTC)
        # two runs of a stage within one millisecond must not share names (nor a run
        # share its stamp with evidence written under the old names)
        while any(
            True
            for prefix in name_prefixes(stage)
            for _ in self.dir.glob(f"{prefix}_{timestamp(now)}_*")
        ):
            now += dt.timedelta(milliseconds=1)
        self.stamp = timestamp(now)
        self.created_at = now.isoformat()
        self._slugs: dict[str, str] = {}

    def path(self, suffix: str) -> Path:
        return self.dir / f"{file_prefix(self.stage)}_{self.stamp}_{suffix}"

    def agent_slug(self, agent: str) -> str:
        if agent not in self._slugs:
            base = slug(agent)
            base = f"agent_{base}" if base in _RESERVED else base
            name, n = base, 2
            while name in self._slugs.values():
                name, n = f"{base}_{n}", n + 1
            self._slugs[agent] = name
        return self._slugs[agent]

    def write(
        self,
        *,
        spec_id: str,
        synthesis: Synthesis,
        results: list[AgentResult],
        sums: Totals,
        prompt_version: str,
        run_id: str,
        branch_id: str,
        trace_parent: str,
        session_id: str,
        command: str,
        markdown_path: Path | None,
        forced_over: dict[str, str] | None = None,
    ) -> SynthesisRecord:
        refs: list[AgentRef] = []
        artefacts: list[str] = []
        lines: list[str] = []
        pending: list[tuple[Path, str]] = []
        for r in results:
            path = self.path(f"{self.agent_slug(r.agent)}.json")
            # an AgentResult's fields all carry over; the raw answer is redacted on disk
            evidence = AgentEvidence(
                **{**dict(r), "content": redact(r.content)},
                spec_id=spec_id,
                stage=self.stage,
                prompt_version=prompt_version,
                run_id=run_id,
                branch_id=branch_id,
                created_at=self.created_at,
            )
            pending.append((path, evidence.model_dump_json(indent=2) + "\n"))
            shown = rel(path, self.cwd)
            artefacts.append(shown)
            refs.append(
                AgentRef(
                    agent=r.agent,
                    role=r.role,
                    model=r.model,
                    state=r.state,
                    recorded=r.recorded,
                    reason=r.reason,
                    path=shown,
                )
            )
            lines.append(
                TelemetryAgentLine(
                    agent=r.agent,
                    role=r.role,
                    model_id=r.model,
                    reasoning_mode=str((r.output or {}).get("reasoning_mode", "")),
                    latency_ms=round(r.latency_ms, 3),
                    prompt_tokens=r.usage.input_tokens,
                    completion_tokens=r.usage.output_tokens,
                    reasoning_tokens=r.usage.reasoning_output_tokens,
                    total_tokens=r.usage.total_tokens,
                    cache_hit=r.cached or r.usage.cached_input_tokens > 0,
                    cost_usd=r.cost_usd,
                    recorded=r.recorded,
                    status="ok" if r.valid else "error",
                    error=None if r.valid else redact(r.reason or r.state),
                ).model_dump_json()
            )
        synthesis_path = self.path("synthesis.json")
        telemetry_path = self.path("telemetry.jsonl")
        md = rel(markdown_path, self.cwd) if markdown_path is not None else None
        artefacts += [rel(synthesis_path, self.cwd), *([md] if md else [])]
        lines.append(
            TelemetryStageLine(
                command=command,
                specId=spec_id,
                sessionId=session_id,
                runId=run_id,
                branchId=branch_id,
                stage=self.stage,
                timestamp=self.created_at,
                promptVersion=prompt_version,
                artifacts=artefacts,
                consensus=StageConsensus(
                    status=synthesis.status,
                    agreements=synthesis.agreements,
                    conflicts=synthesis.conflicts,
                    agents=[r.agent for r in results],
                    missing_agents=synthesis.missing_agents,
                    **sums.model_dump(),
                ),
            ).model_dump_json()
        )
        pending.append((telemetry_path, "\n".join(lines) + "\n"))
        try:
            write_all(pending)
        except OSError:
            self.discard()
            raise
        record = SynthesisRecord(
            spec_id=spec_id,
            stage=self.stage,
            status=synthesis.status,
            prompt_version=prompt_version,
            run_id=run_id,
            branch_id=branch_id,
            trace_parent=trace_parent,
            created_at=self.created_at,
            aggregator=synthesis.aggregator,
            quorum=Quorum(required=synthesis.quorum, valid=len(synthesis.valid_agents)),
            missing_agents=synthesis.missing_agents,
            missing_reasons=synthesis.missing_reasons,
            reasons=synthesis.reasons,
            consensus=ConsensusBlock(
                agreements=synthesis.agreements, conflicts=synthesis.conflicts
            ),
            decision=synthesis.decision,
            agents=refs,
            totals=sums,
            result=synthesis.result,
            synthesis_path=rel(synthesis_path, self.cwd),
            synthesisPath=rel(synthesis_path, self.cwd),
            telemetry_path=rel(telemetry_path, self.cwd),
            markdown_path=md,
            forced_over=dict(forced_over or {}),
        )
        try:
            atomic_write(synthesis_path, record.model_dump_json(indent=2) + "\n")
        except OSError:
            self.discard()
            raise
        return record

    def discard(self) -> None:
        """Remove this run's artefacts after a failed write (disk full): a set without
        its synthesis is no record of anything, and must not look like one."""
        for path in self.dir.glob(self.path("*").name):  # the names path() gives
            with contextlib.suppress(OSError):
                path.unlink()


def clean_stale_temps(evidence_dir: Path, spec_id: str) -> None:
    """Remove the temp files a killed run left in the spec's evidence folder (a live
    writer's are kept: see :func:`agentshell.files.clean_stale_temps`)."""
    files.clean_stale_temps(evidence_dir / "consensus" / spec_id)


M = TypeVar("M", bound=BaseModel)

_JSON_TYPES = {list: "a list", str: "a string", int: "a number", float: "a number",
               bool: "true/false", type(None): "null"}  # fmt: skip


def _first_problem(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where + ': ' if where else ''}{first['msg']}{more}"


def read_model(path: Path, model: type[M], what: str, cwd: Path) -> M:
    """A JSON artefact from disk as ``model``, or a one-line :class:`CommandError` that
    names the file and says what is wrong with it: unreadable, not UTF-8, invalid JSON,
    or valid JSON that is not ``what`` (a file edited or damaged by hand is bad input,
    not a bug)."""
    shown = rel(path, cwd)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"{shown}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise CommandError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CommandError(f"{shown}: invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        found = _JSON_TYPES.get(type(data), type(data).__name__)
        raise CommandError(f"{shown}: not {what}: expected a JSON object, found {found}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise CommandError(f"{shown}: not {what}: {_first_problem(exc)}") from None


def file_prefix(stage: Stage) -> str:
    """What a stage's evidence file names start with: its command, ``spec-plan``."""
    return f"spec-{stage}"


def name_prefixes(stage: Stage) -> tuple[str, str]:
    """The current prefix and the one earlier releases wrote (``plan``)."""
    return file_prefix(stage), stage


def latest_synthesis(evidence_dir: Path, spec_id: str, stage: Stage) -> Path | None:
    """The newest ``spec-<stage>_<ts>_synthesis.json`` of a spec, also among records
    written under the old name ``<stage>_<ts>_synthesis.json``: the UTC timestamp
    decides (it sorts as text); on a tie the new name wins."""
    folder = evidence_dir / "consensus" / spec_id
    found: list[tuple[str, int, Path]] = []
    for rank, prefix in enumerate(reversed(name_prefixes(stage))):
        for path in folder.glob(f"{prefix}_*_synthesis.json"):
            stamp = path.name[len(prefix) + 1 : -len("_synthesis.json")]
            found.append((stamp, rank, path))
    return max(found)[2] if found else None
