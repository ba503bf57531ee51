"""QA pass 3: tables never cut ids, numbers, costs or names (no ellipsis at any width);
free text wraps; less important columns are left out, with a note, when narrow."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from agentshell.output import Output
from tests.helpers.paths import REPO

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


def test_wrap_lets_a_short_column_wrap_and_keep_holds_a_long_one() -> None:
    long_id = "x" * 30  # longer than SHORT, yet an id: marked keep
    text = render(
        ["id", "backend"], [[long_id, "replay (recorded)"]], 30, keep=["id"], wrap=["backend"]
    )
    assert long_id in text
    assert "…" not in text


@pytest.fixture
def demo(isolated_env: Path) -> Path:
    shutil.copytree(REPO / "docs" / "SPEC-KIT-DEMO", isolated_env / "docs" / "SPEC-KIT-DEMO")
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
