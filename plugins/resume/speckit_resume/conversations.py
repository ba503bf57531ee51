"""Chat conversations in the resume store: items on branches, loaded branch-aware.

A conversation is a tree of branches. Each item (a ``user``, ``assistant`` or
``system`` message) belongs to one branch and one turn. A child branch is forked from
its parent at ``fork_turn``: it inherits the parent's items of turns up to and
including ``fork_turn`` (and, transitively, what the parent inherited, up to the
smallest fork point on the way up); everything after belongs to the child alone. So
``/undo`` is a child forked at the turn before the last, ``/fork N`` one forked at
turn N, and the old branch is kept, whole.

Only the items on the current branch's path are ever sent to a model:
:func:`filter_responses_for_branch` is that rule (the seed's name), pure and tested on
its own; :meth:`Conversations.load` reads just the path's branches from the index and
applies it.

Published at ``shell.state["speckit.resume.conversations"]`` (see plugin.py); the chat
plugin (``agentshell-chat``) is its user. Every write is one short transaction, so a
process killed mid-answer keeps every finished turn and no half of one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from agentshell.agents import TokenUsage
from agentshell.errors import CommandError, NotStored
from agentshell.redact import redact

if TYPE_CHECKING:  # sqlite3 and the store load on first use, not at start-up
    import sqlite3

    from .store import Store

CONVERSATIONS_KEY = "speckit.resume.conversations"

Role = Literal["user", "assistant", "system"]
#: branch id -> (parent branch id, fork turn), or None when the branch is unknown
TurnLineage = Callable[[str], tuple[str | None, int | None] | None]

_ITEM_COLUMNS = (
    "id, conversation_id, branch_id, turn, role, agent, model, content, input_tokens,"
    " cached_input_tokens, output_tokens, total_tokens, cost_usd, status, created_at"
)


@dataclass(frozen=True, slots=True)
class ConversationItem:
    """One stored message."""

    id: int
    conversation_id: str
    branch_id: str
    turn: int
    role: Role
    agent: str | None
    model: str | None
    content: str
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None
    status: str = "ok"
    created_at: float = 0.0

    @property
    def usage(self) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input_tokens,
            cached_input_tokens=self.cached_input_tokens,
            output_tokens=self.output_tokens,
            total_tokens=self.total_tokens,
        )

    def message(self) -> dict[str, str]:
        """The chat-completions message this item is."""
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, slots=True)
class NewItem:
    """An item to store: what a turn adds."""

    role: Role
    content: str
    agent: str | None = None
    model: str | None = None
    usage: TokenUsage | None = None
    cost_usd: float | None = None
    status: Literal["ok", "cancelled"] = "ok"


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    """A conversation as ``/conversations`` lists it."""

    conversation_id: str
    title: str
    agent: str | None
    current_branch_id: str
    branches: int
    items: int
    created_at: float
    updated_at: float


def path_limits(branch_id: str, lineage: TurnLineage) -> dict[str, float]:
    """The branches on ``branch_id``'s path, each with the last turn it contributes:
    the branch itself all of them, each ancestor up to the smallest fork turn below
    it. Cycles (a corrupt store) are cut."""
    limits: dict[str, float] = {branch_id: float("inf")}
    limit = float("inf")
    current = branch_id
    while True:
        info = lineage(current)
        if info is None:
            break
        parent, fork = info
        if parent is None or parent in limits or fork is None:
            break
        limit = min(limit, fork)
        limits[parent] = limit
        current = parent
    return limits


def filter_responses_for_branch(
    items: Iterable[ConversationItem], branch_id: str, lineage: TurnLineage
) -> list[ConversationItem]:
    """The items on the current branch's path, in conversation order (turn, then the
    order stored): the branch's own items and what it inherits from its ancestors.
    Items of sibling branches, and a parent's items after the fork, are left out."""
    limits = path_limits(branch_id, lineage)
    kept = [i for i in items if i.turn <= limits.get(i.branch_id, -1)]
    kept.sort(key=lambda i: (i.turn, i.id))
    return kept


def _new_id() -> str:
    return os.urandom(6).hex()  # 12 hex digits: unique enough per store, short to type


def _item(row: sqlite3.Row) -> ConversationItem:
    return ConversationItem(*row)  # the columns are in _ITEM_COLUMNS' order: the fields' order


