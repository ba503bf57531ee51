"""Tab completion of branch ids and the usage lines of the branch-aware commands.

Completion runs in-process through the REPL's own CommandCompleter against a real
SQLite resume store holding branches of two specs whose branch ids share a prefix
(``SPEC-KIT-DEMO-2...`` starts both ``SPEC-KIT-DEMO``'s and ``SPEC-KIT-DEMO-2``'s), so
only the branches of the spec typed may be offered, newest first. The usage lines are
read from the real parser's errors and /help, and must match docs/resume.md verbatim.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from agentshell import CommandCompleter
from tests.helpers.paths import REPO
from tests.helpers.speckit import clear

STORE = "resume.sqlite3"
CONFIG = f'[telemetry]\nsinks = []\n\n[plugins.resume]\npath = "{STORE}"\n'
SPEC, OTHER = "SPEC-KIT-DEMO", "SPEC-KIT-DEMO-2"
AUTO_USAGE = (
    "/spec-auto <SPEC-ID> [<GOAL>...] [--consensus <GOAL>] [--from <STAGE> [<BRANCH-ID>] "
    "[--force]] | "
    "/spec-auto <SPEC-ID> --resume [<BRANCH-ID>]"
)
PLAN_USAGE = (
    "/spec-plan <SPEC-ID> [<BRANCH-ID>] [--consensus <GOAL>] | "
    "/spec-plan <SPEC-ID> --resume [<BRANCH-ID>]"
)
RESUME_USAGE = "/resume <SPEC-ID> [<BRANCH-ID>] [--json]"


def offered(shell: Any, typed: str) -> list[str]:
    completer = CommandCompleter(shell)
    return [c.text for c in completer.get_completions(Document(typed), CompleteEvent())]


async def store_shell(
    make_shell: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, dict[str, list[str]]]:
    """A shell with consensus + resume and a store holding 3 branches of SPEC and 2 of
    OTHER, created interleaved; their created_at is then set so that the newest-first
    order is NOT the insertion order (it must come from created_at, not rowid)."""
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,resume")
    shell = await make_shell(config=CONFIG)
    service = shell.state["speckit.resume"]
    made: list[str] = []
    for spec in (SPEC, OTHER, SPEC, OTHER, SPEC):
        info = service.begin_run(spec_id=spec, goal=None, from_stage=None, resume=False)
        service.finish_run(info["run_id"], "ok")
        made.append(info["branch_id"])
    # creation times: SPEC's second branch is the newest, its first the oldest
    times = [100.0, 200.0, 500.0, 300.0, 400.0]
    with sqlite3.connect(Path(STORE)) as conn:
        for branch, when in zip(made, times, strict=True):
            conn.execute("UPDATE branches SET created_at = ? WHERE branch_id = ?", (when, branch))
    conn.close()
    newest_first = {
        SPEC: [made[2], made[4], made[0]],
        OTHER: [made[3], made[1]],
    }
    return shell, newest_first


async def test_resume_offers_only_the_specs_branches_newest_first(
    make_shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    shell, branches = await store_shell(make_shell, monkeypatch)
    assert offered(shell, f"/resume {SPEC} ") == [*branches[SPEC], "--json"]
    assert offered(shell, f"/resume {OTHER} ") == [*branches[OTHER], "--json"]
    # the prefix both specs' branch ids share still yields only the spec typed
    assert offered(shell, f"/resume {SPEC} {SPEC}-2") == branches[SPEC]
    assert offered(shell, f"/resume {OTHER} {SPEC}-2") == branches[OTHER]
    one = branches[SPEC][1]
    assert offered(shell, f"/resume {SPEC} {one[:-3]}") == [one]
    assert offered(shell, f"/resume {SPEC} --json ") == branches[SPEC]
    assert offered(shell, f"/resume {SPEC} {one} ") == ["--json"]  # one branch per line
    assert offered(shell, "/resume SPEC-KIT-NONE ") == ["--json"]


async def test_stage_commands_offer_branches_next_to_their_flags(
    make_shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    shell, branches = await store_shell(make_shell, monkeypatch)
    assert offered(shell, f"/spec-plan {SPEC} ") == [*branches[SPEC], "--consensus", "--resume"]
    assert offered(shell, f"/spec-unlock {OTHER} ") == [
        *branches[OTHER],
        "--consensus",
        "--resume",
    ]
    assert offered(shell, f"/spec-tasks {SPEC} --resume ") == [*branches[SPEC], "--consensus"]
    assert offered(shell, f"/spec-plan {SPEC} --consensus ") == []  # a goal: free text
    assert offered(shell, f"/spec-plan {SPEC} --consensus 'ship it' ") == [
        *branches[SPEC],
        "--resume",
    ]
    assert offered(shell, f"/spec-plan {SPEC} {branches[SPEC][0]} ") == ["--consensus", "--resume"]


async def test_spec_auto_offers_branches_only_with_resume_or_from(
    make_shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    shell, branches = await store_shell(make_shell, monkeypatch)
    # without --resume or --from its words are the goal: nothing but the options
    # (--force is offered like any flag; it is an error without --from)
    assert offered(shell, f"/spec-auto {SPEC} ") == ["--from", "--resume", "--force", "--consensus"]
    assert offered(shell, f"/spec-auto {SPEC} make it fast ") == [
        "--from",
        "--resume",
        "--force",
        "--consensus",
    ]
    assert offered(shell, f"/spec-auto {SPEC} --resume ") == [
        *branches[SPEC],
        "--from",
        "--force",
        "--consensus",
    ]
    assert offered(shell, f"/spec-auto {OTHER} --resume ") == [
        *branches[OTHER],
        "--from",
        "--force",
        "--consensus",
    ]
    assert offered(shell, f"/spec-auto {SPEC} goal --from tasks ") == [
        *branches[SPEC],
        "--resume",
        "--force",
        "--consensus",
    ]
    assert offered(shell, f"/spec-auto {SPEC} --from=tasks ") == [
        *branches[SPEC],
        "--resume",
        "--force",
        "--consensus",
    ]
    assert "plan" in offered(shell, f"/spec-auto {SPEC} --from ")  # the stage, not a branch
    assert not set(offered(shell, f"/spec-auto {SPEC} --from ")) & set(branches[SPEC])
    given = branches[SPEC][2]
    assert offered(shell, f"/spec-auto {SPEC} --resume {given} ") == [
        "--from",
        "--force",
        "--consensus",
    ]


async def test_no_store_file_is_created_and_a_broken_one_offers_nothing(
    make_shell: Any, monkeypatch: pytest.MonkeyPatch, output: Any
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,resume")
    shell = await make_shell(config=CONFIG)
    assert offered(shell, f"/resume {SPEC} ") == ["--json"]
    assert offered(shell, f"/spec-plan {SPEC} ") == ["--consensus", "--resume"]
    assert offered(shell, f"/spec-auto {SPEC} --resume ") == ["--from", "--force", "--consensus"]
    assert not Path(STORE).exists()  # noqa: ASYNC240
    assert not shell.state["speckit.resume"].opened
    # a file that is not a database: no completions, no error, no exception
    Path(STORE).write_bytes(b"this is not a sqlite database" * 100)  # noqa: ASYNC240
    assert offered(shell, f"/resume {SPEC} ") == ["--json"]
    assert offered(shell, f"/spec-auto {SPEC} --resume ") == ["--from", "--force", "--consensus"]
    assert shell.state["speckit.resume"].complete_branches(SPEC) == []
    assert output.errors == ""


async def test_consensus_alone_offers_flags_only(
    make_shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    shell, _ = await store_shell(make_shell, monkeypatch)
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus")
    alone = await make_shell(config=CONFIG)  # the same project and store, no resume plugin
    assert "speckit.resume" not in alone.state
    assert offered(alone, f"/spec-plan {SPEC} ") == ["--consensus", "--resume"]
    assert offered(alone, f"/spec-auto {SPEC} --resume ") == ["--from", "--force", "--consensus"]
    assert offered(shell, f"/spec-auto {SPEC} --resume ")[:-1]  # the store is there


async def test_usage_lines_show_the_branch_grammar(
    make_shell: Any, monkeypatch: pytest.MonkeyPatch, output: Any
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "builtins,consensus,resume")
    shell = await make_shell(config=CONFIG)
    for line, usage in (
        ("/spec-auto", AUTO_USAGE),
        (f"/spec-auto {SPEC} --bogus", AUTO_USAGE),
        ("/spec-plan", PLAN_USAGE),
        (f"/spec-plan {SPEC} a b", PLAN_USAGE),
        ("/resume", RESUME_USAGE),
        (f"/resume {SPEC} a b", RESUME_USAGE),
    ):
        clear(output)
        assert await shell.execute(line) == 1, line
        assert output.errors.rstrip().endswith(f"usage: {usage}"), output.errors
    for name, usage in (
        ("spec-auto", AUTO_USAGE),
        ("spec-plan", PLAN_USAGE),
        ("resume", RESUME_USAGE),
    ):
        clear(output)
        assert await shell.execute(f"/help {name}") == 0
        assert output.text.splitlines()[0] == f"usage: {usage}"
        assert "[--from STAGE] [--resume]" not in output.text  # the generic form is gone
    stage_usage = shell.commands.get("spec-unlock").usage
    assert stage_usage == PLAN_USAGE.replace("spec-plan", "spec-unlock")
    docs = (REPO / "docs" / "resume.md").read_text(encoding="utf-8")
    for usage in (AUTO_USAGE, PLAN_USAGE):
        assert f"`{usage}`" in docs
    assert RESUME_USAGE in docs
