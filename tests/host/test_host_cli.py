"""The ``agentshell`` command as a user runs it: real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import pytest

from tests.helpers.cli import agentshell, child_env, run_in


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return child_env(tmp_path / "home")


def test_run_success_and_failure_exit_codes(cli_env: dict[str, str]) -> None:
    ok = agentshell(cli_env, "run", "/help")
    assert ok.returncode == 0, ok.stderr
    assert "/plugins" in ok.stdout

    unknown = agentshell(cli_env, "run", "/help", "/nosuch", "/help plugins")
    assert unknown.returncode == 1
    assert "error: unknown command /nosuch" in unknown.stderr
    assert "» /help plugins" not in unknown.stdout  # stops at the first failure

    failing = agentshell(cli_env, "-p", "tests.helpers.sleepy", "run", "/fail")
    assert failing.returncode == 3
    assert "failing on purpose" in failing.stderr

    keep = agentshell(cli_env, "run", "-k", "/nosuch", "/help plugins")
    assert keep.returncode == 1
    assert "usage: /plugins" in keep.stdout


def test_run_file_and_stdin(cli_env: dict[str, str], tmp_path: Path) -> None:
    script = tmp_path / "script.txt"
    script.write_text("# a comment\n/help plugins\n\n/config path\n", encoding="utf-8")
    done = agentshell(cli_env, "run", "-f", str(script))
    assert done.returncode == 0, done.stderr
    assert "» /help plugins" in done.stdout and "» /config path" in done.stdout

    piped = agentshell(cli_env, "run", "-f", "-", stdin="/help quit\n/nosuch\n")
    assert piped.returncode == 1
    assert "usage: /quit" in piped.stdout

    missing = agentshell(cli_env, "run", "-f", str(tmp_path / "nope.txt"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr and "Traceback" not in missing.stderr

    nothing = agentshell(cli_env, "run")
    assert nothing.returncode == 2
    assert "nothing to run" in nothing.stderr


def test_plugins_json_shape(cli_env: dict[str, str]) -> None:
    done = agentshell(cli_env, "plugins", "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert isinstance(listed, list) and listed
    for item in listed:
        assert set(item) == {
            "name",
            "module",
            "version",
            "distribution",
            "hooks",
            "state",
            "reason",
            "builtin",
        }
        assert item["state"] in {"loaded", "disabled", "failed"}
        assert (item["reason"] is None) == (item["state"] == "loaded")
    names = {item["name"]: item for item in listed}
    assert names["builtins"]["state"] == "loaded"
    assert names["builtins"]["distribution"] == "agentshell"

    cli_env["AGENTSHELL_DISABLE_PLUGINS"] = "agents"
    disabled = {i["name"]: i for i in json.loads(agentshell(cli_env, "plugins", "--json").stdout)}
    assert disabled["agents"]["state"] == "disabled"


HEAVY = ["prompt_toolkit", "httpx", "pydantic", "pluggy", "rich", "keyring", "platformdirs"]


def test_version_imports_nothing_heavy(cli_env: dict[str, str]) -> None:
    probe = (
        "import sys\n"
        "from agentshell.cli import main\n"
        "assert main(['--version']) == 0\n"
        f"heavy = {HEAVY!r}\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in heavy"
        " or m.startswith(('speckit_', 'agentshell.builtins', 'agentshell.backends',"
        " 'agentshell.sinks'))]\n"
        "print('LOADED', loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=cli_env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("agentshell ")
    assert "LOADED []" in done.stdout
    # and the console-script path, through the module entry point
    version = agentshell(cli_env, "--version")
    assert version.returncode == 0 and version.stdout.startswith("agentshell ")


def test_line_reader_without_a_terminal(cli_env: dict[str, str]) -> None:
    done = agentshell(cli_env, stdin="/help quit\n\n/config path\n")
    assert done.returncode == 0, done.stderr
    assert "usage: /quit" in done.stdout
    assert "agentshell>" not in done.stdout  # no prompt without a terminal
    failed = agentshell(cli_env, stdin="/nosuch\n/help\n")
    assert failed.returncode == 1
    assert "did you mean" in failed.stderr or "unknown command" in failed.stderr
    quit_early = agentshell(cli_env, stdin="/quit\n/nosuch\n")
    assert quit_early.returncode == 0
    assert "unknown command" not in quit_early.stderr


def _wait_for(stream: IO[str], text: str) -> str:
    seen = ""
    while text not in seen:
        chunk = stream.readline()
        if not chunk:
            raise AssertionError(f"{text!r} never appeared; got {seen!r}")
        seen += chunk
    return seen


@pytest.mark.parametrize("mode", ["run", "stdin"])
def test_sigterm_cancels_the_command_and_stops_cleanly(tmp_path: Path, mode: str) -> None:
    # SIGTERM is how CI cancels a job: handled like Ctrl-C, telemetry flushed, status 143
    home = tmp_path / "home"
    env = child_env(home, sinks="jsonl")
    args = ["-p", "tests.helpers.sleepy"] + (["run", "/sleep 30"] if mode == "run" else [])
    child = subprocess.Popen(
        [sys.executable, "-m", "agentshell", *args],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdin is not None and child.stdout is not None
        if mode == "stdin":  # the line reader; stdin stays open, as a CI pipe would
            child.stdin.write("/sleep 30\n")
            child.stdin.flush()
        _wait_for(child.stdout, "sleeping 30s")
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 143, err
    assert "terminated: cancelled" in out
    assert "woke up" not in out
    events = [
        json.loads(line)
        for path in home.rglob("telemetry*.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    assert "session.stopped" in [e.get("type") for e in events]


def _sigterm_at_idle_line_reader(home: Path, *, close_stdin: bool) -> tuple[int, str]:
    """Start the line reader, let a command finish, send SIGTERM; then either close stdin
    at once (``communicate``) or leave it open (``wait``). Returns (status, stderr)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "agentshell"],
        env=child_env(home, sinks="jsonl"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write("/help quit\n")
        child.stdin.flush()
        _wait_for(child.stdout, "usage: /quit")
        child.send_signal(signal.SIGTERM)
        if close_stdin:
            _, err = child.communicate(timeout=30)  # closes stdin right after the signal
        else:
            child.wait(timeout=30)
            assert child.stderr is not None
            err = child.stderr.read()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode, err


def test_sigterm_at_the_line_reader_prompt_exits(tmp_path: Path) -> None:
    # no command running, stdin open and idle: the process still leaves promptly
    status, err = _sigterm_at_idle_line_reader(tmp_path / "home", close_stdin=False)
    assert status == 143, err


def test_sigterm_followed_by_eof_still_exits_143(tmp_path: Path) -> None:
    # CI's cancel: SIGTERM, then the pipe closes. The EOF can reach the line reader
    # before the loop has run its signal callback; the exit status must not depend on
    # which comes first (this failed about 1 run in 3 under load before cli.py noted
    # the signal in a Python-level handler)
    for attempt in range(3):
        status, err = _sigterm_at_idle_line_reader(tmp_path / f"home{attempt}", close_stdin=True)
        assert status == 143, err


def test_p_module_honours_disable_by_its_plugins_name(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "AGENTSHELL_DISABLE_PLUGINS": "tests.helpers.sleepy"}
    listed = agentshell(env, "-p", "tests.helpers.sleepy", "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    info = {p["name"]: p for p in json.loads(listed.stdout)}["tests.helpers.sleepy"]
    assert info["state"] == "disabled"
    assert info["reason"] == "disabled by AGENTSHELL_DISABLE_PLUGINS"
    ran = agentshell(env, "-p", "tests.helpers.sleepy", "run", "/sleep 0")
    assert ran.returncode == 1
    assert "woke up" not in ran.stdout
    assert "unknown command /sleep" in ran.stderr
    # a command named like the plugin is explained by the plugin's state
    named = agentshell(env, "-p", "tests.helpers.sleepy", "run", "/sleepy")
    assert "plugin 'tests.helpers.sleepy' is disabled (AGENTSHELL_DISABLE_PLUGINS)" in named.stderr


def test_p_module_that_fails_to_import(cli_env: dict[str, str]) -> None:
    ran = agentshell(cli_env, "-p", "nosuchmod", "run", "/help")
    assert ran.returncode == 2
    assert "ModuleNotFoundError: No module named 'nosuchmod'" in ran.stderr
    assert "cli.py" not in ran.stderr  # the reason points at the user's module, not ours
    assert "/plugins" not in ran.stdout  # nothing ran
    # the line reader (like the REPL) still starts, with the error shown
    piped = agentshell(cli_env, "-p", "nosuchmod", stdin="/help quit\n")
    assert piped.returncode == 0, piped.stderr
    assert "No module named 'nosuchmod'" in piped.stderr
    assert "usage: /quit" in piped.stdout


def test_run_file_with_a_byte_order_mark(cli_env: dict[str, str], tmp_path: Path) -> None:
    script = tmp_path / "bom.txt"
    script.write_bytes("\ufeff/help quit\n/config path\n".encode())
    done = agentshell(cli_env, "run", "-f", str(script))
    assert done.returncode == 0, done.stderr
    assert "usage: /quit" in done.stdout
    piped = agentshell(cli_env, "run", "-f", "-", stdin="\ufeff/help quit\n")
    assert piped.returncode == 0, piped.stderr
    assert "usage: /quit" in piped.stdout


def test_closed_stdout_is_quiet(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written: EPIPE for sure
    try:
        done = subprocess.run(
            [sys.executable, "-m", "agentshell", "run", "/help", "/plugins"],
            env=child_env(tmp_path / "home"),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode in (0, 141)


def test_run_does_not_import_prompt_toolkit(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from agentshell.cli import main\n"
        "status = main(['run', '/help'])\n"
        "sys.stderr.write('LOADED=%s' % ('prompt_toolkit' in sys.modules))\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=child_env(tmp_path / "home"),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "/help" in done.stdout
    assert "LOADED=False" in done.stderr


def test_run_says_which_commands_were_skipped(tmp_path: Path) -> None:
    done = run_in(tmp_path, "run", "/nosuch", "/help", "/plugins --json")
    assert done.returncode == 1
    assert (
        "error: skipped 2 commands after the failure: /help, /plugins; use -k to keep going"
        in done.stderr
    )


def test_a_command_given_without_run_says_how_to_run_it(cli_env: dict[str, str]) -> None:
    done = agentshell(cli_env, "/spec-auto", "SPEC-KIT-DEMO")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: /spec-auto is a command of the shell: run it with "
        "agentshell run '/spec-auto SPEC-KIT-DEMO', or type it in the interactive shell "
        "(agentshell)"
    )
    assert "invalid choice" not in done.stderr


def test_run_help_describes_every_option_and_the_exit_statuses(cli_env: dict[str, str]) -> None:
    from agentshell.cli import EXIT_TELEMETRY_LOST, EXIT_USAGE

    done = agentshell(cli_env, "run", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "-p MODULE, --plugin MODULE also load the plugin in MODULE" in text
    assert f"{EXIT_USAGE} bad usage or configuration" in text
    assert f"{EXIT_TELEMETRY_LOST} the commands succeeded but a telemetry sink lost events" in text


def test_a_misspelt_option_before_the_subcommand_is_named(cli_env: dict[str, str]) -> None:
    # argparse alone takes "never" for a subcommand: "argument cmd: invalid choice"
    done = agentshell(cli_env, "--colour", "never")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: unknown option --colour (did you mean --color?); see agentshell --help"
    )
    bogus = agentshell(cli_env, "bogus")
    assert bogus.returncode == 2 and "argument COMMAND: invalid choice: 'bogus'" in bogus.stderr
