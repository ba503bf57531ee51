"""The agent runner: makes agent calls concurrently, through the agent-call hooks,
under one retry policy (:mod:`agentshell.retry`), with a per-call timeout and telemetry.

The data it moves (``AgentSpec``, ``AgentRequest``, ``AgentResponse``, ``TokenUsage``,
...) is defined in :mod:`agentshell.agent_models` and importable from here too, as it
always was: plugins import ``agentshell.agents``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .agent_models import (
    AgentBackend,
    AgentCall,
    AgentRequest,
    AgentResponse,
    AgentSpec,
    BackendFactory,
    Delta,
    DeltaSink,
    Outcome,
    Progress,
    ProgressState,
    TokenUsage,
    parse_json_content,
)
from .errors import AgentError, AgentshellError, AgentTimeout, FatalAgentError, NotStored
from .redact import redact
from .retry import RetryPolicy

if TYPE_CHECKING:
    from .config import RetrySettings
    from .plugins import PluginHost
    from .telemetry import TelemetryBus


Notify = Callable[[str], None]


class AgentRunner:
    """Runs agent calls: hooks, backend, timeout, retries, telemetry.

    ``sleep``, ``rng``, ``clock`` (monotonic, for the retry budget) and ``now`` (wall
    clock, for rate-limit reset times) are injectable for tests.
    """

    def __init__(
        self,
        *,
        backends: Mapping[str, BackendFactory],
        hooks: PluginHost,
        telemetry: TelemetryBus,
        retry: RetrySettings,
        shell: Any = None,
        notify: Notify | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._factories = dict(backends)
        self._backends: dict[str, AgentBackend] = {}
        self.hooks = hooks
        self.telemetry = telemetry
        self.policy = RetryPolicy(retry, rng=rng, now=now)
        self.shell = shell
        self.notify = notify
        self.sleep = sleep
        self.clock = clock
        #: the calls running now, by call id (the REPL's live status shows them)
        self.in_flight: dict[str, AgentCall] = {}

    @property
    def backend_names(self) -> list[str]:
        return sorted(self._factories)

    def backend(self, name: str) -> AgentBackend:
        """The backend instance for ``name`` (one per runner, created on first use, so
        every agent of a backend shares its connection pool)."""
        backend = self._backends.get(name)
        if backend is None:
            factory = self._factories.get(name)
            if factory is None:
                known = ", ".join(sorted(self._factories)) or "none"
                raise FatalAgentError(f"unknown backend {name!r} (available: {known})")
            backend = self._backends[name] = factory(self.shell)
        return backend

    def adopt_backends(self, other: AgentRunner) -> None:
        """Use ``other``'s backend instances from now on: a config reload builds a new
        runner, and the backends' pooled connections are worth keeping."""
        self._backends = other._backends

    async def aclose(self) -> None:
        backends, self._backends = list(self._backends.values()), {}
        for backend in backends:
            with contextlib.suppress(Exception):  # one failing must not stop the others
                await backend.aclose()

    async def run(
        self,
        agent: AgentSpec,
        request: AgentRequest,
        context: Mapping[str, Any] | None = None,
        *,
        progress: Callable[[Progress], None] | None = None,
        on_delta: DeltaSink | None = None,
    ) -> AgentResponse:
        """Call one agent; return its response or raise the final :class:`AgentError`.
        Cancelling the caller cancels the call (its HTTP request or subprocess).

        ``on_delta`` gets the answer as it arrives (:class:`Delta`): per chunk from a
        backend that streams, else the whole answer once, before this returns. A delta
        with a new ``attempt`` means a retry started the answer again. What was
        delivered before a cancellation or failure stays with the caller."""
        from . import telemetry as ev

        call = AgentCall(
            agent=agent,
            request=request,
            context=dict(context or {}),
            max_attempts=self.policy.settings.attempts,
            on_delta=on_delta,
        )
        labels = _labels(call)
        self.telemetry.emit(ev.AgentCallStarted(**labels))
        _report(progress, call, "started")
        start = time.monotonic()
        self.in_flight[call.call_id] = call
        try:
            response = await self._attempts(call, labels, progress)
        except asyncio.CancelledError as cancelled:
            await self.hooks.each("agent_call_failed", call=call, error=cancelled)
            self.telemetry.emit(
                ev.AgentCallFailed(
                    **labels,
                    error_type="cancelled",
                    error="cancelled",
                    attempts=call.attempt,
                    latency_ms=(time.monotonic() - start) * 1000,
                )
            )
            _report(progress, call, "cancelled", detail="cancelled")
            raise
        except AgentError as exc:
            exc.agent = exc.agent or agent.name
            await self.hooks.each("agent_call_failed", call=call, error=exc)
            self.telemetry.emit(
                ev.AgentCallFailed(
                    **labels,
                    error_type=exc.kind,
                    error=redact(str(exc))[:500],
                    attempts=call.attempt,
                    latency_ms=(time.monotonic() - start) * 1000,
                )
            )
            _report(progress, call, "failed", detail=str(exc))
            raise
        finally:
            self.in_flight.pop(call.call_id, None)
        response.attempts = call.attempt
        response.latency_ms = response.latency_ms or (time.monotonic() - start) * 1000
        if not call.streamed:
            # a backend without streaming (or a cached answer): the caller still gets
            # the answer as deltas, all of it at once
            call.emit(response.content)
        if request.expect_json and response.parsed is None:
            response.parsed = parse_json_content(response.content)
        try:
            # a plugin that could not durably store the answer fails the call: the
            # command must not report success for outputs that were lost
            await self.hooks.each(
                "after_agent_call", propagate=(NotStored,), call=call, response=response
            )
        except NotStored as exc:
            self.telemetry.emit(
                ev.AgentCallFailed(
                    **labels,
                    error_type="not_stored",
                    error=redact(str(exc))[:500],
                    attempts=call.attempt,
                    latency_ms=(time.monotonic() - start) * 1000,
                )
            )
            raise  # the command's error line says it: no progress line repeats it
        capture = bool(getattr(self.telemetry, "capture_content", False))
        self.telemetry.emit(
            ev.AgentCallFinished(
                **labels,
                response_model=response.model or agent.model,
                usage=response.usage,
                latency_ms=response.latency_ms,
                attempts=response.attempts,
                cached=response.cached,
                recorded=response.recorded,
                cost_usd=response.cost_usd,
                content=response.content if capture else None,
            )
        )
        _report(progress, call, "cached" if response.cached else "done", usage=response.usage)
        tally = getattr(self.shell, "tally", None)
        if tally is not None:  # the REPL's session summary
            tally.add_call(response)
        return response

    async def _attempt(self, call: AgentCall, timeout_s: float) -> AgentResponse:
        """One attempt: the before hooks, then the backend under the per-call timeout."""
        cached = await self.hooks.first("before_agent_call", call=call)
        if cached is not None:
            if not isinstance(cached, AgentResponse):
                raise FatalAgentError(f"a before_agent_call hook returned {type(cached).__name__}")
            cached.cached = True
            return cached
        backend = self.backend(call.agent.backend)
        try:
            async with asyncio.timeout(timeout_s):
                return await backend.complete(call)
        except TimeoutError:
            # asyncio.timeout cancelled the backend, which killed its request/process
            limit = call.agent.timeout_s
            why = "" if timeout_s >= limit else " (the rest of the retry budget)"
            raise AgentTimeout(
                f"no answer within {timeout_s:.3g}s{why}", timeout_s=timeout_s
            ) from None

    async def _attempts(
        self,
        call: AgentCall,
        labels: dict[str, Any],
        progress: Callable[[Progress], None] | None,
    ) -> AgentResponse:
        from . import telemetry as ev

        policy = self.policy
        clock = self.clock
        deadline = clock() + policy.settings.total_budget_s
        agent = call.agent
        while True:
            remaining = deadline - clock()
            try:
                return await self._attempt(call, min(agent.timeout_s, max(remaining, 1e-3)))
            except AgentError as exc:
                error = exc
            except Exception as exc:  # a backend or hook bug must not take the shell down
                error = FatalAgentError(_unexpected(exc))
            error.agent = agent.name
            if not error.retryable:
                raise error
            delay = policy.delay(error, call.attempt)
            remaining = deadline - clock()
            why = policy.give_up(error, call.attempt, call.max_attempts, delay, remaining)
            if why is not None:
                error.message = f"{error.message} ({why})"
                error.args = (error.message,)
                raise error
            reason = redact(error.message)[:200]
            self.telemetry.emit(
                ev.AgentCallRetry(
                    **labels,
                    attempt=call.attempt,
                    next_attempt=call.attempt + 1,
                    delay_s=round(delay, 3),
                    error_type=error.kind,
                    error=reason,
                )
            )
            message = (
                f"{agent.name}: retrying in {delay:.1f}s "
                f"(attempt {call.attempt + 1}/{call.max_attempts}): {reason}"
            )
            # one line per retry: a caller showing progress prints it (Progress.detail
            # carries the message); otherwise the shell's notifier does
            if progress is None and self.notify is not None:
                with contextlib.suppress(Exception):  # a display must not fail the call
                    self.notify(message)
            _report(progress, call, "retrying", detail=message)
            await self.sleep(delay)
            call.attempt += 1

    async def run_many(
        self,
        agents: Sequence[AgentSpec],
        request: AgentRequest | Mapping[str, AgentRequest],
        context: Mapping[str, Any] | None = None,
        *,
        progress: Callable[[Progress], None] | None = None,
    ) -> list[Outcome]:
        """Call every agent concurrently; outcomes come back in the order of ``agents``.
        One agent's failure never loses the others' results. Cancelling the caller
        cancels every call in flight and returns nothing (no half results)."""

        async def one(agent: AgentSpec) -> Outcome:
            req = request.get(agent.name) if isinstance(request, Mapping) else request
            if req is None:
                error = FatalAgentError(f"no request for agent {agent.name!r}", agent=agent.name)
                return Outcome(agent, error=error)
            try:
                response = await self.run(agent, req, context, progress=progress)
                return Outcome(agent, response=response)
            except AgentError as exc:
                return Outcome(agent, error=exc)
            except Exception as exc:  # run() maps errors; this is belt and braces
                error = FatalAgentError(_unexpected(exc))
                error.agent = agent.name
                return Outcome(agent, error=error)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(agent)) for agent in agents]
        return [task.result() for task in tasks]


