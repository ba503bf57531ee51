"""Tables measured as printed, through the real ``Output.table`` and rich: ids, numbers,
costs and names are never cut (no ellipsis at any width) and a word is never split
(unless it alone is wider than the terminal); free text wraps at spaces before less
important columns are left out, with a note that appears only when the table then
fits; no column is zero wide. Off a terminal nothing is cut. The plugin tables and the
/history check run the real shell and the real ``agentshell`` CLI on the recorded demo
answers.
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from agentshell.output import Output
from tests.conftest import CapturedOutput
from tests.helpers.cli import agentshell, child_env
from tests.helpers.paths import REPO, without_demo_outputs

ShellFactory = Any


def render(columns: list[str], rows: list[list[str]], width: int, **kw: Any) -> str:
    stream = io.StringIO()  # not a terminal: COLUMNS gives the width
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", str(width))
        Output(stream).table(columns, rows, **kw)
    return stream.getvalue()


ROW = ["197b04a1", "a goal long enough that it has to wrap at forty columns", "12,884", "recorded"]


@pytest.mark.parametrize("width", [40, 80])
def test_short_values_stay_whole_and_free_text_wraps(width: int) -> None:
    text = render(
        ["run", "goal", "tokens", "cost"], [ROW, ["ab", "x", "18.8k (2.4k)", "$0.01"]], width
    )
    assert "…" not in text
    for value in ("197b04a1", "12,884", "recorded", "18.8k (2.4k)", "$0.01"):
        assert value in text, (value, text)
    words = re.findall(r"[a-z]+", "".join(text.split("│")))
    for word in ROW[1].split():
        assert word in words
    if width == 40:  # the goal wrapped rather than being cut
        assert not any("at forty columns" in line for line in text.splitlines())


def test_optional_columns_are_left_out_last_first_with_a_note() -> None:
    columns = ["sink", "delivered", "exported", "export failed", "failed", "dropped", "queued"]
    row = ["jsonl", "1,234,567", "-", "-", "0", "0", "0"]
    text = render(columns, [row], 40, optional=["export failed", "exported", "queued"])
    assert "1,234,567" in text and "…" not in text
    assert "(left out to fit 40 columns: export failed, exported, queued)" in text
    assert "queued" not in text.splitlines()[1]
    wide = render(columns, [row], 120, optional=["export failed", "exported", "queued"])
    assert "left out" not in wide and "export failed" in wide


def test_a_table_that_cannot_fit_is_printed_wider_not_cut() -> None:
    columns = [f"column{i}" for i in range(8)]
    row = [f"value-{i:06d}" for i in range(8)]
    text = render(columns, [row], 40)
    for value in row + columns:
        assert value in text
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) > 40


class Terminal(io.StringIO):
    """A stream that says it is a terminal of ``columns`` columns (rich asks the
    console's width, the shell asks isatty)."""

    def isatty(self) -> bool:
        return True


def test_a_table_too_wide_for_the_terminal_is_printed_wider_not_crushed() -> None:
    # on a terminal rich would squeeze the columns to the console's width and split the
    # values: the table is rendered at its own width and the terminal wraps its lines
    columns = [f"column{i}" for i in range(8)]
    row = [f"value-{i:06d}" for i in range(8)]
    stream = Terminal()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", "40")
        mp.setenv("NO_COLOR", "1")
        Output(stream).table(columns, [row])
    text = stream.getvalue()
    for value in row + columns:
        assert value in text, text
    assert max(len(line) for line in text.splitlines()) > 40


def test_wrap_lets_a_short_column_wrap_and_keep_holds_a_long_one() -> None:
    long_id = "x" * 30  # longer than SHORT, yet an id: marked keep
    text = render(
        ["id", "backend"], [[long_id, "replay (recorded)"]], 30, keep=["id"], wrap=["backend"]
    )
    assert long_id in text
    assert "…" not in text


@pytest.fixture
def demo(isolated_env: Path) -> Path:
    shutil.copytree(
        REPO / "docs" / "SPEC-KIT-DEMO",
        isolated_env / "docs" / "SPEC-KIT-DEMO",
        ignore=without_demo_outputs,
    )
    return isolated_env


@pytest.mark.parametrize("width", [80, 40])
async def test_plugin_tables_show_whole_values_at_narrow_widths(
    make_shell: ShellFactory,
    output: Any,
    demo: Path,
    width: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    shell = await make_shell()
    assert await shell.execute("/spec-plan SPEC-KIT-DEMO") == 0, output.errors
    start = len(output.text)
    for line in ("/history SPEC-KIT-DEMO", "/metrics", "/spec-status SPEC-KIT-DEMO", "/agents"):
        assert await shell.execute(line) == 0, output.errors
    text = output.text[start:]
    # the only ellipses left are the deliberate short forms (branch "…<8>", "…/dir")
    assert not re.search(r"\w…", text), text
    # /history: the run id in full (8 characters) and its cost word
    run_ids = re.findall(r"│ ([0-9a-f]{8}) │", text)
    assert run_ids, text
    assert "recorded" in text
    # /metrics per agent: input with its cached part, e.g. "3.3k (303)"
    assert re.search(r"│ \d[\d.,]*k? \(\d[\d.,]*k?\)\s+│", text), text
    # /spec-status: every stage name and the plan tokens with all digits
    for stage in ("plan", "tasks", "implement", "validate", "audit", "unlock"):
        assert f"│ {stage} " in text
    tokens = re.findall(r"│ (\d{1,3}(?:,\d{3})+) ", text)
    assert tokens, text
    # /agents: model names whole
    for model in ("claude-sonnet-4-5", "gemini-2.5-pro", "gpt-5-codex"):
        assert model in text


async def test_tables_in_non_tty_output_are_not_cut(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell()
    shell.output.table(["a", "b"], [("x" * 120, "the end"), ("short", "")])
    lines = output.text.splitlines()
    assert any("x" * 120 in line and "the end" in line for line in lines)
    assert all(line == line.rstrip() for line in lines)
    assert "…" not in output.text


NOTE = re.compile(r"^\(left out to fit (\d+) columns: (.+)\)$")


STILL = re.compile(r"^\(left out: (.+); the table is still wider than (\d+) columns\)$")


class Printed:
    """A printed table taken apart: per shown column, the text of each line."""

    def __init__(self, text: str) -> None:
        lines = text.splitlines()
        self.box = [line for line in lines if line[:1] in "┏┃┡│└"]
        self.notes = [line for line in lines if line.startswith("(left out")]
        self.top = next(line for line in self.box if line.startswith("┏"))
        head = [line for line in self.box if line.startswith("┃")]
        body = [line for line in self.box if line.startswith("│")]
        self.header = self._split(head, "┃")
        self.body = self._split(body, "│")
        self.width = max(len(line) for line in self.box)

    @staticmethod
    def _split(lines: list[str], rule: str) -> list[list[str]]:
        parts = [line.split(rule)[1:-1] for line in lines]
        return [[p[i] for p in parts] for i in range(len(parts[0]))] if parts else []

    def names(self) -> list[str]:
        # each header cell's lines joined: "export" + "failed" -> "export failed"
        return [" ".join(piece.strip() for piece in col if piece.strip()) for col in self.header]

    def column(self, name: str) -> list[str]:
        return [piece.strip() for piece in self.body[self.names().index(name)]]


def check(text: str, columns: list[str], rows: list[list[str]], width: int) -> Printed:
    """What every table must satisfy, measured on the printed text."""
    printed = Printed(text)
    # no zero-width column: every segment of the top rule is at least " x " wide
    segments = re.split("[┏┳┓]", printed.top)[1:-1]
    assert all(len(s) >= 3 for s in segments), printed.top
    shown = printed.names()
    assert shown == [c for c in columns if c in shown], (shown, columns)
    left_out = [c for c in columns if c not in shown]
    # every printed word is a whole word of that column (nothing split mid-word),
    # and every value that was not wrapped sits whole on one line
    for i, name in enumerate(shown):
        words = {w for row in rows for w in row[columns.index(name)].split()}
        for piece in printed.column(name):
            for token in piece.split():
                assert token in words, (name, token, text)
        for header_piece in printed.header[i]:
            for token in header_piece.split():
                assert token in name.split(), (name, token, text)
    # the note is the truth: it names exactly the missing columns, and "to fit" only
    # when the table fits
    if not left_out:
        assert not printed.notes, text
    else:
        assert len(printed.notes) == 1, text
        fit, still = NOTE.match(printed.notes[0]), STILL.match(printed.notes[0])
        assert fit or still, printed.notes[0]
        if fit:
            assert int(fit.group(1)) == width and printed.width <= width, text
            listed = fit.group(2)
        else:
            assert still is not None and printed.width > width, text
            listed = still.group(1)
        assert sorted(listed.split(", ")) == sorted(left_out), (listed, left_out)
    return printed


HISTORY = ["run", "branch", "started", "status", "calls", "replayed", "failed", "tokens", "cost"]


HISTORY_KW: dict[str, Any] = {
    "wrap": ["status"],
    "optional": ["branch", "replayed", "failed", "started"],
}


HISTORY_ROWS = [
    [
        "197b04a1",
        "…6185dd5c",
        "11-22 06:34:06Z",
        "cancelled (resumed)",
        "7",
        "12",
        "0",
        "81,724",
        "$0.0123",
    ],
    ["65c0b2db", "…6185dd5c", "11-22 06:40:09Z", "ok", "19", "0", "1", "1,204", "recorded"],
]


@pytest.mark.parametrize("width", [40, 60, 80])
def test_history_shaped_table_fits_with_whole_words(width: int) -> None:
    text = render(HISTORY, HISTORY_ROWS, width, **HISTORY_KW)
    printed = check(text, HISTORY, HISTORY_ROWS, width)
    shown = printed.names()
    for name in ("run", "status", "calls", "tokens", "cost"):
        assert name in shown, text
    for value in ("197b04a1", "81,724", "$0.0123", "recorded"):
        assert any(value in line for line in printed.box), (value, text)
    if width >= 60:
        assert printed.width <= width, text
    if width == 80:
        # resume reuse stays visible; the status wrapped at its space to make room
        assert "branch" in shown and "replayed" in shown, text
        assert printed.column("status")[:2] == ["cancelled", "(resumed)"], text


AGENTS = ["agent", "backend", "model", "role", "target", "credentials"]


AGENT_ROWS = [
    ["claude", "replay (recorded)", "claude-sonnet-4-5", "synthesizer", "", "not needed"],
    ["gpt_pro", "openai", "gpt-5", "aggregator", "http://127.0.0.1:8080/v1", "OPENAI_KEY set"],
]


@pytest.mark.parametrize("width", [40, 60, 80])
def test_agents_shaped_table_never_crushes_words(width: int) -> None:
    kw: dict[str, Any] = {"wrap": ["backend", "credentials"], "optional": ["role", "target"]}
    text = render(AGENTS, AGENT_ROWS, width, **kw)
    printed = check(text, AGENTS, AGENT_ROWS, width)
    assert "claude-sonnet-4-5" in text and "credentials" in printed.names()
    assert any(line.strip() == "(recorded)" for line in printed.column("backend")), text


STAGES = ["spec / stage", "agent", "target", "calls", "tokens", "cost", "est. next"]


STAGE_ROWS = [
    ["SPEC-KIT-DEMO plan", "(all)", "", "5 (2 replayed, 1 cancelled)", "12.9k", "$0.01", "3,258"],
    ["", "claude", "", "2 (1 replayed, 1 cancelled)", "4.1k", "$0.00", ""],
]


@pytest.mark.parametrize("width", [40, 60, 80])
def test_empty_and_short_columns_are_never_zero_wide_or_split(width: int) -> None:
    text = render(STAGES, STAGE_ROWS, width, wrap=["calls"], optional=["target", "est. next"])
    printed = check(text, STAGES, STAGE_ROWS, width)
    assert "┳┳" not in printed.top and "╇╇" not in text
    calls = " ".join(printed.column("calls"))
    assert "replayed," in calls.split() and "cancelled)" in calls.split(), text


PLUGINS = ["plugin", "state", "version", "distribution", "hooks"]


HOOKS = "after_agent_call, agent_call_failed, register_commands, register_telemetry_sinks"


PLUGIN_ROWS = [
    ["metrics", "loaded", "0.1.0", "agentshell", HOOKS],
    ["null", "loaded", "0.1.0", "agentshell", "register_commands"],
]


@pytest.mark.parametrize("width", [40, 60, 80])
def test_free_text_wraps_at_spaces_before_optional_columns_go(width: int) -> None:
    text = render(PLUGINS, PLUGIN_ROWS, width, optional=["version", "distribution"])
    printed = check(text, PLUGINS, PLUGIN_ROWS, width)
    hooks = [h.rstrip(",") for h in " ".join(printed.column("hooks")).split()]
    assert hooks.count("register_commands") == 2 and "register_telemetry_sinks" in hooks
    if width == 80:  # the hooks wrap: nothing needs leaving out
        assert printed.names() == PLUGINS and not printed.notes, text


def test_a_table_that_cannot_fit_says_so_and_is_not_crushed() -> None:
    columns = ["id", "path", "when", "extra"]
    rows = [["a1b2c3d4", "/var/lib/agentshell/telemetry.jsonl", "06:37:05-06:37:06", "x"]]
    text = render(columns, rows, 40, keep=["id"], optional=["extra"])  # one word: 35
    printed = check(text, columns, rows, 40)
    assert printed.width > 40 and "/var/lib/agentshell/telemetry.jsonl" in text
    assert printed.notes == ["(left out: extra; the table is still wider than 40 columns)"]


def test_only_a_word_wider_than_the_terminal_is_folded() -> None:
    word = "y" * 60
    text = render(["note"], [[f"short {word} words"]], 40)
    printed = Printed(text)
    assert printed.width <= 40, text
    # the long word folded across lines; "short" and "words" whole, on lines of their own
    assert "".join(printed.column("note")).replace(" ", "") == f"short{word}words"
    assert "short" in printed.column("note") and any(
        piece.split()[-1:] == ["words"] for piece in printed.column("note")
    )


WORDS = st.text(alphabet="abcdefghij", min_size=1, max_size=14)


CELLS = st.lists(WORDS, min_size=0, max_size=6).map(" ".join)


@settings(derandomize=True, max_examples=80)  # a fixed set of examples: never flaky
@given(
    rows=st.lists(st.lists(CELLS, min_size=5, max_size=5), min_size=1, max_size=4),
    width=st.sampled_from([40, 60, 80]),
    optional=st.lists(st.sampled_from(["c1", "c2", "c3", "c4"]), unique=True, max_size=3),
    wrap=st.lists(st.sampled_from(["c0", "c1", "c2", "c3", "c4"]), unique=True, max_size=2),
)
def test_any_table_keeps_words_whole_and_notes_true(
    rows: list[list[str]], width: int, optional: list[str], wrap: list[str]
) -> None:
    columns = ["c0", "c1", "c2", "c3", "c4"]
    text = render(columns, rows, width, optional=optional, wrap=wrap)
    printed = check(text, columns, rows, width)
    if not printed.notes and printed.width > width:
        # wider than the terminal only when even the narrowest layout is: no optional
        # column was there to leave out
        assert not optional, text


@pytest.mark.slow
def test_history_at_80_columns_shows_branch_and_replayed(demo: Path, tmp_path: Path) -> None:
    env = child_env(tmp_path / "home", COLUMNS="80")
    first = agentshell(env, "run", "/spec-plan SPEC-KIT-DEMO")
    assert first.returncode == 0, first.stderr
    # --resume of the finished branch: every call replayed, status "ok (resumed)"
    again = agentshell(env, "run", "/spec-plan SPEC-KIT-DEMO --resume")
    assert again.returncode == 0, again.stderr
    shown = agentshell(env, "run", "/history SPEC-KIT-DEMO")
    assert shown.returncode == 0, shown.stderr
    printed = Printed(shown.stdout)
    assert printed.width <= 80, shown.stdout
    names = printed.names()
    assert "branch" in names and "replayed" in names, shown.stdout
    replayed = printed.column("replayed")
    assert replayed[-1] == "3" and replayed[0] == "0", shown.stdout
    branches = printed.column("branch")
    assert len(set(branches)) == 1 and re.fullmatch("…[0-9a-f]{8}", branches[0]), shown.stdout
    assert "(resumed)" in " ".join(printed.column("status")), shown.stdout
    for note in printed.notes:  # whatever is left out is said, and the table fits
        assert NOTE.match(note) and "branch" not in note and "replayed" not in note
