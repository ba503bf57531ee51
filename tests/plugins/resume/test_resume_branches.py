"""The inheritance rule as a property: for random branch trees, eligible_branches agrees
with the rule written the other way round (an ancestor is eligible iff the stage comes
before the fork stage of every branch on the path up to it), and never yields a
non-ancestor."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, strategies as st

from speckit_resume.branches import (
    STAGES,
    ancestors,
    eligible_branches,
    new_branch_id,
    parse_branch_id,
)

# a tree: branch i > 0 has a parent < i and a fork stage; branch 0 (and any i with
# parent None) is a root
trees = st.integers(min_value=1, max_value=12).flatmap(
    lambda n: st.lists(
        st.tuples(st.one_of(st.none(), st.integers(0, n - 1)), st.sampled_from(STAGES)),
        min_size=n,
        max_size=n,
    )
)


@given(trees, st.sampled_from([*STAGES, "deploy"]))
def test_eligible_branches_matches_the_rule(tree: list[tuple[int | None, str]], stage: str) -> None:
    info: dict[str, tuple[str | None, str | None]] = {}
    for i, (parent, fork) in enumerate(tree):
        if parent is not None and parent < i:
            info[f"b{i}"] = (f"b{parent}", fork)
        else:
            info[f"b{i}"] = (None, None)

    def lineage(branch: str) -> tuple[str | None, str | None] | None:
        return info.get(branch)

    for branch in info:
        got = eligible_branches(branch, stage, lineage)
        path = [branch, *ancestors(branch, lineage)]
        expected = [branch]
        for k in range(1, len(path)):
            below = path[:k]  # the branches whose fork links lead up to path[k]
            if stage in STAGES and all(
                STAGES.index(stage) < STAGES.index(str(info[b][1])) for b in below
            ):
                expected.append(path[k])
            else:
                break
        assert got == expected
        assert set(got) <= set(path)  # never a sibling or an unrelated branch


def test_branch_ids() -> None:
    when = dt.datetime(2025, 10, 2, 14, 30, 5, tzinfo=dt.UTC)
    branch = new_branch_id("SPEC-KIT-42", when)
    spec, stamp, hexpart = parse_branch_id(branch) or ("", "", "")
    assert (spec, stamp) == ("SPEC-KIT-42", "20251002143005") and len(hexpart) == 8
    int(hexpart, 16)
    assert new_branch_id("SPEC-KIT-42", when) != branch  # the uuid part differs
    assert parse_branch_id("SPEC-1-2025-abc") is None