def _unexpected(exc: Exception) -> str:
    """The message of an error that is not an ``AgentError``. agentshell's own errors
    (a ``CommandError`` from an auth provider, say) carry a sentence meant for the user:
    it is shown as is, without the exception's class name. Anything else is a bug, and
    its class name helps whoever reports it."""
    if isinstance(exc, AgentshellError):
        return redact(str(exc))[:300]
    return f"{type(exc).__name__}: {redact(str(exc))[:300]}"


def _labels(call: AgentCall) -> dict[str, Any]:
    agent = call.agent
    ctx = call.context
    return {
        "call_id": call.call_id,
        "agent": agent.name,
        "backend": agent.backend,
        "model": agent.model,
        "role": agent.role or None,
        "labels": dict(call.request.labels),
        # the key of a span an event of the caller opened (telemetry.spans.StartSpan)
        "trace_parent": ctx.get("trace_parent"),
    }


def _report(
    progress: Callable[[Progress], None] | None,
    call: AgentCall,
    state: ProgressState,
    *,
    usage: TokenUsage | None = None,
    detail: str = "",
) -> None:
    if progress is None:
        return
    with contextlib.suppress(Exception):  # a progress display must never fail a call
        progress(
            Progress(
                agent=call.agent.name,
                state=state,
                elapsed_s=time.monotonic() - call.started_at,
                attempt=call.attempt,
                usage=usage,
                detail=detail,
            )
        )


__all__ = [
    "AgentBackend",
    "AgentCall",
    "AgentRequest",
    "AgentResponse",
    "AgentRunner",
    "AgentSpec",
    "BackendFactory",
    "Delta",
    "DeltaSink",
    "Outcome",
    "Progress",
    "RetryPolicy",
    "TokenUsage",
    "parse_json_content",
]
