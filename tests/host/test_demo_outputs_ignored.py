"""Tests that copy a spec (or docs/) leave out what running the README's demo from the
repository root writes there: otherwise a developer who ran the demo first sees tests
fail (a stage "ran" already). The list the tests use is the one .gitignore keeps out."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers.paths import DEMO_OUTPUTS, REPO, without_demo_outputs


def test_the_demo_outputs_the_tests_leave_out_are_the_ignored_ones() -> None:
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8")
    section = ignored.split("# what running the offline demo from the repo root writes")[1]
    patterns = [line for line in section.splitlines() if line.startswith("docs/")]
    names = {Path(pattern).name for pattern in patterns}  # a dir's trailing / goes
    assert names == set(DEMO_OUTPUTS)


def test_a_spec_copied_after_running_the_demo_holds_only_its_spec(tmp_path: Path) -> None:
    source = tmp_path / "docs" / "SPEC-KIT-DEMO"
    source.mkdir(parents=True)
    (source / "spec.md").write_text("# spec\n", encoding="utf-8")
    for name in DEMO_OUTPUTS:
        if name.endswith(".md"):
            (source / name).write_text("written by the demo\n", encoding="utf-8")
    (tmp_path / "docs" / "SPEC-OPS-004-integrated-coder-hooks").mkdir()
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "docs", copy, ignore=without_demo_outputs)
    assert sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*")) == [
        "SPEC-KIT-DEMO",
        "SPEC-KIT-DEMO/spec.md",
    ]
