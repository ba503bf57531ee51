"""The one spec-id rule, shared by the consensus and resume plugins (public module:
``speckit_resume`` imports it, so both accept and refuse exactly the same ids).

A spec id names a folder under the specs and evidence dirs and starts every branch id,
so it must be one safe path component."""

from __future__ import annotations

import datetime as dt
import re
import uuid

MAX_LEN = 128
RULE = (
    "use letters, digits, '.', '_' or '-' "
    f"(start with a letter or digit, no '..', at most {MAX_LEN} characters)"
)
_SPEC_ID = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_LEN - 1}}}$")
#: ``<SPEC-ID>-<YYYYMMDDHHMMSS>-<8 hex>``: the shape of every branch id
BRANCH_ID = re.compile(
    r"^(?P<spec>[A-Za-z0-9][A-Za-z0-9._-]*)-(?P<ts>\d{14})-(?P<hex>[0-9a-f]{8})$"
)


def is_valid_spec_id(spec_id: str) -> bool:
    return bool(_SPEC_ID.match(spec_id)) and ".." not in spec_id


def spec_id_error(spec_id: str) -> str | None:
    """The one-line reason ``spec_id`` is refused, or None when it is valid."""
    if is_valid_spec_id(spec_id):
        return None
    shown = spec_id if len(spec_id) <= 40 else spec_id[:37] + "..."
    return f"invalid spec id {shown!r} ({len(spec_id)} characters): {RULE}"


def check_spec_id(spec_id: str) -> str:
    """``spec_id`` unchanged, or ValueError with the one-line reason."""
    problem = spec_id_error(spec_id)
    if problem is not None:
        raise ValueError(problem)
    return spec_id


def new_branch_id(spec_id: str, now: dt.datetime | None = None) -> str:
    """A fresh ``<SPEC-ID>-<YYYYMMDDHHMMSS>-<8 hex of a uuid4>`` (UTC timestamp)."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d%H%M%S")
    return f"{check_spec_id(spec_id)}-{stamp}-{uuid.uuid4().hex[:8]}"


def parse_branch_id(branch_id: str) -> tuple[str, str, str] | None:
    """(spec id, timestamp, hex) of a well-formed branch id of a valid spec id, else None."""
    match = BRANCH_ID.match(branch_id)
    if match is None or not is_valid_spec_id(match["spec"]):
        return None
    return (match["spec"], match["ts"], match["hex"])


__all__ = [
    "BRANCH_ID",
    "MAX_LEN",
    "RULE",
    "check_spec_id",
    "is_valid_spec_id",
    "new_branch_id",
    "parse_branch_id",
    "spec_id_error",
]
