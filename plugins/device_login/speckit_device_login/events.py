"""The device-login plugin's telemetry event: a login, refresh or logout, with the
provider and the outcome only (never a code or a token). No span mapping."""

from __future__ import annotations

from typing import Literal

from agentshell.telemetry import EVENT_TYPES, Event


class AuthEvent(Event):
    type: Literal["auth.login", "auth.refresh", "auth.logout"]
    provider: str
    outcome: str  # "ok", "denied", "expired", "error", "cancelled", ...


# no single default type to register it by: register its three names explicitly
for _name in ("auth.login", "auth.refresh", "auth.logout"):
    EVENT_TYPES[_name] = AuthEvent

__all__ = ["AuthEvent"]
