"""The branch rule of conversation items, on its own (pure) and in the real store:
a branch inherits its parent's items up to the fork turn, transitively, never a
sibling's; /compact's branch inherits nothing."""

from __future__ import annotations

from pathlib import Path

from speckit_resume.conversations import (
    ConversationItem,
    Conversations,
    NewItem,
    filter_responses_for_branch,
)
from speckit_resume.store import Store

LINEAGE = {
    "root": (None, None),
    "child": ("root", 2),  # keeps root's turns 1-2
    "grandchild": ("child", 4),  # keeps child's turns 3-4 and root's 1-2
    "sibling": ("root", 1),
    "compacted": ("root", -1),
}


def item(i: int, branch: str, turn: int) -> ConversationItem:
    return ConversationItem(i, "c", branch, turn, "user", None, None, f"{branch}:{turn}")


def contents(items: list[ConversationItem]) -> list[str]:
    return [i.content for i in items]


def test_filter_keeps_only_the_path_of_the_branch() -> None:
    items = [item(n, "root", t) for n, t in enumerate(range(1, 5), 1)]
    items += [item(10 + t, "child", t) for t in (3, 4, 5)]
    items += [item(20 + t, "grandchild", t) for t in (5, 6)]
    items += [item(30 + t, "sibling", t) for t in (2, 3)]
    lineage = LINEAGE.get
    assert contents(filter_responses_for_branch(items, "grandchild", lineage)) == [
        "root:1", "root:2", "child:3", "child:4", "grandchild:5", "grandchild:6",
    ]  # fmt: skip
    assert contents(filter_responses_for_branch(items, "sibling", lineage)) == [
        "root:1", "sibling:2", "sibling:3",
    ]  # fmt: skip
    assert contents(filter_responses_for_branch(items, "compacted", lineage)) == []
    assert contents(filter_responses_for_branch(items, "unknown", lineage)) == []


def test_the_store_loads_the_same_path(tmp_path: Path) -> None:
    store = Store(tmp_path / "resume.sqlite3")
    conversations = Conversations(lambda: store, path=str(store.path))
    conversation, root = conversations.create(agent="gpt", title="t")
    for turn in (1, 2, 3):
        conversations.append(conversation, root, turn, [NewItem("user", f"root {turn}")])
    child = conversations.fork(conversation, root, 2, "undo")
    conversations.append(conversation, child, 3, [NewItem("user", "child 3")])
    assert contents(conversations.load(child)) == ["root 1", "root 2", "child 3"]
    assert contents(conversations.load(root)) == ["root 1", "root 2", "root 3"]
    # a new session (nothing cached) reads the same
    again = Conversations(lambda: store, path=str(store.path))
    assert contents(again.load(child)) == ["root 1", "root 2", "child 3"]
    info = again.find(conversation[:4])
    assert (info.current_branch_id, info.branches, info.items) == (child, 2, 4)
    assert again.ids(conversation[:3]) == [conversation]
