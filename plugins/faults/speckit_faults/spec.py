"""Parsing the fault environment: ``CODEX_FAULTS``, ``CODEX_FAULTS_429_RESET`` and
``CODEX_FAULTS_TIMEOUT_MS``.

Unlike the source system, nothing malformed is silently ignored: every parser returns
what it understood plus a list of problems, each naming the offending entry, so the
shell can start anyway and say what it skipped.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["disconnect", "rate_limit", "timeout"]

#: injection priority: one fault per attempt, the first kind with a count left
KINDS: tuple[FaultKind, ...] = ("disconnect", "rate_limit", "timeout")
ALIASES: dict[str, FaultKind] = {
    "disconnect": "disconnect",
    "429": "rate_limit",
    "rate_limit": "rate_limit",
    "timeout": "timeout",
}
#: how a kind is written in CODEX_FAULTS (what /faults shows)
LABELS: dict[FaultKind, str] = {
    "disconnect": "disconnect",
    "rate_limit": "429",
    "timeout": "timeout",
}

DEFAULT_TIMEOUT_MS = 30_000
#: the largest count one entry may ask for: more faults than any run could meet
MAX_COUNT = 1_000_000
ENV_FAULTS = "CODEX_FAULTS"
ENV_SCOPE = "CODEX_FAULTS_SCOPE"
ENV_RESET = "CODEX_FAULTS_429_RESET"
ENV_TIMEOUT = "CODEX_FAULTS_TIMEOUT_MS"
SCOPES = frozenset({"spec_kit", "speckit"})

_KINDS_HELP = "kinds: disconnect, 429 (or rate_limit), timeout"


@dataclass
class ParsedFaults:
    counts: dict[FaultKind, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    #: one (entry, why) per malformed entry; ``problems`` says how the source treats it
    bad: list[tuple[str, str]] = field(default_factory=list)
    source: str = ENV_FAULTS

    @property
    def problems(self) -> list[str]:
        """One line per bad entry, as the environment treats it: ignored, the rest kept."""
        return [f"{self.source}: ignored entry {entry!r}: {why}" for entry, why in self.bad]

    def describe(self) -> str:
        parts = [f"{LABELS[k]}:{n}" for k, n in self.counts.items() if n]
        return ",".join(parts) or "none"


def parse_faults(text: str, source: str = ENV_FAULTS) -> ParsedFaults:
    """``"disconnect:3, 429:1,timeout:2"`` -> counts per kind. Repeated kinds add up;
    empty entries (a trailing comma) are skipped; anything else malformed is a problem."""
    result = ParsedFaults(source=source)
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        kind_text, sep, count_text = entry.partition(":")
        kind = ALIASES.get(kind_text.strip().lower())
        count_text = count_text.strip()
        if kind is None:
            result.bad.append((entry, f"unknown kind {kind_text.strip()!r} ({_KINDS_HELP})"))
        elif not sep or not count_text.isascii() or not count_text.isdigit():
            result.bad.append(
                (entry, "expected kind:count with a whole number >= 0, e.g. disconnect:3")
            )
        elif len(count_text.lstrip("0")) > len(str(MAX_COUNT)) or int(count_text) > MAX_COUNT:
            # length first: int() of thousands of digits is slow or refused outright
            result.bad.append(
                (entry, f"count too large; use a whole number from 0 to {MAX_COUNT:,}")
            )
        else:
            result.counts[kind] += int(count_text)
    return result


_RELATIVE = re.compile(r"^(?:now\s*\+\s*)?(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$", re.IGNORECASE)
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class ResetHint:
    """When an injected 429 says to come back: ``delay_s`` after injection, or ``at``."""

    delay_s: float | None = None
    at: dt.datetime | None = None

    def reset_at(self, now: dt.datetime) -> dt.datetime:
        if self.at is not None:
            return self.at
        return now + dt.timedelta(seconds=self.delay_s or 0.0)

    def describe(self) -> str:
        return self.at.isoformat() if self.at is not None else f"now+{self.delay_s:g}s"


def parse_reset(text: str) -> tuple[ResetHint | None, str | None]:
    """``now+30s``, ``30s``, ``30``, ``now+2m``, ``now+500ms`` or an RFC 3339 timestamp.
    Returns ``(hint, problem)``; an empty value is no hint and no problem."""
    value = text.strip()
    if not value:
        return None, None
    match = _RELATIVE.match(value)
    if match:
        seconds = float(match.group(1)) * _UNIT_S[(match.group(2) or "s").lower()]
        return ResetHint(delay_s=seconds), None
    try:
        at = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        at = None
    if at is None or len(value) <= 10:  # a bare date is not a moment
        return None, (
            f"{ENV_RESET}: ignored {value!r}: use now+30s, 30s, 30, now+2m or an "
            "RFC 3339 timestamp such as 2030-01-01T00:00:00Z"
        )
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return ResetHint(at=at), None


def parse_timeout_ms(text: str | None) -> tuple[int, str | None]:
    """The simulated timeout in milliseconds (default 30000) and a problem, if any."""
    if text is None or not text.strip():
        return DEFAULT_TIMEOUT_MS, None
    value = text.strip()
    if value.isascii() and value.isdigit() and int(value) > 0:
        return int(value), None
    return DEFAULT_TIMEOUT_MS, (
        f"{ENV_TIMEOUT}: ignored {value!r}: expected a whole number of milliseconds > 0; "
        f"using {DEFAULT_TIMEOUT_MS}"
    )


def scope_enabled(value: str | None) -> bool:
    return (value or "").strip().lower() in SCOPES


__all__ = [
    "ALIASES",
    "DEFAULT_TIMEOUT_MS",
    "KINDS",
    "LABELS",
    "MAX_COUNT",
    "FaultKind",
    "ParsedFaults",
    "ResetHint",
    "parse_faults",
    "parse_reset",
    "parse_timeout_ms",
    "scope_enabled",
]
