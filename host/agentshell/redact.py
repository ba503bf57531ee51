"""Keep secrets out of history, logs, telemetry, artefacts and error text.

Two layers: every secret value the process learns (API keys read from the
environment, OAuth tokens, device codes) is registered with :func:`register_secret`
and scrubbed wherever it appears; and text that looks like a secret assignment or a
bearer token is masked by pattern even when the value was never registered.
"""

from __future__ import annotations

import re
import threading
from typing import Any

MASK = "****"

# a name that ENDS in a secret word: ``OPENAI_API_KEY``, ``access_token``, ``client_secret``
# (``input_tokens`` or ``max_tokens`` are counts, not secrets)
_SECRET_WORD = r"(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|AUTH|AUTHORIZATION|DEVICE_CODE)"
_SECRET_NAME = rf"(?:[A-Za-z0-9_.-]*[_.-])?{_SECRET_WORD}\d*(?![A-Za-z0-9_.-])"
# a value is masked unless it is empty or a structure (``api_key = { env = "NAME" }`` is a
# reference, not a secret); a bare ``auth = ...`` names where credentials come from
_VALUE = r"(\"[^\"]+\"|'[^']+'|[^\s{\[\"']\S*)"
# ``NAME=value`` is always an assignment; ``name: value`` only when the name is compound
# (``api_key:``, ``X-Api-Key:``, ``"access_token":``), so prose such as
# "waiting for authorization: 9:30 left" is left alone
_ASSIGNMENT = re.compile(rf"(?i)\b(?!auth\s*=)({_SECRET_NAME})(\s*=\s*)" + _VALUE)
_COLON = re.compile(
    rf"(?i)(\"?)\b([A-Za-z0-9.]*[_-][A-Za-z0-9_.-]*?[_.-]?{_SECRET_WORD}\d*)\1(\s*:\s*)" + _VALUE
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{4,}")
_KNOWN_PREFIXES = re.compile(
    r"\b(sk-[A-Za-z0-9_-]{8,}|gh[pousr]_[A-Za-z0-9]{16,}|xox[abp]-[A-Za-z0-9-]{10,})"
)

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

SECRET_KEY_NAMES = re.compile(
    r"(?i)(key|token|secret|password|passwd|credential|authorization|device_code)"
)


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that :func:`redact` masks it wherever it appears."""
    global _pattern
    if not value or len(value) < 4:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    """Return ``text`` with registered secrets and secret-looking values masked."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    # bearer first: "Authorization: Bearer X" would otherwise mask only the word "Bearer"
    text = _BEARER.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _ASSIGNMENT.sub(_mask_assignment, text)
    text = _COLON.sub(_mask_colon, text)
    return _KNOWN_PREFIXES.sub(MASK, text)


# a secret-looking name, ``=`` or ``:``, and a quote not closed yet on this line: the
# quoted value may still grow, spaces and all
_OPEN_QUOTE = re.compile(rf"(?i)\b{_SECRET_NAME}\s*[=:]\s*[\"'][^\"'\n]*$")


def settled(text: str) -> int:
    """How much of ``text`` (the beginning of a text still arriving, such as a streamed
    answer) can be redacted and shown now: :func:`redact` masks it the same way
    whatever follows. The word being written is held back until a space or newline
    ends it, so a secret split across two pieces is masked whole (every pattern masks
    whole words: a registered secret, a ``sk-`` key, the value after ``NAME=`` or
    ``Bearer``). A quoted value after a secret-looking name is held back until its
    closing quote, as it may hold spaces."""
    line = text.rfind("\n") + 1
    open_quote = _OPEN_QUOTE.search(text, line)
    if open_quote is not None:
        return open_quote.start()
    return max(text.rfind(" "), text.rfind("\n"), text.rfind("\t")) + 1


def redact_tree(value: Any) -> Any:
    """A JSON-like value (dicts, lists, tuples) with :func:`redact` applied to every
    string in it, keys included; tuples come back as lists."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): redact_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v) for v in value]
    return value


def contains_registered_secret(text: str) -> bool:
    """Whether ``text`` holds a value given to :func:`register_secret` (a cheap screen:
    one search, no masking)."""
    pattern = _pattern
    return pattern is not None and pattern.search(text) is not None


# "/set-env OPENAI_API_KEY=<value>" is a hint, not a secret: keep placeholders readable.
_PLACEHOLDER = re.compile(r"<[A-Za-z_ -]{1,20}>[)\].,;:'\"]*")


def _looks_secret(value: str) -> bool:
    """After ``name: `` only a quoted value or a token-like word is masked, so prose
    ("client_secret: Value error, ...") stays readable."""
    if value[:1] in "\"'":
        return True
    return len(value) >= 8 and not value.isalpha()


def _mask_colon(m: re.Match[str]) -> str:
    if not _looks_secret(m.group(4)):
        return m.group(0)
    return f"{m.group(1)}{m.group(2)}{m.group(1)}{m.group(3)}{MASK}"


def _mask_assignment(m: re.Match[str]) -> str:
    # a placeholder, or a value already masked (``api_key = "****"`` stays valid TOML)
    if _PLACEHOLDER.fullmatch(m.group(3)) or m.group(3).strip("\"'") == MASK:
        return m.group(0)
    return f"{m.group(1)}{m.group(2)}{MASK}"


# addresses, not secrets: ``token_endpoint``, ``device_authorization_endpoint``, ``issuer``
_ADDRESS_KEY = re.compile(r"(?i)(?:[_.-](?:endpoint|url|uri)|^(?:endpoint|url|uri|issuer))$")


def is_secret_key(name: str) -> bool:
    """Whether a config key or header name conventionally holds a secret."""
    return bool(SECRET_KEY_NAMES.search(name)) and not _ADDRESS_KEY.search(name)


__all__ = [
    "MASK",
    "contains_registered_secret",
    "is_secret_key",
    "redact",
    "redact_tree",
    "register_secret",
    "settled",
]
