"""The fault counters and the decision of which fault an attempt gets.

Counters are exact under concurrency: the check and the decrement happen under one
lock with no ``await`` in between (the source system checked, then decremented later,
so concurrent calls could all pass the check and the counter underflowed and fired
forever). Nothing here knows about the shell; the plugin turns a :class:`Fault` into
the taxonomy error, an event and a line in the REPL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .spec import KINDS, LABELS, FaultKind


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    remaining: int  # of this kind, after this one


class FaultInjector:
    def __init__(
        self,
        counts: Mapping[FaultKind, int] | None = None,
        *,
        agents: Iterable[str] = (),
        stages: Iterable[str] = (),
    ) -> None:
        self._lock = threading.Lock()
        self._remaining: dict[FaultKind, int] = dict.fromkeys(KINDS, 0)
        self._injected: dict[FaultKind, int] = dict.fromkeys(KINDS, 0)
        self.agents = frozenset(agents)
        self.stages = frozenset(stages)
        self.set_counts(counts or {})

    def set_counts(self, counts: Mapping[FaultKind, int]) -> None:
        """Replace what remains (``/faults set``); kinds not given drop to 0."""
        with self._lock:
            self._remaining = {k: max(int(counts.get(k, 0)), 0) for k in KINDS}

    def clear(self) -> None:
        self.set_counts({})

    def targets(self, agent: str, stage: object) -> bool:
        if self.agents and agent not in self.agents:
            return False
        return not self.stages or (isinstance(stage, str) and stage in self.stages)

    def take(self, agent: str, stage: object = None) -> Fault | None:
        """The fault for this attempt, consuming one count; None when nothing is due."""
        if not self.targets(agent, stage):
            return None
        with self._lock:
            for kind in KINDS:
                left = self._remaining[kind]
                if left > 0:
                    self._remaining[kind] = left - 1
                    self._injected[kind] += 1
                    return Fault(kind, left - 1)
        return None

    @property
    def remaining(self) -> dict[FaultKind, int]:
        with self._lock:
            return dict(self._remaining)

    @property
    def injected(self) -> dict[FaultKind, int]:
        with self._lock:
            return dict(self._injected)

    @property
    def pending(self) -> bool:
        with self._lock:
            return any(self._remaining.values())

    def describe(self) -> str:
        remaining = self.remaining
        return ",".join(f"{LABELS[k]}:{remaining[k]}" for k in KINDS)


__all__ = ["Fault", "FaultInjector"]
