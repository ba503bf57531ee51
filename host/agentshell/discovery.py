"""Finding plugins: the entry points of group ``agentshell`` of every installed
distribution, cached in the data dir because scanning all metadata costs tens of
milliseconds at every start.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

ENTRY_POINT_GROUP = "agentshell"


@dataclass(frozen=True)
class PluginEntryPoint:
    """One ``agentshell`` entry point: what discovery found, cacheable as JSON."""

    name: str
    value: str  # "package.module" or "package.module:attr"
    distribution: str = ""
    version: str = ""

    def load(self) -> object:
        # what importlib.metadata.EntryPoint.load does, without importing importlib.metadata
        module_name, _, attrs = self.value.partition(":")
        obj: object = importlib.import_module(module_name.strip())
        for attr in filter(None, attrs.strip().split(".")):
            obj = getattr(obj, attr)
        return obj


CACHE_FILE = "entry-points.json"
_CACHE_VERSION = 1


def _cache_key() -> list[Any]:
    # Installing or removing a distribution changes the mtime of the sys.path directory
    # that holds its metadata, so the key changes with it (stevedore does the same).
    stamps: list[Any] = []
    for entry in sys.path:
        entry = entry or os.getcwd()  # "" is the working directory
        try:
            stamps.append([entry, os.stat(entry).st_mtime_ns])
        except OSError:
            stamps.append([entry, None])
    return [_CACHE_VERSION, sys.executable, sys.version, stamps]


def discover_entry_points(
    cache_dir: str | os.PathLike[str] | None = None,
) -> list[PluginEntryPoint]:
    """Every entry point of group ``agentshell``, agentshell's own first, then by name.

    Scanning every installed distribution's metadata costs tens of milliseconds, so with
    ``cache_dir`` the result is kept in ``<cache_dir>/entry-points.json``, keyed by the
    interpreter, ``sys.path`` and the modification times of its entries. Set
    ``AGENTSHELL_NO_PLUGIN_CACHE=1`` to always scan.
    """
    use_cache = cache_dir is not None and os.environ.get("AGENTSHELL_NO_PLUGIN_CACHE", "") in {
        "",
        "0",
    }
    path = os.path.join(os.fspath(cache_dir), CACHE_FILE) if cache_dir is not None else ""
    key = _cache_key() if use_cache else None
    if use_cache:
        try:
            with open(path, encoding="utf-8") as fh:
                cached = json.load(fh)
            if cached.get("key") == key:
                return [PluginEntryPoint(**item) for item in cached["entry_points"]]
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            pass  # missing or unreadable cache: scan
    from importlib.metadata import entry_points

    found = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        found.append(
            PluginEntryPoint(
                name=ep.name,
                value=ep.value,
                distribution=dist.name if dist else "",
                version=dist.version if dist else "",
            )
        )
    found.sort(key=lambda ep: (ep.distribution != "agentshell", ep.name))
    if use_cache:
        try:
            from .files import atomic_write

            payload = {"key": key, "entry_points": [ep.__dict__ for ep in found]}
            atomic_write(path, json.dumps(payload))
        except OSError:
            pass  # a read-only data dir only costs the scan next time
    return found


__all__ = ["CACHE_FILE", "ENTRY_POINT_GROUP", "PluginEntryPoint", "discover_entry_points"]
