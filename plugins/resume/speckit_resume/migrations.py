"""The schema, as numbered migrations applied in order, each in its own transaction.

Never edit a released migration: append a new one. ``schema_migrations`` records what
ran; ``PRAGMA user_version`` mirrors the highest number for a cheap check at open.
"""

from __future__ import annotations

from typing import NamedTuple


class Migration(NamedTuple):
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "core tables",
        (
            """CREATE TABLE IF NOT EXISTS branches (
                branch_id        TEXT PRIMARY KEY,
                spec_id          TEXT NOT NULL,
                parent_branch_id TEXT REFERENCES branches(branch_id) ON DELETE CASCADE,
                fork_stage       TEXT,
                goal             TEXT,
                created_at       REAL NOT NULL,
                CHECK ((parent_branch_id IS NULL) = (fork_stage IS NULL))
            )""",
            """CREATE TABLE IF NOT EXISTS runs (
                seq              INTEGER PRIMARY KEY,
                run_id           TEXT NOT NULL UNIQUE,
                spec_id          TEXT NOT NULL,
                branch_id        TEXT NOT NULL REFERENCES branches(branch_id) ON DELETE CASCADE,
                parent_branch_id TEXT,
                goal             TEXT,
                from_stage       TEXT,
                resumed          INTEGER NOT NULL DEFAULT 0,
                replayed         INTEGER NOT NULL DEFAULT 0,
                started_at       REAL NOT NULL,
                finished_at      REAL,
                status           TEXT NOT NULL DEFAULT 'running' CHECK (status IN
                                 ('running', 'ok', 'halted', 'failed', 'cancelled', 'interrupted')),
                host             TEXT,
                pid              INTEGER
            )""",
            """CREATE TABLE IF NOT EXISTS agent_outputs (
                id               INTEGER PRIMARY KEY,
                run_id           TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
                branch_id        TEXT NOT NULL REFERENCES branches(branch_id) ON DELETE CASCADE,
                spec_id          TEXT NOT NULL,
                stage            TEXT NOT NULL,
                agent            TEXT NOT NULL,
                model            TEXT,
                role             TEXT,
                prompt_hash      TEXT NOT NULL,
                prompt_version   TEXT,
                content          TEXT,
                parsed           TEXT,
                usage            TEXT,
                total_tokens     INTEGER NOT NULL DEFAULT 0,
                cost_usd         REAL,
                latency_ms       REAL,
                attempts         INTEGER NOT NULL DEFAULT 1,
                status           TEXT NOT NULL CHECK (status IN ('ok', 'error')),
                error            TEXT,
                valid            INTEGER CHECK (valid IN (0, 1)),
                validation_error TEXT,
                created_at       REAL NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS stage_results (
                id               INTEGER PRIMARY KEY,
                run_id           TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
                branch_id        TEXT NOT NULL REFERENCES branches(branch_id) ON DELETE CASCADE,
                spec_id          TEXT NOT NULL,
                stage            TEXT NOT NULL,
                status           TEXT NOT NULL,
                agreements       TEXT NOT NULL DEFAULT '[]',
                conflicts        TEXT NOT NULL DEFAULT '[]',
                synthesis_path   TEXT,
                created_at       REAL NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "indexes",
        (
            # the resume lookup: (branch, stage, agent, prompt) -> newest row, from the index
            # (rowid is the last key column, so ORDER BY id DESC LIMIT 1 is a seek); it also
            # serves ON DELETE CASCADE from branches, which is why it is not partial
            """CREATE INDEX IF NOT EXISTS agent_outputs_resume
                ON agent_outputs(branch_id, stage, agent, prompt_hash)""",
            # /history aggregates per run, and ON DELETE CASCADE from runs
            "CREATE INDEX IF NOT EXISTS agent_outputs_run ON agent_outputs(run_id)",
            "CREATE INDEX IF NOT EXISTS branches_spec ON branches(spec_id, created_at)",
            "CREATE INDEX IF NOT EXISTS branches_parent ON branches(parent_branch_id)",
            "CREATE INDEX IF NOT EXISTS runs_spec ON runs(spec_id)",
            "CREATE INDEX IF NOT EXISTS runs_branch ON runs(branch_id)",
            "CREATE INDEX IF NOT EXISTS stage_results_branch ON stage_results(branch_id, stage)",
            "CREATE INDEX IF NOT EXISTS stage_results_run ON stage_results(run_id)",
        ),
    ),
    Migration(
        3,
        "recorded flag",
        (
            # a recorded (replay) answer stays recorded when the store answers it again:
            # stage documents and the progress line must not depend on how it was obtained
            "ALTER TABLE agent_outputs ADD COLUMN recorded INTEGER NOT NULL DEFAULT 0",
        ),
    ),
    Migration(
        4,
        "replayed tokens",
        (
            # a replay-only run used the tokens its stage line shows: /history says so too
            "ALTER TABLE runs ADD COLUMN replayed_tokens INTEGER NOT NULL DEFAULT 0",
        ),
    ),
    Migration(
        5,
        "stage summary",
        (
            # a halt keeps why (reasons, each agent's state, missing agents) even with the
            # evidence off, so /spec-consensus can always show the verdict it stopped on
            "ALTER TABLE stage_results ADD COLUMN summary TEXT",
        ),
    ),
    Migration(
        6,
        "conversations",
        (
            # a chat conversation: items (user, assistant, system) on branches; a branch
            # inherits its parent's items up to fork_turn (conversations.py has the rule)
            """CREATE TABLE IF NOT EXISTS conversations (
                conversation_id  TEXT PRIMARY KEY,
                title            TEXT NOT NULL DEFAULT '',
                agent            TEXT,
                current_branch_id TEXT,
                created_at       REAL NOT NULL,
                updated_at       REAL NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS conversation_branches (
                branch_id        TEXT PRIMARY KEY,
                conversation_id  TEXT NOT NULL
                                 REFERENCES conversations(conversation_id) ON DELETE CASCADE,
                parent_branch_id TEXT REFERENCES conversation_branches(branch_id)
                                 ON DELETE CASCADE,
                fork_turn        INTEGER,
                reason           TEXT,
                created_at       REAL NOT NULL,
                CHECK ((parent_branch_id IS NULL) = (fork_turn IS NULL))
            )""",
            """CREATE TABLE IF NOT EXISTS conversation_items (
                id               INTEGER PRIMARY KEY,
                conversation_id  TEXT NOT NULL
                                 REFERENCES conversations(conversation_id) ON DELETE CASCADE,
                branch_id        TEXT NOT NULL
                                 REFERENCES conversation_branches(branch_id) ON DELETE CASCADE,
                turn             INTEGER NOT NULL,
                role             TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
                agent            TEXT,
                model            TEXT,
                content          TEXT NOT NULL,
                input_tokens     INTEGER NOT NULL DEFAULT 0,
                cached_input_tokens INTEGER NOT NULL DEFAULT 0,
                output_tokens    INTEGER NOT NULL DEFAULT 0,
                total_tokens     INTEGER NOT NULL DEFAULT 0,
                cost_usd         REAL,
                status           TEXT NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'cancelled')),
                created_at       REAL NOT NULL
            )""",
            # a branch path is loaded branch by branch, in turn order, from the index
            """CREATE INDEX IF NOT EXISTS conversation_items_branch
                ON conversation_items(branch_id, turn, id)""",
            """CREATE INDEX IF NOT EXISTS conversation_branches_conversation
                ON conversation_branches(conversation_id)""",
            "CREATE INDEX IF NOT EXISTS conversations_updated ON conversations(updated_at)",
        ),
    ),
)

LATEST = MIGRATIONS[-1].version

__all__ = ["LATEST", "MIGRATIONS", "Migration"]
