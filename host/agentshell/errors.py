"""The error taxonomy every backend maps its failures to, and the retry policy reads.

Retryable: :class:`AgentDisconnected`, :class:`RateLimited`, :class:`AgentTimeout`.
Not retryable: :class:`AuthRequired`, :class:`BadAgentOutput`, :class:`FatalAgentError`.

Messages must never contain secrets: backends build them from status codes, error
types and server messages that have passed through :func:`agentshell.redact.redact`.
"""

from __future__ import annotations

import datetime as _dt


class AgentshellError(Exception):
    """Base of every error agentshell raises on purpose (shown as one line, no traceback)."""


class ConfigError(AgentshellError):
    """Configuration that cannot be loaded or validated; the message names file, key, line."""


class CommandError(AgentshellError):
    """A command could not do its job; the message is shown to the user as is."""


class NotStored(AgentshellError):
    """What a plugin could not durably store (disk full, store unwritable): raised by an
    ``after_agent_call`` implementation, it fails the call, and so the command, instead
    of being reported as a warning. The message is the one line the user sees: name the
    file and the cause (``cannot store ... in /path/db: database or disk is full``)."""


class PluginError(AgentshellError):
    """A plugin failed to load or a hook implementation failed."""


class AgentError(AgentshellError):
    """Base of the agent-call taxonomy."""

    retryable: bool = False
    #: short machine-friendly name used in telemetry (``error_type``)
    kind: str = "agent_error"

    def __init__(self, message: str, *, agent: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.agent = agent


class AgentDisconnected(AgentError):
    """The connection dropped or could not be made (retryable)."""

    retryable = True
    kind = "disconnected"


class AgentTimeout(AgentError):
    """The call took longer than its timeout (retryable)."""

    retryable = True
    kind = "timeout"

    def __init__(
        self, message: str, *, timeout_s: float | None = None, agent: str | None = None
    ) -> None:
        super().__init__(message, agent=agent)
        self.timeout_s = timeout_s


class RateLimited(AgentError):
    """The server refused for rate limiting; ``reset_at`` is when it says to come back."""

    retryable = True
    kind = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        reset_at: _dt.datetime | None = None,
        agent: str | None = None,
    ) -> None:
        super().__init__(message, agent=agent)
        if reset_at is not None and reset_at.tzinfo is None:
            reset_at = reset_at.replace(tzinfo=_dt.UTC)
        self.reset_at = reset_at

    def wait_seconds(self, now: _dt.datetime | None = None) -> float | None:
        """Seconds until the reset hint (never negative), or ``None`` without a hint."""
        if self.reset_at is None:
            return None
        now = now or _dt.datetime.now(_dt.UTC)
        return max((self.reset_at - now).total_seconds(), 0.0)


class AuthRequired(AgentError):
    """Credentials are missing, expired or refused; ``fix`` is the command that fixes it."""

    kind = "auth_required"

    def __init__(self, message: str, *, fix: str | None = None, agent: str | None = None) -> None:
        super().__init__(message + (f" (run: {fix})" if fix else ""), agent=agent)
        self.fix = fix


class BadAgentOutput(AgentError):
    """The agent answered, but the answer is unusable (invalid JSON, empty, wrong shape)."""

    kind = "bad_output"


class FatalAgentError(AgentError):
    """Anything else that retrying will not fix (4xx, misconfiguration, crashed CLI)."""

    kind = "fatal"


__all__ = [
    "AgentDisconnected",
    "AgentError",
    "AgentTimeout",
    "AgentshellError",
    "AuthRequired",
    "BadAgentOutput",
    "CommandError",
    "ConfigError",
    "FatalAgentError",
    "NotStored",
    "PluginError",
    "RateLimited",
]