class Conversations:
    """The conversation API over the resume store (opened on first use)."""

    def __init__(self, store: Callable[[], Store], *, path: str = "") -> None:
        self._open = store
        self.path = path
        self._lineage: dict[str, tuple[str | None, int | None]] = {}

    @property
    def store(self) -> Store:
        return self._open()

    @contextmanager
    def _storing(self, what: str) -> Iterator[None]:
        """A database or file error while writing is :class:`NotStored`: one line naming
        the store, and the turn is reported as not kept (never as a traceback)."""
        import sqlite3

        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            cause = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
            where = f"the resume store {self.path}"
            raise NotStored(f"cannot store {what} in {where}: {cause}") from None

    # -- branches ----------------------------------------------------------------------

    def lineage(self, branch_id: str) -> tuple[str | None, int | None] | None:
        cached = self._lineage.get(branch_id)
        if cached is not None:
            return cached
        rows = self.store.query(
            "SELECT parent_branch_id, fork_turn FROM conversation_branches WHERE branch_id = ?",
            (branch_id,),
        )
        if not rows:
            return None
        info = (rows[0][0], rows[0][1])
        self._lineage[branch_id] = info
        return info

    def create(self, *, agent: str | None, title: str = "") -> tuple[str, str]:
        """A new conversation with its root branch: ``(conversation_id, branch_id)``."""
        conversation_id, branch_id, now = _new_id(), _new_id(), time.time()
        with self._storing("a new conversation"), self.store.write() as conn:
            conn.execute(
                "INSERT INTO conversations(conversation_id, title, agent, current_branch_id,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (conversation_id, redact(title)[:80], agent, branch_id, now, now),
            )
            conn.execute(
                "INSERT INTO conversation_branches(branch_id, conversation_id, parent_branch_id,"
                " fork_turn, reason, created_at) VALUES (?, ?, NULL, NULL, 'new', ?)",
                (branch_id, conversation_id, now),
            )
        self._lineage[branch_id] = (None, None)
        return conversation_id, branch_id

    def fork(self, conversation_id: str, branch_id: str, fork_turn: int, reason: str) -> str:
        """A child of ``branch_id`` that keeps turns ``<= fork_turn`` (``-1``: none, a
        compacted history starts afresh); it becomes the conversation's current
        branch. The parent stays as it was."""
        child, now = _new_id(), time.time()
        with self._storing(f"a branch of conversation {conversation_id}"), self.store.write() as c:
            c.execute(
                "INSERT INTO conversation_branches(branch_id, conversation_id, parent_branch_id,"
                " fork_turn, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (child, conversation_id, branch_id, max(-1, int(fork_turn)), reason, now),
            )
            c.execute(
                "UPDATE conversations SET current_branch_id = ?, updated_at = ?"
                " WHERE conversation_id = ?",
                (child, now, conversation_id),
            )
        self._lineage[child] = (branch_id, max(-1, int(fork_turn)))
        return child

    # -- items -------------------------------------------------------------------------

    def load(self, branch_id: str) -> list[ConversationItem]:
        """The items on ``branch_id``'s path, in order: what is sent to the model."""
        limits = path_limits(branch_id, self.lineage)
        items: list[ConversationItem] = []
        for branch, limit in limits.items():
            sql = f"SELECT {_ITEM_COLUMNS} FROM conversation_items WHERE branch_id = ?"
            params: tuple[object, ...] = (branch,)
            if limit != float("inf"):
                sql += " AND turn <= ?"
                params = (branch, int(limit))
            items.extend(_item(row) for row in self.store.query(sql, params))
        return filter_responses_for_branch(items, branch_id, self.lineage)

    def append(
        self, conversation_id: str, branch_id: str, turn: int, items: Sequence[NewItem]
    ) -> list[int]:
        """Store one turn's items in one transaction (all or none); the text is
        redacted first. Return their row ids."""
        now = time.time()
        ids: list[int] = []
        what = f"turn {turn} of conversation {conversation_id}"
        with self._storing(what), self.store.write() as conn:
            for item in items:
                usage = item.usage or TokenUsage()
                cursor = conn.execute(
                    "INSERT INTO conversation_items(conversation_id, branch_id, turn, role,"
                    " agent, model, content, input_tokens, cached_input_tokens,"
                    " output_tokens, total_tokens, cost_usd, status, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        conversation_id,
                        branch_id,
                        turn,
                        item.role,
                        item.agent,
                        item.model,
                        redact(item.content),
                        usage.input_tokens,
                        usage.cached_input_tokens,
                        usage.output_tokens,
                        usage.total_tokens or usage.input_tokens + usage.output_tokens,
                        item.cost_usd,
                        item.status,
                        now,
                    ),
                )
                ids.append(int(cursor.lastrowid or 0))
            first_user = next((i.content for i in items if i.role == "user"), "")
            conn.execute(
                "UPDATE conversations SET updated_at = ?, current_branch_id = ?,"
                " title = CASE WHEN title = '' THEN ? ELSE title END"
                " WHERE conversation_id = ?",
                (now, branch_id, redact(" ".join(first_user.split()))[:80], conversation_id),
            )
        return ids

    def set_agent(self, conversation_id: str, agent: str) -> None:
        what = f"the agent of conversation {conversation_id}"
        with self._storing(what), self.store.write() as conn:
            conn.execute(
                "UPDATE conversations SET agent = ? WHERE conversation_id = ?",
                (agent, conversation_id),
            )

    # -- reading -----------------------------------------------------------------------

    def _infos(self, where: str, params: Sequence[object], limit: int) -> list[ConversationInfo]:
        rows = self.store.query(
            "SELECT c.conversation_id, c.title, c.agent, c.current_branch_id, c.created_at,"
            " c.updated_at,"
            " (SELECT COUNT(*) FROM conversation_branches b"
            "   WHERE b.conversation_id = c.conversation_id) AS branches,"
            " (SELECT COUNT(*) FROM conversation_items i"
            "   WHERE i.conversation_id = c.conversation_id) AS items"
            f" FROM conversations c {where} ORDER BY c.updated_at DESC, c.rowid DESC LIMIT ?",
            (*params, limit),
        )
        return [ConversationInfo(**dict(row)) for row in rows]

    def recent(self, limit: int = 20) -> list[ConversationInfo]:
        """The newest conversations first."""
        return self._infos("", (), limit)

    def find(self, prefix: str) -> ConversationInfo:
        """The conversation whose id starts with ``prefix``; one clear error otherwise."""
        prefix = prefix.strip()
        if not prefix:
            raise CommandError("give a conversation id (see /conversations)")
        found = self._infos("WHERE c.conversation_id LIKE ? ESCAPE '\\'", (_like(prefix),), 2)
        if not found:
            raise CommandError(f"no conversation {prefix!r} (see /conversations)")
        if len(found) > 1:
            raise CommandError(f"{prefix!r} matches several conversations: give more of its id")
        return found[0]

    def ids(self, prefix: str = "", limit: int = 50) -> list[str]:
        return [
            i.conversation_id
            for i in self._infos(
                "WHERE c.conversation_id LIKE ? ESCAPE '\\'", (_like(prefix),), limit
            )
        ]

    def totals(self, conversation_id: str) -> tuple[TokenUsage, TokenUsage, int]:
        """What the conversation used, every branch counted (it was all paid for):
        ``(total, last answer's usage, answers)`` — SessionMetrics.sync_absolute's
        arguments."""
        rows = self.store.query(
            "SELECT input_tokens, cached_input_tokens, output_tokens, total_tokens"
            " FROM conversation_items WHERE conversation_id = ? AND role = 'assistant'"
            " ORDER BY id",
            (conversation_id,),
        )
        total = TokenUsage()
        last = TokenUsage()
        for row in rows:
            last = TokenUsage(
                input_tokens=row[0],
                cached_input_tokens=row[1],
                output_tokens=row[2],
                total_tokens=row[3],
            )
            total = TokenUsage(
                input_tokens=total.input_tokens + last.input_tokens,
                cached_input_tokens=total.cached_input_tokens + last.cached_input_tokens,
                output_tokens=total.output_tokens + last.output_tokens,
                total_tokens=total.total_tokens + last.total_tokens,
            )
        return total, last, len(rows)


def _like(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


__all__ = [
    "CONVERSATIONS_KEY",
    "ConversationInfo",
    "ConversationItem",
    "Conversations",
    "NewItem",
    "filter_responses_for_branch",
    "path_limits",
]
