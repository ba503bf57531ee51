"""``/show <SPEC-ID> [stage]``: a stage's Markdown result, plain when piped (rendered
on a terminal: tests/host/test_repl_screen.py), the newest result by default, one-line
errors naming the command that writes a missing result, completion on specs and stages.

Real parts: the shell, the recorded demo agents writing the stage files, a real
``agentshell run`` child process for the piped output.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from agentshell import CommandCompleter
from speckit_consensus.stages import STAGES
from tests.helpers.cli import child_env
from tests.helpers.speckit import clear, copy_spec

SPEC, OTHER = "SPEC-KIT-DEMO", "SPEC-KIT-CONFLICT"
FAST = "[telemetry]\nsinks = []\n\n[plugins.consensus]\ndemo_latency_scale = 0\n"


@pytest.fixture
def project(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy_spec(isolated_env, SPEC, only_spec_md=True)
    copy_spec(isolated_env, OTHER, only_spec_md=True)
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "consensus,replay")
    return isolated_env


def offered(shell: Any, typed: str) -> list[str]:
    completer = CommandCompleter(shell)
    return [c.text for c in completer.get_completions(Document(typed), CompleteEvent())]


async def test_show_prints_the_stage_markdown_without_its_status_comment(
    make_shell: Any, output: Any, project: Path
) -> None:
    shell = await make_shell(config=FAST)
    assert await shell.execute(f"/spec-plan {SPEC}") == 0
    clear(output)
    assert await shell.execute(f"/show {SPEC} plan") == 0
    written = (project / "docs" / SPEC / "plan.md").read_text(encoding="utf-8")
    assert written.startswith("<!-- speckit-consensus:")
    shown = output.text
    assert "speckit-consensus:" not in shown
    assert shown.startswith(f"# Plan — {SPEC}\n")
    assert shown.strip() == written.split("\n", 1)[1].strip()  # the rest, verbatim
    assert "\x1b[" not in shown


async def test_show_defaults_to_the_stage_written_last(
    make_shell: Any, output: Any, project: Path
) -> None:
    shell = await make_shell(config=FAST)
    assert await shell.execute(f"/spec-auto {SPEC}") == 0
    assert (project / "docs" / SPEC / "unlock.md").is_file()
    clear(output)
    assert await shell.execute(f"/show {SPEC}") == 0
    assert output.text.startswith(f"# Unlock — {SPEC}")
    # plan run again: now the newest result, although an earlier stage
    assert await shell.execute(f"/spec-plan {SPEC}") == 0
    clear(output)
    assert await shell.execute(f"/show {SPEC}") == 0
    assert output.text.startswith(f"# Plan — {SPEC}")


async def test_show_errors_are_one_line_naming_the_command_that_writes_it(
    make_shell: Any, output: Any, project: Path
) -> None:
    shell = await make_shell(config=FAST)
    assert await shell.execute(f"/show {SPEC}") != 0
    assert output.errors.strip() == (
        f"error: no stage result for {SPEC} yet: none of docs/{SPEC}/<STAGE>.md exists "
        f"(/spec-auto {SPEC} writes them)"
    )
    clear(output)
    assert await shell.execute(f"/show {SPEC} spec-audit") != 0
    assert output.errors.strip() == (
        f"error: no audit result for {SPEC} yet: docs/{SPEC}/audit.md does not exist "
        f"(/spec-audit {SPEC} writes it)"
    )
    clear(output)
    assert await shell.execute("/show SPEC-NOPE plan") != 0
    assert output.errors.startswith("error: no spec 'SPEC-NOPE': docs/SPEC-NOPE/spec.md")
    clear(output)
    assert await shell.execute(f"/show {SPEC} nonsense") != 0
    assert output.errors.startswith("error: unknown stage 'nonsense'")
    assert "Traceback" not in output.errors


async def test_show_completes_spec_ids_then_stages(make_shell: Any, project: Path) -> None:
    shell = await make_shell(config=FAST)
    assert offered(shell, "/show ") == [OTHER, SPEC]
    assert offered(shell, "/show SPEC-KIT-D") == [SPEC]
    assert offered(shell, f"/show {SPEC} ") == list(STAGES)
    assert offered(shell, f"/show {SPEC} au") == ["audit"]


@pytest.mark.e2e
def test_show_piped_is_plain_markdown(project: Path) -> None:
    home = project.parent / "home"
    (project / "agentshell.toml").write_text(FAST, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "agentshell", "run", f"/spec-plan {SPEC}", f"/show {SPEC} plan"],
        env=child_env(home, FORCE_COLOR="", NO_COLOR=""),
        cwd=project,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    shown = done.stdout[done.stdout.index(f"# Plan — {SPEC}") :]
    assert "\x1b[" not in shown
    assert "## Consensus" in shown  # the Markdown source, not a rendering of it
    assert "speckit-consensus:" not in shown
