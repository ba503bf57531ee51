"""The retry policy: whether a failed agent call is tried again, and after how long.

Backends map their failures to the taxonomy in :mod:`agentshell.errors`; this decides:
exponential backoff with full jitter for disconnects and timeouts, the server's reset
hint (plus a little jitter) for rate limits, bounded by attempts and a total budget.
The policy lives here and only here; :class:`agentshell.agents.AgentRunner` applies it.
"""

from __future__ import annotations

import datetime as _dt
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import AgentError, RateLimited

if TYPE_CHECKING:
    from .config import RetrySettings


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


__all__ = ["RetryPolicy"]
