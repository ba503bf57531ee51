"""A start-up that fails in the interactive shell either leaves a working shell with
its built-in commands or exits with the error and a non-zero status, never a shell
that answers ``unknown command`` to everything, ``/help`` and ``/quit`` included.

Plugin code that breaks while the shell starts (a hook calling ``sys.exit``, a config
model whose validator raises something pydantic does not turn into a validation error)
is that plugin's failure: it is reported in one line and the shell goes on without it.
What cannot be attributed to a plugin ends the shell with the error.

Real parts: the shell in a real pty, read through a terminal emulator (pyte); the
broken plugin is a real module loaded with ``-p`` (tests/helpers/broken_start.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.screen import PROMPT, Terminal

PLUGIN = "tests.helpers.broken_start"

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("how", "why"),
    [
        ("config-model", "TypeError: the validator itself is broken"),
        ("exit", "SystemExit: 3"),
    ],
)
def test_a_plugin_breaking_start_up_leaves_the_built_in_commands(
    tmp_path: Path, how: str, why: str
) -> None:
    term = Terminal(tmp_path / "home", PLUGIN, BROKEN_START=how)
    try:
        term.wait_for(f"error: plugin {PLUGIN}:")
        assert why in term.text()
        term.type("/help quit")
        term.wait_for("usage: /quit")
        term.type("/broken-ok")  # the broken plugin's commands went with it
        term.wait_for("unknown command /broken-ok")
        assert "start-up failed" not in term.text()
        term.type("/quit")
        assert term.wait_for_exit() == 0
    finally:
        term.close()


def test_a_start_up_failure_not_owned_by_a_plugin_exits_with_the_error(tmp_path: Path) -> None:
    # a KeyboardInterrupt is not isolated as a plugin's failure: it stops start-up
    term = Terminal(tmp_path / "home", PLUGIN, BROKEN_START="interrupt")
    try:
        status = term.wait_for_exit()
        screen = term.text()
        assert status != 0, screen
        assert "error: start-up failed" in screen or "error: start-up interrupted" in screen
        assert "unknown command" not in screen
        assert PROMPT in screen  # the instant prompt had been drawn: the shell left it
    finally:
        term.close()
