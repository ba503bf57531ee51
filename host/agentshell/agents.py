"""Agent calls: the data that crosses the backend boundary, and the runner that makes
calls concurrently, through the agent-call hooks, under one retry policy.

The retry policy lives here and only here. Backends map their failures to the
taxonomy in :mod:`agentshell.errors`; the runner decides whether and when to retry:
exponential backoff with full jitter for disconnects and timeouts, the server's reset
hint (plus a little jitter) for rate limits, bounded by attempts and a total budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import itertools
import json
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from .errors import (
    AgentError,
    AgentTimeout,
    FatalAgentError,
    RateLimited,
)
from .redact import redact

if TYPE_CHECKING:
    from .config import AgentConfig, RetrySettings
    from .plugins import PluginHost
    from .telemetry import TelemetryBus


class TokenUsage(BaseModel):
    """Token counts of one call (or a sum of calls). Never negative."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = Field(default=0, ge=0)
    cached_input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    reasoning_output_tokens: int = Field(default=0, ge=0)
    total_tokens: int = Field(default=0, ge=0)

    @property
    def non_cached_input_tokens(self) -> int:
        return max(self.input_tokens - self.cached_input_tokens, 0)

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_output_tokens=self.reasoning_output_tokens + other.reasoning_output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )

    @property
    def is_empty(self) -> bool:
        return not (self.input_tokens or self.output_tokens or self.total_tokens)

    @classmethod
    def from_openai(cls, usage: Any) -> TokenUsage:
        """Parse an OpenAI-style ``usage`` object (``prompt_tokens``, ``completion_tokens``,
        ``total_tokens``, ``prompt_tokens_details.cached_tokens``,
        ``completion_tokens_details.reasoning_tokens``). Also accepts this model's own
        field names. Missing, negative or non-integer counts become 0: a server's
        sloppy usage must not fail an otherwise good answer."""
        if not isinstance(usage, Mapping):
            return cls()
        prompt_details = usage.get("prompt_tokens_details")
        completion_details = usage.get("completion_tokens_details")
        inp = _count(usage, "prompt_tokens", "input_tokens")
        out = _count(usage, "completion_tokens", "output_tokens")
        cached = _count(prompt_details, "cached_tokens") or _count(usage, "cached_input_tokens")
        reasoning = _count(completion_details, "reasoning_tokens") or _count(
            usage, "reasoning_output_tokens", "reasoning_tokens"
        )
        total = _count(usage, "total_tokens") or inp + out
        # model_construct: the counts are already checked ints >= 0 (hot path)
        return cls.model_construct(
            input_tokens=inp,
            cached_input_tokens=min(cached, inp) if inp else cached,
            output_tokens=out,
            reasoning_output_tokens=reasoning,
            total_tokens=total,
        )


def _count(obj: Any, *keys: str) -> int:
    if not isinstance(obj, Mapping):
        return 0
    for key in keys:
        value = obj.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return max(value, 0)
        if isinstance(value, float) and value == value and value >= 0:
            return int(value)
    return 0


class AgentSpec(BaseModel):
    """One configured agent: which backend, which model, in which role."""

    model_config = ConfigDict(frozen=True)

    name: str
    backend: str
    model: str = ""
    role: str = ""
    timeout_s: float = 120.0
    auth: str | None = None
    base_url: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_config(cls, name: str, cfg: AgentConfig) -> AgentSpec:
        options = dict(cfg.options)
        if cfg.api_key is not None:
            options["api_key"] = cfg.api_key
        return cls(
            name=name,
            backend=cfg.backend,
            model=cfg.model,
            role=cfg.role,
            timeout_s=cfg.timeout_s,
            auth=cfg.auth,
            base_url=cfg.base_url,
            options=options,
        )


class AgentRequest(BaseModel):
    """What to ask: a prompt (and optional system text or full message list)."""

    prompt: str
    system: str | None = None
    messages: list[dict[str, Any]] | None = None
    expect_json: bool = False
    stream: bool | None = None  # None: the backend's own default
    max_tokens: int | None = None
    temperature: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class AgentResponse(BaseModel):
    """One agent's answer."""

    agent: str
    content: str
    parsed: Any | None = None
    usage: TokenUsage = Field(default_factory=TokenUsage)
    model: str = ""
    latency_ms: float = 0.0
    attempts: int = 1
    cached: bool = False  # answered by a before_agent_call hook (no backend call)
    recorded: bool = False  # a recorded answer (replay backend), not a live model
    finish_reason: str | None = None
    cost_usd: float | None = None  # set by a pricing plugin in after_agent_call


@dataclass
class AgentCall:
    """One call in flight, as hooks see it. ``attempt`` counts from 1."""

    agent: AgentSpec
    request: AgentRequest
    context: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    max_attempts: int = 1
    call_id: str = field(default_factory=lambda: _new_call_id())
    started_at: float = field(default_factory=time.monotonic)


