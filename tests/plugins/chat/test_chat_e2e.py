"""The conversation as a user has it: the REPL in a real pty (rendered by pyte) talking
to the loopback OpenAI-compatible server, whose answers stream and can be held
mid-answer. Tokens show before the answer is complete, the finished answer is rendered
as Markdown, Ctrl-C mid-stream keeps the shell and marks the answer cancelled, a
multi-line paste is one message, a shell killed mid-answer keeps every finished turn,
and ``agentshell run`` prints the answer (``--json``: with its usage)."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import agentshell, child_env
from tests.helpers.screen import Terminal
from tests.servers.openai_server import OpenAIServer, ScriptedReply, make_usage

pytestmark = pytest.mark.e2e

PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


def write_config(cwd: Path, server: OpenAIServer) -> None:
    (cwd / "agentshell.toml").write_text(
        "[retry]\nattempts = 1\n\n"
        f'[agents.gpt]\nbackend = "openai"\nbase_url = "{server.base_url}"\n'
        'model = "gpt-4o-mini"\ntimeout = 20\n\n'
        '[plugins.chat]\nagent = "gpt"\n',
        encoding="utf-8",
    )


@pytest.fixture
def term(tmp_path: Path, openai_server: OpenAIServer, isolated_env: Path) -> Iterator[Terminal]:
    write_config(isolated_env, openai_server)
    terminal = Terminal(tmp_path / "home", cwd=isolated_env)
    terminal.wait_for()
    yield terminal
    terminal.close()


def held(pieces: list[str], hold_after: int) -> tuple[ScriptedReply, threading.Event]:
    release = threading.Event()
    reply = ScriptedReply(
        pieces=pieces, hold_after=hold_after, release=release, usage=make_usage(30, 12)
    )
    return reply, release


def test_tokens_show_before_the_answer_completes_then_render_as_markdown(
    term: Terminal, openai_server: OpenAIServer
) -> None:
    pieces = ["# Plan\n\n", "Use **bold** ", "moves.\n\n", "```python\nprint(1)\n```\n"]
    reply, release = held(pieces, hold_after=2)
    openai_server.script("gpt-4o-mini", [reply])
    term.type("how do I win?")
    # the first two pieces are on screen while the server still holds the rest
    rows = term.until(lambda rows: any("Use **bold**" in r for r in rows), "the partial answer")
    assert not any("print(1)" in r for r in rows)
    release.set()
    # once complete, the raw Markdown is replaced by its rendering
    term.wait_for("print(1)")  # the answer, then the prompt: the command is over
    text = term.text()
    assert "Use bold moves." in text
    assert "**bold**" not in text and "```" not in text and "# Plan" not in text
    assert "Plan" in text


def test_ctrl_c_mid_stream_keeps_the_shell_and_marks_the_answer_cancelled(
    term: Terminal, openai_server: OpenAIServer
) -> None:
    reply, release = held(["The answer ", "begins here ", "and never ends"], hold_after=2)
    openai_server.script("gpt-4o-mini", [reply])
    term.type("tell me everything")
    term.until(lambda rows: any("begins here" in r for r in rows), "the partial answer")
    term.child.sendintr()
    term.wait_for("(cancelled)")
    release.set()
    # the shell is still there, and the partial answer is part of the history
    openai_server.script("gpt-4o-mini", [ScriptedReply(content="second answer")])
    term.type("go on")
    term.wait_for("second answer")
    messages = openai_server.calls[-1].messages
    assert messages[1] == {"role": "assistant", "content": "The answer begins here "}


def test_a_multi_line_paste_is_one_message(term: Terminal, openai_server: OpenAIServer) -> None:
    openai_server.script("gpt-4o-mini", [ScriptedReply(content="got both lines")])
    term.child.send(PASTE_START + "first line\nsecond line" + PASTE_END)
    term.child.send("\r")
    term.wait_for("got both lines")
    assert openai_server.calls[-1].messages[-1]["content"] == "first line\nsecond line"
    assert len(openai_server.calls) == 1


def test_esc_enter_inserts_a_newline(term: Terminal, openai_server: OpenAIServer) -> None:
    openai_server.script("gpt-4o-mini", [ScriptedReply(content="two lines seen")])
    term.child.send("line one\x1b\rline two\r")
    term.wait_for("two lines seen")
    assert openai_server.calls[-1].messages[-1]["content"] == "line one\nline two"


def test_kill_9_mid_stream_keeps_every_finished_turn(
    tmp_path: Path, openai_server: OpenAIServer, isolated_env: Path
) -> None:
    write_config(isolated_env, openai_server)
    reply, release = held(["half ", "an ", "answer"], hold_after=1)
    openai_server.script(
        "gpt-4o-mini",
        [ScriptedReply(content="first answer"), ScriptedReply(content="second answer"), reply],
    )
    term = Terminal(tmp_path / "home", cwd=isolated_env)
    try:
        term.wait_for()
        term.type("turn one")
        term.wait_for("first answer")
        term.type("turn two")
        term.wait_for("second answer")
        term.type("turn three")
        term.until(lambda rows: any("half" in r for r in rows), "the partial answer")
        term.child.kill(signal.SIGKILL)
    finally:
        release.set()
        term.child.close(force=True)
    openai_server.script("gpt-4o-mini", [ScriptedReply(content="continued")])
    env = child_env(tmp_path / "home")
    done = agentshell(env, "run", "--continue", "and now?")
    assert done.returncode == 0, done.stderr
    assert "continued" in done.stdout
    sent = [(m["role"], m["content"]) for m in openai_server.calls[-1].messages]
    assert sent == [
        ("user", "turn one"),
        ("assistant", "first answer"),
        ("user", "turn two"),
        ("assistant", "second answer"),
        ("user", "and now?"),
    ]


def test_run_prints_the_answer_and_json_adds_the_usage(
    tmp_path: Path, openai_server: OpenAIServer, isolated_env: Path
) -> None:
    write_config(isolated_env, openai_server)
    openai_server.script(
        "gpt-4o-mini",
        [
            ScriptedReply(content="four", usage=make_usage(11, 1)),
            ScriptedReply(content="five", usage=make_usage(13, 1)),
            ScriptedReply(content="six", usage=make_usage(15, 1)),
        ],
    )
    env = child_env(tmp_path / "home")
    done = agentshell(env, "run", "what is 2+2?")
    assert (done.returncode, done.stdout.strip()) == (0, "four"), done.stderr
    piped = agentshell(env, "run", "-f", "-", stdin="what is 2+3?\n")
    assert (piped.returncode, piped.stdout.strip()) == (0, "five"), piped.stderr
    as_json = agentshell(env, "run", "--json", "and 3+3?")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["answer"] == "six"
    assert data["usage"]["input_tokens"] == 15
    assert data["agent"] == "gpt"
