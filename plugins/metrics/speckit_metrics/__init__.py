"""speckit_metrics: session token metrics, per-agent cost, budget alerts, /metrics.

The entry point is :mod:`speckit_metrics.plugin`; :class:`SessionMetrics` is the
token bookkeeping it is built on (importable on its own, no dependencies beyond
``agentshell.TokenUsage``).
"""

from __future__ import annotations

from .session import SessionMetrics

__all__ = ["SessionMetrics"]
