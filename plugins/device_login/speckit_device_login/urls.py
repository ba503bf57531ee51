"""Only https, except on loopback: a device code or token sent over plain http to
another host could be read by anyone on the path."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

LOOPBACK_NAMES = {"localhost"}


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(url: str, what: str) -> str:
    """Return ``url`` if it is https (or http on a loopback host); raise ValueError."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and host and is_loopback(host):
        return url
    raise ValueError(
        f"refusing {what} {url!r}: only https is allowed "
        "(http only for 127.0.0.1, ::1 or localhost)"
    )
