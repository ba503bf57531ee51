"""The REPL's input handling: a multi-line paste runs its lines one by one, like a shell
(never as the arguments of the first line), each its own history entry (redacted);
Ctrl-C drops the rest. Tab followed at once (paste speed) by more keys still applies
the completion, also while plugins are loading behind the instant prompt. Completion
offers options next to an optional positional's choices.

The terminal tests run the real shell in a real pseudo-terminal (pexpect, with
PROMPT_TOOLKIT_NO_CPR=1 because pexpect does not answer cursor-position requests).
Nothing waits a fixed time: the plugin start is held by a file gate
(tests.helpers.recorder), a long command by tests.helpers.gate, and every ``expect``
waits for text that the shell prints exactly once, with a 30 s timeout for busy CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pexpect
import pytest

from agentshell.redact import MASK
from tests.helpers.cli import spawn_repl
from tests.helpers.recorder import LOADING

TIMEOUT = 30


PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


def spawn(home: Path, *plugins: str, **env: str) -> pexpect.spawn[str]:
    return spawn_repl(home, "tests.helpers.recorder", *plugins, timeout=TIMEOUT, **env)


def ready(child: pexpect.spawn[str]) -> None:
    """Wait until plugins are loaded: a first command has run."""
    child.send("/zz-record first\r")
    child.expect_exact("ran: [first]")


def quit_shell(child: pexpect.spawn[str]) -> None:
    child.send("/quit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def history_entries(home: Path) -> list[str]:
    """The entries of prompt_toolkit's history file (``+`` lines; several per entry
    when an entry has several lines)."""
    entries: list[list[str]] = []
    for line in (home / "data" / "history").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            entries.append([])
        elif line.startswith("+"):
            entries[-1].append(line[1:])
    return ["\n".join(entry) for entry in entries]


def test_multi_line_paste_runs_each_line_as_a_command(tmp_path: Path) -> None:
    home = tmp_path / "home"
    child = spawn(home)
    try:
        ready(child)
        pasted = (
            "/zz-record one two\n/zz-record three\n/set-env PASTE_TOKEN=sk-pastesecretvalue123\n"
        )
        child.send(PASTE_START + pasted + PASTE_END)
        child.send("\r")
        # each line is its own command: `three` is never an argument of the first one
        child.expect_exact("ran: [one two]")
        child.expect_exact("ran: [three]")
        child.send("/zz-record after\r")
        child.expect_exact("ran: [after]")
        quit_shell(child)
    finally:
        child.close(force=True)
    entries = history_entries(home)
    assert entries == [
        "/zz-record first",
        "/zz-record one two",
        "/zz-record three",
        f"/set-env PASTE_TOKEN={MASK}",
        "/zz-record after",
        "/quit",
    ]
    assert "pastesecretvalue" not in "\n".join(entries)


def test_ctrl_c_in_a_pasted_line_drops_the_rest(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    child = spawn(tmp_path / "home", "tests.helpers.gate")
    try:
        ready(child)
        pasted = f"/gate {gate}\n/zz-record dropped-1\n/zz-record dropped-2"
        child.send(PASTE_START + pasted + PASTE_END + "\r")
        child.expect_exact("gate: waiting")
        child.sendintr()
        child.expect_exact("skipped 2 pasted lines: /zz-record, /zz-record")
        child.send("/zz-record after\r")
        child.expect_exact("ran: [after]")
        seen = child.before or ""
        assert "dropped-1]" not in seen and "dropped-2]" not in seen
        assert "gate: open" not in seen
        quit_shell(child)
    finally:
        child.close(force=True)


def test_tab_at_paste_speed_completes(tmp_path: Path) -> None:
    child = spawn(tmp_path / "home")
    try:
        ready(child)
        child.send("/zz-rec\t alp\t\r")  # one write: the keys after each Tab follow at once
        child.expect_exact("ran: [alpha-target]")
        quit_shell(child)
    finally:
        child.close(force=True)


def test_tab_at_paste_speed_while_plugins_load(tmp_path: Path) -> None:
    gate = tmp_path / "start-gate"
    child = spawn(tmp_path / "home", RECORDER_START_GATE=str(gate))
    try:
        child.expect_exact(LOADING)  # plugins are loading: the recorder holds the start
        child.send("/zz-rec\t alp\t\r")
        child.expect_exact("/zz-rec")  # read and drawn while still loading
        gate.touch()
        child.expect_exact("ran: [alpha-target]")
        quit_shell(child)
    finally:
        child.close(force=True)


async def test_options_are_offered_next_to_an_optional_positional(
    make_shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from agentshell.repl import CommandCompleter

    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "builtins,resume,metrics")
    shell = await make_shell(config="[telemetry]\nsinks = []\n")
    completer = CommandCompleter(shell)

    def offered(typed: str) -> list[str]:
        return [c.text for c in completer.get_completions(Document(typed), CompleteEvent())]

    # /branches <SPEC-ID> [prune] [--keep N] [--json]: one Tab never inserts `prune` alone
    assert offered("/branches SPEC-KIT-X ") == ["prune", "--keep", "--json"]
    assert offered("/branches SPEC-KIT-X p") == ["prune"]
    assert offered("/branches SPEC-KIT-X --json ") == ["prune", "--keep"]
    assert offered("/branches SPEC-KIT-X prune ") == ["--keep", "--json"]
    assert offered("/branches SPEC-KIT-X --keep ") == []  # a value, not an option
    # the same rule as /metrics (which used to be the only one to do it)
    assert offered("/metrics ") == ["reset", "--json"]
    # a required positional still completes alone: /resume <SPEC-ID>
    assert "--json" not in offered("/resume ")
    assert offered("/resume SPEC-KIT-X BRANCH ") == ["--json"]
