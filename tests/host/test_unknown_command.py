"""An unknown command: did-you-mean only for a close name, and a hint naming the plugins
that are disabled (and where) or failed to load, since their commands are missing —
in a real shell and from the real CLI (``run`` and piped stdin)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentshell.plugins import hookimpl
from tests.conftest import CapturedOutput
from tests.helpers.cli import child_env


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [("hlep", "/help"), ("spec-atuo", "/spec-auto"), ("plgins", "/plugins"), ("bogus", None)],
)
async def test_did_you_mean_only_for_a_close_name(
    make_shell: Any, output: CapturedOutput, typo: str, suggestion: str | None
) -> None:
    shell = await make_shell()
    assert await shell.execute(f"/{typo}") == 1
    if suggestion is None:
        assert "did you mean" not in output.errors  # /bogus used to suggest /logout
    else:
        assert f"did you mean {suggestion}" in output.errors


async def test_disabled_plugins_say_where_and_their_commands_explain(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_DISABLE_PLUGINS", "metrics,faults")
    shell = await make_shell(config='[plugins]\ndisable = ["resume"]\n')
    infos = shell.plugins.infos
    assert infos["faults"].reason == "disabled by AGENTSHELL_DISABLE_PLUGINS"
    assert infos["resume"].reason == "disabled by plugins.disable in ./agentshell.toml"
    assert await shell.execute("/faults") == 1
    assert (
        "error: unknown command /faults: plugin 'faults' is disabled (AGENTSHELL_DISABLE_PLUGINS)"
        in output.errors
    )
    assert await shell.execute("/resume-x") == 1
    assert "plugin 'resume' is disabled (plugins.disable in ./agentshell.toml)" in output.errors


class BrokenPlugin:
    """Fails in register_commands, so the shell marks it failed."""

    __name__ = "broken"

    @hookimpl
    def register_commands(self, register: Any) -> None:
        raise RuntimeError("cannot register")


def error_lines(output: CapturedOutput) -> list[str]:
    return [line for line in output.errors.splitlines() if "unknown command" in line]


async def test_unknown_command_names_disabled_plugins(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_DISABLE_PLUGINS", "metrics,consensus")
    shell = await make_shell()
    assert await shell.execute("/hlep") == 1
    assert error_lines(output) == [
        "error: unknown command /hlep — did you mean /help? "
        "(2 plugins are disabled: consensus, metrics — see /plugins)"
    ]


async def test_unknown_command_names_failed_and_disabled_plugins(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_DISABLE_PLUGINS", "metrics")
    shell = await make_shell(plugins=[BrokenPlugin()])
    assert shell.plugins.infos["broken"].state == "failed"
    assert await shell.execute("/hlep") == 1
    assert error_lines(output) == [
        "error: unknown command /hlep — did you mean /help? "
        "(1 plugin is disabled: metrics; 1 failed to load: broken — see /plugins)"
    ]


async def test_unknown_command_hint_stays_one_short_line(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "builtins")  # every other one disabled
    shell = await make_shell()
    disabled = sorted(n for n, i in shell.plugins.infos.items() if i.state == "disabled")
    assert len(disabled) > 4
    assert await shell.execute("/hlep") == 1
    (line,) = error_lines(output)
    assert line.endswith(
        f"({len(disabled)} plugins are disabled: {', '.join(disabled[:4])} "
        f"and {len(disabled) - 4} more — see /plugins)"
    )


async def test_unknown_command_unchanged_when_every_plugin_loaded(
    make_shell: Any, output: CapturedOutput
) -> None:
    shell = await make_shell()
    assert all(info.state == "loaded" for info in shell.plugins.infos.values())
    assert await shell.execute("/hlep") == 1
    assert await shell.execute("/zzzzzz") == 1
    assert error_lines(output) == [
        "error: unknown command /hlep — did you mean /help? (type /help for the list)",
        "error: unknown command /zzzzzz (type /help for the list)",
    ]


def run_cli(home: Path, *args: str, stdin: str | None = None, **env: str) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "agentshell", *args],
        env=child_env(home, **env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_unknown_command_names_disabled_plugins(tmp_path: Path) -> None:
    done = run_cli(
        tmp_path / "home", "run", "/spec-plan", AGENTSHELL_DISABLE_PLUGINS="consensus,metrics"
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: unknown command /spec-plan (2 plugins are disabled: consensus, metrics "
        "— see /plugins)"
    ]


def test_cli_unknown_command_names_a_plugin_that_failed_to_import(tmp_path: Path) -> None:
    """Piped into the shell (no terminal): a ``-p`` module that does not import."""
    done = run_cli(tmp_path / "home", "-p", "tests.helpers.no_such_module", stdin="/hlep\n")
    assert done.returncode == 1
    assert (
        "error: unknown command /hlep — did you mean /help? "
        "(1 plugin failed to load: tests.helpers.no_such_module — see /plugins)"
    ) in done.stderr.splitlines()


async def test_with_builtins_disabled_the_hint_points_at_the_cli_not_a_missing_command(
    make_shell: Any, output: CapturedOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_DISABLE_PLUGINS", "builtins")
    shell = await make_shell()
    assert await shell.execute("/help") == 1
    assert error_lines(output) == [
        "error: unknown command /help (1 plugin is disabled: builtins — see agentshell plugins)"
    ]
