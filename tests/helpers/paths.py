"""Where the repository's files are, for tests at any depth under tests/."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
TESTS = REPO / "tests"
AGENTS = TESTS / "agents"  # the scripted CLI agents the command backend runs

# what running the README's offline demo from the repository root writes into docs/ (and
# .gitignore leaves out): a test copying a spec (or docs/) must not copy it, or its
# results would depend on whether the developer ran the demo before the tests
DEMO_OUTPUTS = (
    "plan.md",
    "tasks.md",
    "implement.md",
    "validate.md",
    "audit.md",
    "unlock.md",
    "SPEC-OPS-004-integrated-coder-hooks",
)


def without_demo_outputs(directory: str, names: list[str]) -> set[str]:
    """``shutil.copytree(..., ignore=without_demo_outputs)``: the tracked files only."""
    return {name for name in names if name in DEMO_OUTPUTS}
