"""What went wrong talking to an OpenAI-compatible server, in the taxonomy of
:mod:`agentshell.errors` (the runner's retry policy reads it): an HTTP status, a
transport failure (timeout, refused connection, reset), or refused credentials with
the command that fixes them. Messages name the server (``scheme://host:port``), never
a path, query, header or key.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from agentshell.errors import (
    AgentDisconnected,
    AgentError,
    AgentTimeout,
    AuthRequired,
    FatalAgentError,
    RateLimited,
)
from agentshell.neterrors import describe_http_error
from agentshell.redact import redact

from ._openai_decode import error_code, server_message

if TYPE_CHECKING:
    import httpx

    from agentshell.agents import AgentSpec


class Unauthorized(AgentError):
    """A 401, turned into :class:`AuthRequired` by the backend after at most one
    refresh of a provider's token (it may have expired early)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class StreamRefused(AgentError):
    """HTTP 400 naming the ``stream`` parameter: this model does not stream. The
    backend asks again without streaming when streaming was its own idea."""

    def __init__(self, error: AgentError) -> None:
        super().__init__(error.message)
        self.error = error


def refuses_stream(status: int, raw: bytes) -> bool:
    """Whether an error answer says the ``stream`` parameter is not supported."""
    if status != 400:
        return False
    data, _ = server_message(raw)
    error = data.get("error") if isinstance(data, dict) else None
    return isinstance(error, dict) and error.get("param") in ("stream", "stream_options")


def status_error(shell: Any, agent: AgentSpec, response: httpx.Response, raw: bytes) -> AgentError:
    """The error for an HTTP status of 400 or more; ``raw`` is the (capped) error body."""
    status = response.status_code
    data, message = server_message(raw)
    detail = f": {message}" if message else ""
    if status == 429:
        if error_code(data) == "insufficient_quota":  # billing, not a rate: never passes
            return FatalAgentError(f"HTTP 429 (insufficient quota){detail}")
        from agentshell.ratelimit import reset_hint

        reset_at = reset_hint(response.headers, data, message)
        return RateLimited(f"rate limited (HTTP 429){detail}", reset_at=reset_at)
    if status in (401, 403):
        if status == 401:
            return Unauthorized(status, message)
        return auth_error(shell, agent, status, message)
    if status == 408:
        return AgentTimeout(f"the server timed out the request (HTTP 408){detail}")
    if status >= 500:
        return AgentDisconnected(f"server error (HTTP {status}){detail}")
    return FatalAgentError(f"HTTP {status}{detail}")


def auth_error(shell: Any, agent: AgentSpec, status: int, message: str) -> AuthRequired:
    """Refused credentials (401/403), with the command that sets or renews them."""
    ref = agent.auth or ""
    kind, _, rest = ref.partition(":")
    fix: str | None = None
    if kind == "env":
        fix = f"/set-env {rest}=<value>"
    elif kind == "keyring":
        service, _, name = rest.partition("/")
        fix = f"keyring set {service} {name}"
    elif ref:
        provider = shell.auth.provider(kind)
        if provider is not None:
            fix = provider.login_command(rest or None)
    elif isinstance(getattr(agent.options.get("api_key"), "env", None), str):
        fix = f"/set-env {agent.options['api_key'].env}=<value>"
    what = "refused the credentials" if status == 401 else "denied access"
    detail = f": {message}" if message else ""
    return AuthRequired(f"{agent.name}: the server {what} (HTTP {status}){detail}", fix=fix)


def transport_error(exc: BaseException, url: httpx.URL, agent: AgentSpec) -> AgentError | None:
    """The error for an httpx exception raised while sending or reading; ``None`` for
    anything else (a bug, cancellation: the caller re-raises it unchanged)."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return AgentTimeout(
            f"{host(str(url))}: {describe_http_error(exc)}", timeout_s=agent.timeout_s
        )
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return FatalAgentError(f"bad base_url {redact(str(url))!r}: {redact(str(exc))}")
    if isinstance(exc, httpx.ConnectError):
        # "cannot connect to 127.0.0.1:8080: connection refused", not "[Errno 111] ..."
        return AgentDisconnected(f"cannot connect to {netloc(str(url))}: {os_reason(exc)}")
    if isinstance(exc, httpx.TransportError | httpx.StreamError):
        # read/write errors, protocol errors, an incomplete body or stream
        return AgentDisconnected(f"talking to {host(str(url))}: {describe_http_error(exc)}")
    return None


def host(url: str) -> str:
    """``scheme://host:port`` of a URL: enough to say where, never a query or userinfo."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}"


def netloc(url: str) -> str:
    """``host:port`` of a URL, the port filled in from the scheme when implicit."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if not re.search(r":\d+$", host):
        host = f"{host}:{443 if scheme == 'https' else 80}"
    return host


def os_reason(exc: BaseException) -> str:
    """The operating system's reason behind a connect error, in words: the errno of the
    first OSError in the chain ("connection refused"), else the message, redacted."""
    import errno
    import os
    import socket

    seen: BaseException | None = exc
    for _ in range(8):  # the chain: httpx -> httpcore -> OSError
        if seen is None:
            break
        if isinstance(seen, socket.gaierror):
            return "unknown host"
        if isinstance(seen, OSError) and seen.errno and seen.errno > 0:
            if seen.errno == errno.ECONNREFUSED:
                return "connection refused"
            return os.strerror(seen.errno).lower()
        seen = seen.__cause__ or seen.__context__
    text = re.sub(r"\[Errno -?\d+\]\s*", "", redact(str(exc))).strip()
    return text[:200] or "connection failed"


__all__ = [
    "StreamRefused",
    "Unauthorized",
    "auth_error",
    "host",
    "netloc",
    "os_reason",
    "refuses_stream",
    "status_error",
    "transport_error",
]
