"""The data of an agent call: what crosses the backend boundary and what the runner
reports back.

``AgentSpec`` (who to ask), ``AgentRequest`` (what to ask), ``AgentResponse`` and
``TokenUsage`` (the answer and what it cost), ``AgentCall`` (one call in flight, as hooks
see it), ``Delta`` (a piece of an answer as it streams), the ``AgentBackend`` protocol
backends implement, and ``Progress`` / ``Outcome`` (a fan-out's live reports and
results). Kept apart from the runner
(:mod:`agentshell.agents`) because these change with the protocol, the runner with the
policy; import them from :mod:`agentshell` or :mod:`agentshell.agents`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from .errors import AgentError

if TYPE_CHECKING:
    from .config import AgentConfig


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
    # what the call is for, in the caller's own terms: copied into every agent.call.*
    # event's ``labels`` and, by the otlp sink, onto the call's span as attributes
    # (names as given, so use a namespace of your own: {"myplugin.job": "J-1"})
    labels: dict[str, str | int | float | bool] = Field(default_factory=dict)


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


@dataclass(frozen=True)
class Delta:
    """A piece of an answer as it streams in.

    ``attempt`` is the attempt that produced it (from 1). A retry restarts the answer:
    a delta whose ``attempt`` differs from the previous one's means "drop what came
    before, the answer starts again with this text".
    """

    text: str
    attempt: int = 1


DeltaSink = Callable[[Delta], None]


@dataclass
class AgentCall:
    """One call in flight, as hooks see it. ``attempt`` counts from 1.

    ``on_delta`` is set when the caller wants the answer as it arrives. A backend that
    can stream calls :meth:`emit` with each piece of text; one that cannot does
    nothing, and the runner hands the caller the whole answer as one delta instead.
    """

    agent: AgentSpec
    request: AgentRequest
    context: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    max_attempts: int = 1
    call_id: str = field(default_factory=lambda: _new_call_id())
    started_at: float = field(default_factory=time.monotonic)
    on_delta: DeltaSink | None = field(default=None, repr=False, compare=False)
    #: the attempt that last called :meth:`emit` (0: nothing streamed yet)
    streamed_attempt: int = field(default=0, repr=False, compare=False)

    @property
    def streaming(self) -> bool:
        """Whether the caller wants deltas (a backend may skip streaming otherwise)."""
        return self.on_delta is not None

    @property
    def streamed(self) -> bool:
        """Whether the current attempt has emitted any text."""
        return self.streamed_attempt == self.attempt

    def emit(self, text: str) -> None:
        """Hand the caller the next piece of the answer (a backend calls this as text
        arrives; a no-op when nobody listens or ``text`` is empty). The delta is
        stamped with the current attempt. A failing listener never fails the call: a
        display error must not lose the answer."""
        sink = self.on_delta
        if sink is None or not text:
            return
        self.streamed_attempt = self.attempt
        with contextlib.suppress(Exception):
            sink(Delta(text, self.attempt))


# Unique per process run without a syscall per call (8 random hex digits, as
# uuid4().hex[:8] gave, without importing uuid).
_CALL_PREFIX = os.urandom(4).hex()
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


__all__ = [
    "AgentBackend",
    "AgentCall",
    "AgentRequest",
    "AgentResponse",
    "AgentSpec",
    "BackendFactory",
    "Delta",
    "DeltaSink",
    "Outcome",
    "Progress",
    "ProgressState",
    "TokenUsage",
    "parse_json_content",
]
