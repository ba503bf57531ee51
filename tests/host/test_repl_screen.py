"""What a user sees in a real terminal at 60 and 120 columns: the live status while a
command runs, the colour theme (and NO_COLOR), word-aware wrapping that never splits
a word, an id or a command, the first-run hint, the exit summary and commands typed in
any case.

Real parts: the shell in a pty, rendered by pyte (tests/helpers/screen.py); the
consensus plugin's recorded demo agents, slowed with ``demo_latency_scale`` so a
screen can be captured while they run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import agentshell, child_env
from tests.helpers.paths import DOCS
from tests.helpers.screen import IDLE_PROMPTS, PROMPT, Terminal, idle_after

pytestmark = pytest.mark.e2e

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"  # rich's "dots" frames
BRANCH_ID = re.compile(r"SPEC-KIT-[A-Z]+-\d{14}-[0-9a-f]{8}")
WIDTHS = [60, 120]


def spinning(row: str) -> bool:
    return bool(row) and row[0] in SPINNER


def project(tmp_path: Path, latency_scale: float = 0.05) -> tuple[Path, Path]:
    """A home and a project directory holding the two demo specs."""
    home, cwd = tmp_path / "home", tmp_path / "project"
    home.mkdir(exist_ok=True)
    for spec in ("SPEC-KIT-DEMO", "SPEC-KIT-CONFLICT"):
        (cwd / "docs" / spec).mkdir(parents=True)
        shutil.copy(DOCS / spec / "spec.md", cwd / "docs" / spec / "spec.md")
    (cwd / "agentshell.toml").write_text(
        f"[plugins.consensus]\ndemo_latency_scale = {latency_scale}\n", encoding="utf-8"
    )
    return home, cwd


def piped(home: Path, cwd: Path, *lines: str) -> str:
    """What ``lines`` print (run in one process) when stdout is not a terminal: never
    wrapped, so it holds every word whole."""
    done = subprocess.run(
        [sys.executable, "-m", "agentshell", "run", *lines],
        env=child_env(home, NO_COLOR="1"),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout + done.stderr


def assert_no_split_words(rows: list[str], whole: str) -> None:
    """Every word on screen is a word of the unwrapped text: nothing was cut in two."""
    words = set(whole.split())
    split = [w for row in rows for w in row.split() if w not in words]
    assert not split, f"split words {split}:\n" + "\n".join(rows)


@pytest.mark.parametrize("columns", WIDTHS)
def test_live_status_shows_running_agents_and_toolbar_mid_run(tmp_path: Path, columns: int) -> None:
    home, cwd = project(tmp_path, latency_scale=3.0)  # each recorded answer takes seconds
    term = Terminal(home, columns=columns, cwd=cwd)
    try:
        term.wait_for()
        term.send_line("/spec-plan SPEC-KIT-DEMO")

        def running(rows: list[str]) -> bool:  # a whole frame: the rows and the bar
            return any(spinning(r) and "gemini (researcher)" in r for r in rows) and any(
                "running ·" in r for r in rows
            )

        rows = term.until(running, "a spinner row for gemini")
        text = "\n".join(rows)
        bar = next(r for r in rows if "agents running" in r or "agent running" in r)
        assert "stage plan" in bar, text
        assert "tokens" in bar, text  # the metrics plugin's status segment stays on screen
        assert len(bar) <= columns, text
        first = [r for r in rows if spinning(r)]
        # the region redraws while the agents work: a spinner frame or the seconds change
        later = term.until(lambda rs: [r for r in rs if spinning(r)] not in ([], first), "a redraw")
        assert any(spinning(r) for r in later)
        term.child.sendintr()  # Ctrl-C: cancelled, the region goes, the prompt returns
        rows = term.until(lambda rs: any("^C cancelled" in r for r in rs), "the cancellation")
        rows = term.until(lambda rs: rs and any(r == PROMPT for r in rs), "the prompt")
        assert not any(spinning(r) for r in rows), term.text()
    finally:
        term.close()


def red_cells(term: Terminal, word: str) -> list[str]:
    """The foreground colour of each cell of the first row that starts with ``word``."""
    for y, row in enumerate(term.rows()):
        if row.startswith(word):
            return [term.screen.buffer[y][x].fg for x in range(len(word))]
    raise AssertionError(f"no row starts with {word!r}:\n{term.text()}")


@pytest.mark.parametrize("no_color", [False, True], ids=["color", "NO_COLOR"])
def test_errors_are_red_unless_no_color(tmp_path: Path, no_color: bool) -> None:
    home, cwd = project(tmp_path)
    env = {"NO_COLOR": "1"} if no_color else {}
    term = Terminal(home, columns=120, cwd=cwd, **env)
    try:
        term.wait_for()
        term.send_line("/nosuch")
        term.wait_for("error: unknown command /nosuch")
        colours = red_cells(term, "error:")
        if no_color:
            assert set(colours) == {"default"}
            assert "\x1b[31m" not in term.raw and "\x1b[1;31m" not in term.raw
        else:
            assert set(colours) == {"red"}
    finally:
        term.close()


def test_color_flag_forces_colour_into_a_pipe(tmp_path: Path) -> None:
    home, _ = project(tmp_path)
    env = child_env(home)
    forced = agentshell(env, "--color=always", "run", "/nosuch")
    assert "\x1b[1;31merror:\x1b[0m" in forced.stderr
    plain = agentshell(env, "run", "/nosuch")
    assert "\x1b[" not in plain.stderr
    assert "error: unknown command /nosuch" in plain.stderr
    env_forced = agentshell(child_env(home, FORCE_COLOR="1"), "run", "/nosuch")
    assert "\x1b[1;31merror:" in env_forced.stderr
    never = agentshell(child_env(home, FORCE_COLOR="1"), "run", "--color", "never", "/nosuch")
    assert "\x1b[" not in never.stderr


@pytest.mark.parametrize("columns", WIDTHS)
def test_help_wraps_at_spaces_never_inside_a_word(tmp_path: Path, columns: int) -> None:
    home, cwd = project(tmp_path)
    whole = piped(home, cwd, "/help spec-auto")
    term = Terminal(home, columns=columns, cwd=cwd)
    try:
        term.wait_for()
        term.send_line("/help spec-auto")
        term.wait_for("  (from plugin consensus)")
        rows = term.rows()
        start = rows.index(f"{PROMPT} /help spec-auto") + 1
        shown = rows[start : rows.index("  (from plugin consensus)") + 1]
        assert_no_split_words(shown, whole)
        assert all(len(r) <= columns for r in shown), "\n".join(shown)
        # one placeholder style, generated from the declared arguments
        assert "<SPEC-ID>" in whole and "<spec_id>" not in whole
        assert "--from <STAGE>" in whole
    finally:
        term.close()


@pytest.mark.parametrize("columns", WIDTHS)
def test_halt_block_keeps_the_resume_line_whole(tmp_path: Path, columns: int) -> None:
    home, cwd = project(tmp_path)
    whole = piped(home, cwd, "/spec-auto SPEC-KIT-CONFLICT")
    term = Terminal(home, columns=columns, lines=60, cwd=cwd)
    try:
        term.wait_for()
        term.send_line("/spec-auto SPEC-KIT-CONFLICT")
        term.wait_for("  resume with:")
        rows = term.rows()
        halted = next(i for i, r in enumerate(rows) if r.startswith("halted at audit"))
        block = rows[halted:]
        # the command to copy is on rows of its own, its branch id never cut
        label = next(i for i, r in enumerate(block) if "resume with:" in r)
        resume = next(
            i
            for i, r in enumerate(block)
            if i >= label and "/spec-auto SPEC-KIT-CONFLICT --from" in r
        )
        row = block[resume]
        if BRANCH_ID.search(row) is None:
            # wider than the terminal: on a row of its own, overflowing (the terminal
            # wraps it at the edge), never broken by a newline of ours
            assert row.lstrip().startswith("/spec-auto"), "\n".join(block)
            assert len(row) == columns, "\n".join(block)
            assert BRANCH_ID.search(row + block[resume + 1]), "\n".join(block)
        lines = logical_lines(block[:resume], columns)
        assert_no_split_words([BRANCH_ID.sub("BRANCH", r) for r in lines], whole_of(whole))
        # conflict magenta on the status line
        y = halted
        assert term.screen.buffer[y][0].fg == "magenta"
    finally:
        term.close()


def logical_lines(rows: list[str], columns: int) -> list[str]:
    """The lines as printed: a row filled to the last column went on in the next row
    (the terminal wrapped a word wider than the line), so the two are one line."""
    lines: list[str] = []
    carry = ""
    for row in rows:
        if len(row) == columns:
            carry += row
            continue
        lines.append(carry + row)
        carry = ""
    return [*lines, carry] if carry else lines


def whole_of(text: str) -> str:
    return BRANCH_ID.sub("BRANCH", text)


@pytest.mark.parametrize("columns", WIDTHS)
def test_halt_block_says_what_to_change_before_resuming(tmp_path: Path, columns: int) -> None:
    home, cwd = project(tmp_path)
    whole = whole_of(piped(home, cwd, "/spec-auto SPEC-KIT-CONFLICT"))
    term = Terminal(home, columns=columns, lines=60, cwd=cwd)
    try:
        term.wait_for()
        term.send_line("/spec-auto SPEC-KIT-CONFLICT")
        term.wait_for("  resume with:")
        rows = term.rows()
        halted = next(i for i, r in enumerate(rows) if r.startswith("halted at audit"))
        end = next(i for i, r in enumerate(rows) if i > halted and r in IDLE_PROMPTS)
        lines = [BRANCH_ID.sub("BRANCH", r) for r in logical_lines(rows[halted:end], columns)]
        text = "\n".join(lines)
        # every command is whole on one line (the terminal may wrap it at the edge,
        # never a newline of ours), so a copy of it runs
        assert "  details: /spec-consensus SPEC-KIT-CONFLICT audit" in lines
        assert "before resuming, change one of:" in text
        assert any(r.strip() == "the spec: edit docs/SPEC-KIT-CONFLICT/spec.md" for r in lines)
        goal = '/spec-auto SPEC-KIT-CONFLICT --from audit BRANCH --consensus "<GOAL>"'
        assert any(r.strip() in (f"the goal: {goal}", goal) for r in lines), text
        assert "/config reload" in text
        assert any(
            r.strip() in ("resume with: " + c, c)
            for r in lines
            for c in ["/spec-auto SPEC-KIT-CONFLICT --from audit BRANCH"]
        ), text
        assert text.index("before resuming") < text.index("resume with:")
        assert_no_split_words(lines, whole)
    finally:
        term.close()


@pytest.mark.parametrize("columns", WIDTHS)
def test_spec_consensus_after_a_halt_on_screen(tmp_path: Path, columns: int) -> None:
    home, cwd = project(tmp_path)  # evidence is off: the default
    term = Terminal(home, columns=columns, lines=60, cwd=cwd)
    try:
        term.wait_for()
        term.send_line("/spec-auto SPEC-KIT-CONFLICT")
        term.wait_for("  resume with:")
        term.send_line("/spec-consensus SPEC-KIT-CONFLICT audit")
        rows = term.until(
            lambda rows: (
                any("SPEC-KIT-CONFLICT audit: conflict (recorded" in r for r in rows)
                and idle_after(rows, "reason: agents' decisions")
            ),
            "the /spec-consensus summary",
        )
        assert not any(r.startswith("error:") for r in rows), "\n".join(rows)
        top = next(
            i for i, r in enumerate(rows) if r.startswith("SPEC-KIT-CONFLICT audit: conflict")
        )
        assert term.screen.buffer[top][0].fg == "magenta"
        assert any(r.lstrip().startswith("conflict: recommendation differs") for r in rows[top:])
        assert "store's summary)" in "\n".join(rows[top:])
    finally:
        term.close()


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("no_color", [False, True], ids=["color", "NO_COLOR"])
def test_show_renders_the_stage_markdown(tmp_path: Path, columns: int, no_color: bool) -> None:
    home, cwd = project(tmp_path)
    env = {"NO_COLOR": "1"} if no_color else {}
    term = Terminal(home, columns=columns, lines=200, cwd=cwd, **env)
    try:
        term.wait_for()
        term.send_line("/spec-plan SPEC-KIT-DEMO")
        term.wait_for("✓ plan: ok")
        before = len(term.raw)
        term.send_line("/show SPEC-KIT-DEMO")
        term.wait_for("Consensus")
        rows = term.rows()
        start = next(i for i, r in enumerate(rows) if r.startswith(f"{PROMPT} /show"))
        shown = rows[start + 1 :]
        text = "\n".join(shown)
        # rendered, not the source: no Markdown markers, no status comment
        assert "Plan — SPEC-KIT-DEMO" in text
        assert not any(r.lstrip().startswith(("# ", "## ", "**", "<!--")) for r in shown), text
        assert "speckit-consensus:" not in text
        assert all(len(r) <= columns for r in shown)
        styled = {
            (cell.fg, cell.bold)
            for row in range(start + 1, len(rows))
            for cell in term.screen.buffer[row].values()
            if cell.data.strip()
        }
        raw = term.raw[before:]
        if no_color:
            assert {fg for fg, _ in styled} == {"default"}
            assert not re.search(r"\x1b\[[0-9;]*3[0-7]m", raw)
        else:
            assert len({fg for fg, _ in styled}) > 1 or any(bold for _, bold in styled)
    finally:
        term.close()


@pytest.mark.parametrize("columns", WIDTHS)
def test_metrics_tables_never_split_a_word(tmp_path: Path, columns: int) -> None:
    home, cwd = project(tmp_path)
    term = Terminal(home, columns=columns, lines=150, cwd=cwd)
    try:
        term.wait_for()
        term.send_line("/spec-plan SPEC-KIT-DEMO")
        term.wait_for("✓ plan: ok")
        term.send_line("/metrics")
        term.wait_for("└")  # the last table's bottom edge, then the prompt
        rows = term.rows()
        start = max(i for i, r in enumerate(rows) if r.startswith(f"{PROMPT} /metrics"))
        # the same session, unwrapped, through a pipe: every word on screen is one of its
        whole = piped(home, cwd, "/spec-plan SPEC-KIT-DEMO", "/metrics")
        end = rows.index(PROMPT, start + 1)  # the next (idle) prompt
        shown = [r for r in rows[start + 1 : end] if not r.startswith("(left out to fit")]
        cells = [re.sub(r"[│┃┏┓┗┛━─┡┩└┘┌┐╇╈┳┻┼├┤╋]", " ", r) for r in shown]
        unwrapped = re.sub(r"[│┃┏┓┗┛━─┡┩└┘┌┐╇╈┳┻┼├┤╋]", " ", whole)
        assert_no_split_words([c for c in cells if c.strip()], unwrapped)
    finally:
        term.close()


def test_first_run_hint_and_exit_summary(tmp_path: Path) -> None:
    home, cwd = project(tmp_path)
    term = Terminal(home, columns=120, cwd=cwd)
    try:
        rows = term.until(
            lambda rs: any(r.startswith(PROMPT) and "Tab completes" in r for r in rs),
            "the first-run hint",
        )
        assert any("/help" in r and "Ctrl-D quits" in r and "talk to an agent" in r for r in rows)
        term.send_line("/HELP quit")  # any case
        term.wait_for("usage: /quit")
        term.send_line("exit")  # a bare word points at the command
        rows = term.until(lambda rs: any("type /quit" in r for r in rs), "the exit hint")
        term.send_line("/quit")
        term.child.expect_exact("commands")
        term.raw += term.child.before + "commands"
        term.stream.feed(term.child.before + "commands")
        summary = next(r for r in term.rows() if r.startswith("session "))
        assert "3 commands" in summary, term.text()
    finally:
        term.close()
    # the hint is for a fresh install only
    again = Terminal(home, columns=120, cwd=cwd)
    try:
        again.wait_for()
        again.pump(0.5)
        assert not any("Tab completes" in r for r in again.rows()), again.text()
    finally:
        again.close()
