"""The second line of defence: sinks scrub every string field of an event with
:func:`agentshell.redact.redact` before writing it.

Events never carry secrets by construction. ``redact()`` costs microseconds per string,
so a batch is first screened with cheap substring tests and only suspicious batches are
scrubbed field by field (never the serialized JSON: a mask could swallow its quotes and
braces).
"""

from __future__ import annotations

import operator
import types
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from ..redact import contains_registered_secret, redact
from .events import Event

_SECRET_HINTS = (
    "key", "token", "secret", "passw", "credential", "auth", "bearer",
    "sk-", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xox",
)  # fmt: skip


_Getter = Callable[[dict[str, Any]], tuple[Any, ...]]
_screens: dict[type[Event], tuple[_Getter, _Getter]] = {}


def _may_hold_text(annotation: Any) -> bool:
    if annotation is None or annotation is type(None):
        return False
    if isinstance(annotation, type):
        if issubclass(annotation, bool | int | float):
            return False
        if issubclass(annotation, BaseModel):
            return any(_may_hold_text(f.annotation) for f in annotation.model_fields.values())
        return True
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return any(_may_hold_text(a) for a in args)
    return True  # list[str], dict[...], anything else


def _screen_for(cls: type[Event]) -> tuple[_Getter, _Getter]:
    """Per event class: getters of its string-typed fields and of its other fields that
    may hold strings (lists, dicts, nested models). ``type`` is left out: its values
    (a plugin's "x.tokens", "x.auth_refresh") would trip the screen on every such event."""
    scalars: list[str] = []
    others: list[str] = []
    for name, info in cls.model_fields.items():
        note = repr(info.annotation)
        if name == "type" or "Literal" in note:
            continue
        if info.annotation in (str, str | None):
            scalars.append(name)
        elif _may_hold_text(info.annotation):
            others.append(name)

    def getter(names: list[str]) -> _Getter:
        # itemgetter returns a bare value for one name; always hand back a tuple
        if not names:
            return lambda d: ()
        if len(names) == 1:
            one = names[0]
            return lambda d: (d[one],)
        return operator.itemgetter(*names)

    _screens[cls] = screen = (getter(scalars), getter(others))
    return screen


def _screen_text(events: list[Event]) -> str:
    # the string values of a batch, gathered with C-level getters (this runs for every
    # event a sink writes, so it must cost well under a microsecond per event)
    parts: list[str] = []
    for event in events:
        screen = _screens.get(event.__class__) or _screen_for(event.__class__)
        values = event.__dict__
        parts.extend(filter(None, screen[0](values)))
        for value in screen[1](values):
            if value.__class__ is str:
                parts.append(value)
            elif value:  # lists, dicts, nested models: their text form is enough to screen
                parts.append(str(value))
    return "\x00".join(parts)


def _suspicious(text: str) -> bool:
    low = text.lower()
    if any(hint in low for hint in _SECRET_HINTS):
        return True
    return contains_registered_secret(text)  # the secrets the process has learnt


def _redact_event(event: Event) -> Event:
    update: dict[str, Any] = {}
    for name, value in event.__dict__.items():
        if name == "type":
            continue
        if isinstance(value, str):
            clean = redact(value)
            if clean != value:
                update[name] = clean
        elif isinstance(value, list) and any(isinstance(v, str) for v in value):
            cleaned = [redact(v) if isinstance(v, str) else v for v in value]
            if cleaned != value:
                update[name] = cleaned
        elif isinstance(value, dict):  # a third party's event with a mapping field
            table = {k: redact(v) if isinstance(v, str) else v for k, v in value.items()}
            if table != value:
                update[name] = table
    return event.model_copy(update=update) if update else event


def redact_events(events: list[Event]) -> list[Event]:
    """``events`` with :func:`agentshell.redact.redact` applied to every string field
    (copies only where something changed; the originals are shared with other sinks)."""
    if not _suspicious(_screen_text(events)):
        return events
    return [_redact_event(e) for e in events]


__all__ = ["redact_events"]
