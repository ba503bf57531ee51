"""The cause of a failed HTTP request in words ("connection refused", "timed out",
"name not resolved"), for error messages that must say why without showing a secret.

httpx's exception class names (``ConnectError``) say what failed but not why; the why
is the OSError at the end of the exception chain (httpx -> httpcore -> socket). Only
fixed phrases and ``os.strerror`` texts are returned, so no URL, header or token from
the exception's message can leak; the last resort (an unknown error) is redacted.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import ssl

from .redact import redact

_DNS = re.compile(
    r"name or service not known|nodename nor servname|name resolution|no address associated"
    r"|getaddrinfo failed",
    re.IGNORECASE,
)

_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by the server",
    errno.ETIMEDOUT: "timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EPIPE: "connection closed by the server",
}


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def describe_http_error(exc: BaseException) -> str:
    """Why an HTTP request failed, in a few words, e.g. ``connection refused``,
    ``connect timed out``, ``name not resolved``, ``TLS certificate not trusted``;
    never the exception's own text unless nothing better is known (then redacted)."""
    import httpx

    # timeouts first: what timed out is the useful part
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect timed out"
    if isinstance(exc, httpx.ReadTimeout):
        return "read timed out"
    if isinstance(exc, httpx.WriteTimeout):
        return "write timed out"
    if isinstance(exc, httpx.PoolTimeout):
        return "no free connection in time"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return "not an http:// or https:// URL"
    chain = _chain(exc)
    for error in chain:
        if isinstance(error, socket.gaierror):
            return "name not resolved"
        if isinstance(error, ssl.SSLCertVerificationError):
            return "TLS certificate not trusted"
        if isinstance(error, ssl.SSLError):
            return "TLS handshake failed"
        if isinstance(error, TimeoutError | socket.timeout):
            return "timed out"
        if isinstance(error, OSError) and error.errno and error.errno > 0:
            return _ERRNO_WORDS.get(error.errno) or os.strerror(error.errno).lower()
    text = " ".join(str(e) for e in chain)
    if _DNS.search(text):
        return "name not resolved"
    if "refused" in text.lower():
        return "connection refused"
    if "certificate" in text.lower():
        return "TLS certificate not trusted"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server closed the connection without a valid answer"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "the connection broke"
    detail = re.sub(r"\[Errno -?\d+\]\s*", "", redact(str(exc))).strip()[:120]
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


__all__ = ["describe_http_error"]