# Unique per process run without a syscall per call (uuid4 reads urandom each time).
_CALL_PREFIX = uuid.uuid4().hex[:8]
_call_counter = itertools.count(1)


def _new_call_id() -> str:
    return f"{_CALL_PREFIX}{next(_call_counter):08x}"


class AgentBackend(Protocol):
    """What ``register_agent_backends`` factories return."""

    async def complete(self, call: AgentCall) -> AgentResponse: ...

    async def aclose(self) -> None: ...


BackendFactory = Callable[[Any], AgentBackend]


#: "cancelled" is its own outcome: the caller stopped the call, the agent did not fail
ProgressState = Literal["started", "retrying", "done", "cached", "failed", "cancelled"]


@dataclass(frozen=True)
class Progress:
    """A live progress report for one agent of a fan-out."""

    agent: str
    state: ProgressState
    elapsed_s: float
    attempt: int = 1
    usage: TokenUsage | None = None
    detail: str = ""


@dataclass
class Outcome:
    """The result of one agent in :meth:`AgentRunner.run_many`: a response or an error."""

    agent: AgentSpec
    response: AgentResponse | None = None
    error: AgentError | None = None

    @property
    def ok(self) -> bool:
        return self.response is not None


_JSON_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n```", re.DOTALL)


def parse_json_content(content: str) -> Any | None:
    """The JSON value in an agent's answer: the whole text, a fenced ```json block, or
    the outermost ``{...}``; ``None`` when there is none."""
    text = content.strip()
    candidates = [text]
    candidates += _JSON_FENCE.findall(text)
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None


class RetryPolicy:
    """When to retry and how long to wait. ``rng`` and ``now`` (wall clock, for reset
    times) are injectable so tests need neither randomness nor a real clock."""

    def __init__(
        self,
        settings: RetrySettings,
        *,
        rng: random.Random | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.rng = rng or random.Random()
        self.now = now

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2**(attempt-1))]."""
        s = self.settings
        cap = min(s.max_delay_s, s.base_delay_s * (2 ** min(attempt - 1, 62)))
        return self.rng.uniform(0, cap)

    def delay(self, error: AgentError, attempt: int) -> float:
        """Seconds to wait before the attempt after ``attempt``: a rate limit's reset
        hint plus a little jitter (so a fan-out does not stampede at the reset), else
        exponential backoff with full jitter."""
        if isinstance(error, RateLimited):
            wait = error.wait_seconds(_dt.datetime.fromtimestamp(self.now(), _dt.UTC))
            if wait is not None:
                return wait + self.rng.uniform(0, self.settings.rate_limit_jitter_s)
        return self.backoff(attempt)

    def give_up(
        self, error: AgentError, attempt: int, max_attempts: int, delay: float, remaining: float
    ) -> str | None:
        """Why not to retry (appended to the error message), or ``None`` to retry."""
        if not error.retryable:
            return "not retryable"
        if attempt >= max_attempts:
            return f"gave up after {attempt} attempt{'' if attempt == 1 else 's'}"
        if delay > remaining:
            what = (
                "the server asks to wait"
                if isinstance(error, RateLimited) and error.reset_at is not None
                else "the next retry would wait"
            )
            return (
                f"giving up: {what} {delay:.1f}s but only {max(remaining, 0.0):.1f}s of the "
                f"retry budget ({self.settings.total_budget_s:g}s) remain"
            )
        return None


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
    ) -> AgentResponse:
        """Call one agent; return its response or raise the final :class:`AgentError`.
        Cancelling the caller cancels the call (its HTTP request or subprocess)."""
        from . import telemetry as ev

        call = AgentCall(
            agent=agent,
            request=request,
            context=dict(context or {}),
            max_attempts=self.policy.settings.attempts,
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
        if request.expect_json and response.parsed is None:
            response.parsed = parse_json_content(response.content)
        await self.hooks.each("after_agent_call", call=call, response=response)
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
                error = FatalAgentError(f"{type(exc).__name__}: {redact(str(exc))[:300]}")
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
                error = FatalAgentError(f"{type(exc).__name__}: {redact(str(exc))[:300]}")
                error.agent = agent.name
                return Outcome(agent, error=error)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(agent)) for agent in agents]
        return [task.result() for task in tasks]


def _labels(call: AgentCall) -> dict[str, Any]:
    agent = call.agent
    ctx = call.context
    return {
        "call_id": call.call_id,
        "agent": agent.name,
        "backend": agent.backend,
        "model": agent.model,
        "role": agent.role or None,
        "spec_id": ctx.get("spec_id"),
        "stage": ctx.get("stage"),
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
    "Outcome",
    "Progress",
    "RetryPolicy",
    "TokenUsage",
    "parse_json_content",
]
