"""An answer streaming into a real terminal: the shell in a pty rendered by pyte
(tests/helpers/screen.py), a test plugin (tests/helpers/ask.py) streaming an
``openai`` agent's answer into ``Output.stream_answer()`` while the REPL's live status
region runs, against the real loopback OpenAI-compatible server. The server holds the
rest of the answer until the test has seen the partial screen."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import child_env
from tests.helpers.screen import PROMPT, Terminal
from tests.servers.openai_server import OpenAIServer, ScriptedReply

pytestmark = pytest.mark.e2e

ANSWER = [
    "## Streamed title\n\n",
    "Some **bold** words ",
    "and a block:\n\n```python\nprint('hi')\n```\n",
]


@pytest.fixture
def project(tmp_path: Path, openai_server: OpenAIServer) -> Iterator[tuple[Path, Path]]:
    home, cwd = tmp_path / "home", tmp_path / "project"
    home.mkdir(exist_ok=True)
    cwd.mkdir(exist_ok=True)
    (cwd / "agentshell.toml").write_text(
        "[agents.claude]\n"
        'backend = "openai"\n'
        'model = "gpt-test"\n'
        f'base_url = "{openai_server.base_url}"\n'
        "[retry]\nbase_delay_s = 0.01\nmax_delay_s = 0.01\n",
        encoding="utf-8",
    )
    yield home, cwd


def shown(rows: list[str], text: str) -> bool:
    return any(text in row for row in rows)


def test_partial_text_shows_before_the_answer_completes_then_renders_as_markdown(
    project: tuple[Path, Path], openai_server: OpenAIServer
) -> None:
    home, cwd = project
    release = threading.Event()
    reply = ScriptedReply(pieces=ANSWER, hold_after=2, release=release)
    openai_server.script("claude", [reply])
    term = Terminal(home, "tests.helpers.ask", columns=100, cwd=cwd)
    try:
        term.wait_for()
        term.type("/ask claude hello")
        rows = term.until(lambda rows: shown(rows, "**bold** words"), "the partial answer")
        # raw as it arrives: the Markdown is not rendered yet, the rest not sent
        assert shown(rows, "## Streamed title")
        assert not shown(rows, "print(")
        assert reply.held.is_set()
        release.set()
        term.wait_for("print('hi')")
        rows = term.rows()
        assert not shown(rows, "## Streamed title") and shown(rows, "Streamed title")
        assert not shown(rows, "**bold**") and shown(rows, "Some bold words and a block:")
        assert not shown(rows, "```")
        # the answer is in the output once: the raw text was replaced, not followed
        assert sum("Streamed title" in row for row in rows) == 1
        assert sum(row.startswith(PROMPT) for row in rows) == 2
        # the code block is highlighted: its characters are coloured
        assert colours(term, "print('hi')") - {"default"}
    finally:
        release.set()
        term.close()


def colours(term: Terminal, text: str) -> set[str]:
    """The foreground colours of the first row showing ``text``."""
    index = next(i for i, row in enumerate(term.rows()) if text in row)
    row = term.screen.buffer[index]
    return {row[x].fg for x in range(term.screen.columns) if row[x].data.strip()}


def test_no_color_renders_the_markdown_without_colours(
    project: tuple[Path, Path], openai_server: OpenAIServer
) -> None:
    home, cwd = project
    openai_server.script("claude", [ScriptedReply(pieces=ANSWER)])
    term = Terminal(home, "tests.helpers.ask", columns=100, cwd=cwd, NO_COLOR="1")
    try:
        term.wait_for()
        term.type("/ask claude hello")
        term.wait_for("print('hi')")
        assert not shown(term.rows(), "**bold**")
        assert colours(term, "print('hi')") == {"default"}
        assert colours(term, "Some bold words") == {"default"}
    finally:
        term.close()


def test_a_retry_takes_the_partial_answer_back_and_the_notice_goes_above(
    project: tuple[Path, Path], openai_server: OpenAIServer
) -> None:
    home, cwd = project
    release = threading.Event()
    first = ScriptedReply(
        pieces=["Wrong start ", "of an ", "answer"],
        hold_after=2,
        release=release,
        truncate_stream_after=4,  # the role, three pieces, then the connection drops
    )
    openai_server.script("claude", [first, ScriptedReply(pieces=["Right ", "answer\n"])])
    term = Terminal(home, "tests.helpers.ask", columns=100, cwd=cwd)
    try:
        term.wait_for()
        term.type("/ask claude hello")
        term.until(lambda rows: shown(rows, "Wrong start of an"), "the first attempt")
        release.set()
        term.wait_for("Right answer")
        rows = term.rows()
        assert not shown(rows, "Wrong start")
        notice = [i for i, row in enumerate(rows) if "claude: retrying in" in row]
        answer = [i for i, row in enumerate(rows) if "Right answer" in row]
        assert notice and answer and notice[0] < answer[0]
    finally:
        release.set()
        term.close()


def test_a_secret_split_across_deltas_never_reaches_the_terminal(
    project: tuple[Path, Path], openai_server: OpenAIServer
) -> None:
    home, cwd = project
    release = threading.Event()
    pieces = ["the key: api_key = sk-abc", "defghijklmnopq and more\n"]
    openai_server.script("claude", [ScriptedReply(pieces=pieces, hold_after=1, release=release)])
    term = Terminal(home, "tests.helpers.ask", columns=100, cwd=cwd)
    try:
        term.wait_for()
        term.type("/ask claude hello")
        term.until(lambda rows: shown(rows, "the key: api_key ="), "the partial answer")
        assert "sk-abc" not in term.raw
        release.set()
        term.wait_for("and more")
        assert shown(term.rows(), "api_key = ****")
        # not in anything the shell wrote, escape sequences and erased text included
        assert "sk-abc" not in term.raw and "defghij" not in term.raw
    finally:
        release.set()
        term.close()


def test_ctrl_c_mid_stream_keeps_the_partial_answer_marked_cancelled(
    project: tuple[Path, Path], openai_server: OpenAIServer
) -> None:
    home, cwd = project
    never = threading.Event()
    reply = ScriptedReply(pieces=ANSWER, hold_after=2, release=never)
    openai_server.script("claude", [reply])
    term = Terminal(home, "tests.helpers.ask", columns=100, cwd=cwd)
    try:
        term.wait_for()
        term.type("/ask claude hello")
        term.until(lambda rows: shown(rows, "**bold** words"), "the partial answer")
        term.child.send("\x03")
        term.wait_for("(cancelled)")
        rows = term.rows()
        assert shown(rows, "Streamed title") and shown(rows, "words")
        # said once: the answer's mark, not also the command's "^C cancelled"
        assert not shown(rows, "^C cancelled"), term.text()
        # the shell is still there and takes the next command
        term.type("/help")
        term.wait_for("/quit")
    finally:
        never.set()
        term.close()


def test_piped_the_answer_is_written_as_it_arrives_and_not_rendered(
    project: tuple[Path, Path], openai_server: OpenAIServer
) -> None:
    home, cwd = project
    openai_server.script("claude", [ScriptedReply(pieces=ANSWER)])
    done = subprocess.run(
        [sys.executable, "-m", "agentshell", "-p", "tests.helpers.ask", "run", "/ask claude hi"],
        env=child_env(home),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "".join(ANSWER)
    assert openai_server.calls[0].stream


def test_the_rendered_answer_wraps_at_words_on_a_narrow_terminal(
    project: tuple[Path, Path], openai_server: OpenAIServer
) -> None:
    """The Markdown rendering goes through the live region's console, which soft-wraps
    (the terminal would cut words at its edge): the answer is wrapped by rich instead."""
    home, cwd = project
    words = "configure an agent and make it the chat agent in your project file " * 3
    openai_server.script("claude", [ScriptedReply(pieces=[words.strip() + ".\n"])])
    term = Terminal(home, "tests.helpers.ask", columns=60, cwd=cwd)
    try:
        term.wait_for()
        term.type("/ask claude hello")
        term.wait_for("project file.")
        rows = term.rows()
        start = next(i for i, r in enumerate(rows) if r.startswith(f"{PROMPT} /ask")) + 1
        end = next(i for i, r in enumerate(rows) if "project file." in r) + 1
        printed = [w for r in rows[start:end] for w in r.split()]
        assert printed == (words.strip() + ".").split(), "\n".join(rows[start:end])
    finally:
        term.close()
