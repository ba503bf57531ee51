"""Where the repository's files are, for tests at any depth under tests/."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
TESTS = REPO / "tests"
AGENTS = TESTS / "agents"  # the scripted CLI agents the command backend runs
