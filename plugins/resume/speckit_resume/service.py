"""The object published at ``shell.state["speckit.resume"]``: the contract the consensus
plugin calls (begin_run, finish_run, record_stage, record_validation, complete_branches,
stage_verdict)
and the logic the agent-call hooks run (answer from the store, commit each output as it
arrives).

The store is opened on first use, so a session that never runs a pipeline creates no
file. Hooks receive only the call, so each live service remembers the run and branch
ids it handed out and the hooks find the service that owns a call by its context.
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentshell.agents import AgentCall, AgentResponse, TokenUsage
from agentshell.errors import CommandError, NotStored
from agentshell.redact import redact, redact_tree

from .branches import check_spec_id, normalize_stage
from .settings import ResumeSettings

if TYPE_CHECKING:  # the store (sqlite3, pydantic models) loads on first use, not at start-up
    from .models import OutputRecord, StoredOutput
    from .store import Store

STATE_KEY = "speckit.resume"

_LIVE: weakref.WeakSet[ResumeService] = weakref.WeakSet()


def default_path(data_dir: Path) -> Path:
    return data_dir / "speckit" / "resume.sqlite3"


def prompt_hash_of(call: AgentCall) -> str:
    """The context's ``prompt_hash``, else a hash of what the request asks."""
    given = call.context.get("prompt_hash")
    if isinstance(given, str) and given:
        return given
    request = call.request
    payload = json.dumps(
        [request.system, request.prompt, request.messages], sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


class ResumeService:
    def __init__(self, settings: ResumeSettings, *, data_dir: Path, cwd: Path) -> None:
        self.settings = settings
        raw = Path(settings.path).expanduser() if settings.path else default_path(data_dir)
        self.path = raw if raw.is_absolute() else cwd / raw
        self._store: Store | None = None
        self._open_lock = threading.Lock()
        self._runs: set[str] = set()
        self._branches: set[str] = set()
        _LIVE.add(self)

    # -- the store -------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            from .store import Store

            with self._open_lock:
                if self._store is None:
                    self._store = Store(
                        self.path,
                        busy_timeout_ms=self.settings.busy_timeout_ms,
                        synchronous=self.settings.synchronous,
                    )
        return self._store

    @contextmanager
    def storing(self, what: str) -> Iterator[None]:
        """A write the run depends on: a database or file error (disk full, read-only)
        becomes :class:`NotStored`, one line naming the store file and the cause, which
        fails the call or stage instead of a warning after which the run reports
        success. The store's transaction was rolled back, so what it holds is whole."""
        try:
            yield
        except NotStored:
            raise
        except Exception as exc:
            import sqlite3

            if not isinstance(exc, sqlite3.Error | OSError):
                raise
            cause = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
            where = f"the resume store {self.path}"
            raise NotStored(f"cannot store {what} in {where}: {cause}") from None

    @property
    def opened(self) -> bool:
        return self._store is not None

    def close(self) -> None:
        _LIVE.discard(self)
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- the contract ------------------------------------------------------------------

    def begin_run(
        self,
        *,
        spec_id: str,
        goal: str | None,
        from_stage: str | None,
        resume: bool,
        branch_id: str | None = None,
    ) -> dict[str, Any]:
        """Open a run: ``resume`` continues ``branch_id`` (default: the spec's current
        branch) with the goal stored on it; ``from_stage`` (without ``resume``) forks a
        child of ``branch_id`` (default: the current branch) that keeps its parent's goal
        unless one is given; otherwise a new root branch. Returns run_id, branch_id,
        parent_branch_id, fork_stage, goal (and more). A request the user must fix (an
        unknown branch, a goal that is not the branch's) is a CommandError, before any
        row is written."""
        check_spec_id(spec_id)
        fork = normalize_stage(from_stage) if from_stage else None
        # the goal is part of every prompt: stored (and compared) only as redacted text
        goal = (redact(goal).strip() or None) if goal else None
        store = self.store
        if branch_id is not None:
            if store.spec_of(branch_id) != spec_id:
                raise CommandError(
                    f"no branch {branch_id} of {spec_id} in the resume store "
                    f"(see /branches {spec_id})"
                )
        elif resume or fork:
            branch_id = store.current_branch(spec_id)  # decided once, here
        if resume and branch_id is not None:
            stored = store.branch_goal(branch_id)
            if goal is not None and goal != stored:
                was = f"with its own goal {stored!r}" if stored else "(the branch has no goal)"
                raise CommandError(
                    f"--resume continues {branch_id} {was}, not {goal!r} "
                    f"(the goal is part of every prompt); for a new goal start a branch: "
                    f"/spec-auto {spec_id} <goal>"
                )
            goal = stored
        elif fork and branch_id is not None and goal is None:
            goal = store.branch_goal(branch_id)  # a child keeps its parent's goal
        with self.storing(f"the start of a {spec_id} run"):
            start = store.begin_run(
                spec_id=spec_id, goal=goal, from_stage=fork, resume=resume, branch_id=branch_id
            )
        self._runs.add(start.run_id)
        self._branches.add(start.branch_id)
        return {**start.model_dump(), "goal": goal}

    def finish_run(self, run_id: str, status: str) -> None:
        with self.storing(f"the end of run {run_id[:8]}"):
            self.store.finish_run(run_id, status)

    def complete_branches(self, spec_id: str, prefix: str = "") -> list[str]:
        """Tab completion: the spec's branch ids starting with ``prefix``, newest first.
        Never creates the database (a shell that never ran a pipeline has none) and never
        fails: a store that cannot be read offers nothing rather than an error."""
        if not self.opened and not self.path.is_file():
            return []
        try:
            return self.store.spec_branch_ids(spec_id, prefix)
        except Exception:  # locked, corrupt, newer schema...: completion stays quiet
            return []

    def stage_verdict(self, spec_id: str, stage: str) -> dict[str, Any] | None:
        """The newest recorded verdict of a stage of the spec (any branch): ``status``,
        ``branch_id``, ``run_id``, ``synthesis_path``, ``created_at`` (epoch seconds),
        or None. The consensus plugin's ``--from`` gate reads it (part of the published
        contract). Never creates the database: a shell that never ran a pipeline has
        none, and that means no verdict."""
        if not self.opened and not self.path.is_file():
            return None
        return self.store.latest_stage_result(spec_id, normalize_stage(stage))

    def record_stage(
        self,
        *,
        run_id: str,
        branch_id: str,
        spec_id: str,
        stage: str,
        status: str,
        agreements: list[Any],
        conflicts: list[Any],
        synthesis_path: str | None,
        summary: dict[str, Any] | None = None,
    ) -> None:
        """One stage's verdict. ``summary`` (reasons, each agent's state, missing agents
        and why, aggregator, quorum) is what ``/spec-consensus`` shows when there is no
        evidence: kept, redacted, whatever the evidence setting."""
        with self.storing(f"the {stage} result of {spec_id}"):
            self.store.add_stage_result(
                run_id=run_id,
                branch_id=branch_id,
                spec_id=spec_id,
                stage=stage,
                status=status,
                agreements=redact_tree(list(agreements)),
                conflicts=redact_tree(list(conflicts)),
                synthesis_path=synthesis_path,
                summary=redact_tree(dict(summary)) if summary else None,
            )

    def stage_summary(self, spec_id: str, stage: str) -> dict[str, Any] | None:
        """The newest recorded result of a stage of the spec (any branch): what
        ``stage_verdict`` returns plus ``agreements``, ``conflicts`` and ``summary`` (the
        dict given to ``record_stage``; ``{}`` when none was), or None. Never creates the
        database. ``/spec-consensus`` reads it when the evidence is off."""
        if not self.opened and not self.path.is_file():
            return None
        return self.store.latest_stage_summary(spec_id, normalize_stage(stage))

    def record_validation(
        self,
        *,
        branch_id: str,
        spec_id: str,
        stage: str,
        agent: str,
        prompt_hash: str,
        valid: bool,
        error: str | None,
    ) -> None:
        """Mark the output a call on this branch resolves to; an invalid one is never
        reused again."""
        with self.storing(f"the {stage} validation of agent {agent}"):
            self.store.set_validation(
                spec_id=spec_id,
                branch_id=branch_id,
                stage=stage,
                agent=agent,
                prompt_hash=prompt_hash,
                valid=valid,
                error=redact(error)[:500] if error else None,
            )

    # -- hook logic --------------------------------------------------------------------

    def owns(self, context: dict[str, Any]) -> bool:
        return context.get("run_id") in self._runs or context.get("branch_id") in self._branches

    def lookup(self, call: AgentCall) -> StoredOutput | None:
        ctx = call.context
        spec_id, stage, branch_id = ctx.get("spec_id"), ctx.get("stage"), ctx.get("branch_id")
        if not (isinstance(spec_id, str) and isinstance(stage, str) and isinstance(branch_id, str)):
            return None
        return self.store.find_output(
            spec_id=spec_id,
            branch_id=branch_id,
            stage=stage,
            agent=call.agent.name,
            prompt_hash=prompt_hash_of(call),
        )

    def replay(self, call: AgentCall) -> AgentResponse | None:
        found = self.lookup(call)
        if found is None:
            return None
        try:
            usage = TokenUsage.model_validate(found.usage)
        except ValueError:
            usage = TokenUsage()
        return AgentResponse(
            agent=call.agent.name,
            content=found.content or "",
            parsed=found.parsed,
            usage=usage,
            model=found.model or call.agent.model,
            cached=True,
            recorded=found.recorded,  # provenance survives the replay
        )

    def _record(self, call: AgentCall, **fields: Any) -> OutputRecord | None:
        from .models import OutputRecord

        ctx = call.context
        run_id = ctx.get("run_id")
        needed = (run_id, ctx.get("branch_id"), ctx.get("spec_id"), ctx.get("stage"))
        if not all(isinstance(v, str) and v for v in needed) or run_id not in self._runs:
            return None
        return OutputRecord(
            run_id=ctx["run_id"],
            branch_id=ctx["branch_id"],
            spec_id=ctx["spec_id"],
            stage=ctx["stage"],
            agent=call.agent.name,
            prompt_hash=prompt_hash_of(call),
            prompt_version=ctx.get("prompt_version"),
            role=ctx.get("role") or call.agent.role or None,
            attempts=call.attempt,
            **fields,
        )

    def save_response(self, call: AgentCall, response: AgentResponse) -> None:
        """Commit one answer now (its own transaction), or count a replay."""
        if response.cached:
            run_id = call.context.get("run_id")
            if isinstance(run_id, str) and run_id in self._runs:
                usage = response.usage
                with self.storing(f"the replay of agent {call.agent.name}"):
                    self.store.add_replay(run_id, usage.total_tokens if usage is not None else 0)
            return
        record = self._record(
            call,
            model=response.model or call.agent.model or None,
            content=redact(response.content),
            parsed=redact_tree(response.parsed),
            usage=response.usage.model_dump(),
            cost_usd=response.cost_usd,
            latency_ms=response.latency_ms,
            status="ok",
            recorded=response.recorded,
        )
        if record is not None:
            with self.storing(f"the {record.stage} answer of agent {record.agent}"):
                self.store.add_output(record)

    def save_failure(self, call: AgentCall, error: BaseException) -> None:
        message = str(error).strip() or type(error).__name__
        if not isinstance(error, Exception):  # CancelledError, KeyboardInterrupt
            message = "cancelled"
        record = self._record(
            call,
            model=call.agent.model or None,
            status="error",
            error=redact(message)[:500],
        )
        if record is not None:
            with self.storing(f"the {record.stage} failure of agent {record.agent}"):
                self.store.add_output(record)


def service_for(context: dict[str, Any]) -> ResumeService | None:
    """The live service that handed out this call's run or branch id."""
    if not (context.get("run_id") or context.get("branch_id")):
        return None
    for service in list(_LIVE):
        if service.owns(context):
            return service
    return None


__all__ = ["STATE_KEY", "ResumeService", "default_path", "prompt_hash_of", "service_for"]
