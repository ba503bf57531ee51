"""What the REPL runs for what the prompt returned: several lines that do not start
with '/' are one message (a pasted paragraph, Esc-Enter), a paste of commands runs line
by line; the history keeps a message as one entry, secrets masked."""

from __future__ import annotations

from pathlib import Path

from agentshell.redact import MASK
from agentshell.repl import RedactingHistory, input_lines

SECRET = "sk-proj-historysecret0123456789abcdefgh"


def test_several_plain_lines_are_one_message() -> None:
    assert input_lines("first line\nsecond line\n") == ["first line\nsecond line"]
    assert input_lines("\n  indented\n    more  \n") == ["indented\n    more"]


def test_a_paste_starting_with_a_command_runs_line_by_line() -> None:
    assert input_lines("/help\nhello there\n/quit\n") == ["/help", "hello there", "/quit"]
    assert input_lines("one line") == ["one line"]
    assert input_lines("\n\n") == []


def test_history_keeps_a_message_as_one_entry_with_secrets_masked(tmp_path: Path) -> None:
    history = RedactingHistory(str(tmp_path / "history"))
    history.append_string(f"my key is {SECRET}\nplease keep it")
    history.append_string("/help\n/plugins")
    entries = list(history.load_history_strings())
    assert entries[::-1] == [f"my key is {MASK}\nplease keep it", "/help", "/plugins"]
    assert SECRET not in (tmp_path / "history").read_text()
