"""Reading a server's "come back at" hint from a rate-limited answer.

Providers say it in different places, so :func:`reset_hint` looks in all of them, most
authoritative first:

1. ``Retry-After`` (delta seconds or an HTTP date) and ``retry-after-ms``;
2. ``x-ratelimit-reset-requests`` / ``x-ratelimit-reset-tokens`` (Go-style durations such
   as ``1s``, ``6m0s``, ``250ms``) and ``x-ratelimit-reset`` (seconds or epoch seconds);
3. the error body: ``reset_seconds``, ``resets_in_seconds``, ``retry_after``,
   ``reset_at`` (RFC 3339 or epoch seconds), at the top level or under ``error``;
4. the error message: "Please try again in 17.252s" (also ``ms``, ``1m30s``).

Every function takes ``now`` so tests need no real clock. Values that cannot be parsed
are ignored rather than raised: a bad hint must not turn a retryable error fatal.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "parse_duration",
    "parse_retry_after",
    "parse_timestamp",
    "reset_from_body",
    "reset_from_headers",
    "reset_from_message",
    "reset_hint",
]

# Hints further away than this are treated as nonsense (a misparsed unit, say).
_MAX_WAIT_S = 7 * 24 * 3600.0
# Numbers above this are epoch seconds rather than a delay.
_EPOCH_THRESHOLD = 1_000_000_000

_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|us|µs|ns|h|m|s)")
_DURATION = re.compile(r"^(?:(?:\d+(?:\.\d*)?|\.\d+)\s*(?:ms|us|µs|ns|h|m|s)\s*)+$")
_TRY_AGAIN = re.compile(
    r"(?i)(?:try again|retry|reset[s]?)\s+(?:in|after)\s+"
    r"((?:(?:\d+(?:\.\d*)?|\.\d+)\s*"
    r"(?:(?:milliseconds?|seconds?|secs?|minutes?|mins?|hours?)\b|(?:ms|us|µs|ns|h|m|s)(?![a-z]))"
    r"\s*)+)"
)
_WORD_UNITS = {"milliseconds": "ms", "millisecond": "ms", "hours": "h", "hour": "h"}
_WORD_UNITS |= {"seconds": "s", "second": "s", "secs": "s", "sec": "s"}
_WORD_UNITS |= {"minutes": "m", "minute": "m", "mins": "m", "min": "m"}


def _utc(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    return now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)


def _after(now: dt.datetime, seconds: float) -> dt.datetime | None:
    if not math.isfinite(seconds) or seconds < 0 or seconds > _MAX_WAIT_S:
        return None
    return now + dt.timedelta(seconds=seconds)


def parse_duration(text: str) -> float | None:
    """Seconds in ``"1s"``, ``"6m0s"``, ``"250ms"``, ``"1h2m3.5s"`` or a bare number."""
    value = text.strip().lower()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    if not _DURATION.match(value):
        return None
    return sum(float(num) * _UNIT_S[unit] for num, unit in _DURATION_PART.findall(value))


def parse_timestamp(value: Any) -> dt.datetime | None:
    """An absolute time from RFC 3339 text, an HTTP date, or epoch seconds."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if value > _EPOCH_THRESHOLD * 1000:  # epoch milliseconds
            value = value / 1000
        try:
            return dt.datetime.fromtimestamp(float(value), dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return parse_timestamp(number)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def parse_retry_after(value: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """``Retry-After``: delay seconds (RFC 9110) or an HTTP date."""
    now = _utc(now)
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        when = parse_timestamp(text)
        return None if when is None else max(when, now)
    return _after(now, seconds)


def _reset_value(value: str, now: dt.datetime) -> dt.datetime | None:
    """``x-ratelimit-reset*``: a duration, a delay in seconds, or epoch seconds."""
    seconds = parse_duration(value)
    if seconds is None:
        when = parse_timestamp(value)
        return None if when is None else max(when, now)
    if seconds > _EPOCH_THRESHOLD:
        return max(dt.datetime.fromtimestamp(seconds, dt.UTC), now)
    return _after(now, seconds)


def reset_from_headers(
    headers: Mapping[str, str], now: dt.datetime | None = None
) -> dt.datetime | None:
    """The reset time said by response headers, or ``None``."""
    now = _utc(now)
    lower = {key.lower(): value for key, value in headers.items()}
    if "retry-after-ms" in lower:
        try:
            hint = _after(now, float(lower["retry-after-ms"]) / 1000)
        except ValueError:
            hint = None
        if hint is not None:
            return hint
    if "retry-after" in lower:
        hint = parse_retry_after(lower["retry-after"], now)
        if hint is not None:
            return hint
    # Only the exhausted limit matters; when neither says 0 remaining, wait for both.
    candidates: list[dt.datetime] = []
    exhausted: list[dt.datetime] = []
    for kind in ("requests", "tokens"):
        raw = lower.get(f"x-ratelimit-reset-{kind}")
        when = _reset_value(raw, now) if raw else None
        if when is None:
            continue
        candidates.append(when)
        if lower.get(f"x-ratelimit-remaining-{kind}", "").strip() == "0":
            exhausted.append(when)
    if exhausted or candidates:
        return max(exhausted or candidates)
    raw = lower.get("x-ratelimit-reset")
    return _reset_value(raw, now) if raw else None


def reset_from_message(message: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """ "Please try again in 17.252s" (or ``in 20ms``, ``in 1m30s``, ``in 3 seconds``)."""
    match = _TRY_AGAIN.search(message)
    if match is None:
        return None
    text = match.group(1).lower()
    for word, unit in sorted(_WORD_UNITS.items(), key=lambda item: -len(item[0])):
        text = re.sub(rf"(?<=[\d\s]){word}\b", unit, text)
    seconds = parse_duration(text.replace(" ", ""))
    return None if seconds is None else _after(_utc(now), seconds)


_SECONDS_KEYS = ("reset_seconds", "resets_in_seconds", "retry_after", "retry_after_seconds")
_TIME_KEYS = ("reset_at", "resets_at", "reset_time")


def _from_object(obj: Mapping[str, Any], now: dt.datetime) -> dt.datetime | None:
    for key in _SECONDS_KEYS:
        value = obj.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            hint = _after(now, float(value))
        elif isinstance(value, str):
            seconds = parse_duration(value)
            hint = None if seconds is None else _after(now, seconds)
        else:
            continue
        if hint is not None:
            return hint
    for key in _TIME_KEYS:
        when = parse_timestamp(obj.get(key))
        if when is not None:
            return max(when, now)
    return None


def reset_from_body(body: Any, now: dt.datetime | None = None) -> dt.datetime | None:
    """The reset time in a decoded JSON error body (top level, or under ``error``)."""
    now = _utc(now)
    if not isinstance(body, Mapping):
        return None
    objects: list[Mapping[str, Any]] = [body]
    error = body.get("error")
    if isinstance(error, Mapping):
        objects.insert(0, error)
        details = error.get("details") or error.get("metadata")
        if isinstance(details, Mapping):
            objects.append(details)
    for obj in objects:
        hint = _from_object(obj, now)
        if hint is not None:
            return hint
    for obj in objects:
        message = obj.get("message")
        if isinstance(message, str):
            hint = reset_from_message(message, now)
            if hint is not None:
                return hint
    return None


def reset_hint(
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    message: str | None = None,
    now: dt.datetime | None = None,
) -> dt.datetime | None:
    """The first reset time found in headers, then the body, then the message."""
    now = _utc(now)
    hint = reset_from_headers(headers, now) if headers else None
    if hint is None and body is not None:
        hint = reset_from_body(body, now)
    if hint is None and message:
        hint = reset_from_message(message, now)
    return hint
