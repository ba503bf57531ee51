"""A telemetry sink that lost events makes ``agentshell run`` (and piped commands) exit
with status 4 after the commands succeeded, with one line at the end naming the sink,
where it writes and how much it lost; a sink listed in ``[telemetry] optional`` only
warns, and so does the interactive shell, which goes on.

Real sinks and real failures: a jsonl path under a regular file, a jsonl file on a full
tmpfs, an OTLP endpoint where nothing listens (connection refused), a third-party sink
loaded with ``-p``, a queue that overflows behind a sink that is still busy."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pexpect
import pytest

from agentshell.cli import EXIT_FAILED, EXIT_OK, EXIT_TELEMETRY_LOST
from agentshell.plugins import hookimpl
from agentshell.telemetry import Event, PluginErrorEvent
from tests.helpers.cli import child_env, spawn_repl
from tests.helpers.paths import REPO, without_demo_outputs
from tests.helpers.smallfs import fill, small_fs
from tests.helpers.sockets import free_port

ShellFactory = Any


def project(tmp_path: Path, config: str, *, docs: bool = False) -> Path:
    """A project directory with ``agentshell.toml`` (and the demo specs when ``docs``)."""
    where = tmp_path / "project"
    where.mkdir()
    (where / "agentshell.toml").write_text(config, encoding="utf-8")
    if docs:
        shutil.copytree(REPO / "docs", where / "docs", ignore=without_demo_outputs)
    return where


def agentshell(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``agentshell ARGS`` in ``cwd``, telemetry as its ``agentshell.toml`` says."""
    return subprocess.run(
        [sys.executable, "-m", "agentshell", *args],
        cwd=cwd,
        env=child_env(cwd / "home", sinks=None),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


def jsonl_under_a_file(tmp_path: Path, extra: str = "") -> Path:
    cwd = project(
        tmp_path,
        f'[telemetry]\nsinks = ["jsonl"]\n{extra}[telemetry.jsonl]\npath = "afile/t.jsonl"\n',
    )
    (cwd / "afile").write_text("a regular file, not a directory\n", encoding="utf-8")
    return cwd


def test_run_exits_4_when_the_jsonl_path_is_under_a_file(tmp_path: Path) -> None:
    cwd = jsonl_under_a_file(tmp_path)
    done = agentshell(cwd, "run", "/help")
    assert done.returncode == EXIT_TELEMETRY_LOST, done.stderr
    assert "/help" in done.stdout  # the command itself ran and succeeded
    target = cwd / "afile" / "t.jsonl"
    # said once when the sink cannot start, without mkdir's misleading "File exists"
    assert f"error: telemetry sink jsonl: cannot write {target}: Not a directory" in done.stderr
    line = last_line(done.stderr)
    assert line.startswith("error: telemetry: jsonl: all ")
    assert "event(s) lost; it did not start: cannot write" in line and str(target) in line
    assert "exit status 4" in line and '[telemetry] optional = ["jsonl"]' in line
    assert "Error" not in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_run_exits_4_when_the_jsonl_directory_is_read_only(tmp_path: Path) -> None:
    config = '[telemetry]\nsinks = ["jsonl"]\n[telemetry.jsonl]\npath = "ro/t.jsonl"\n'
    cwd = project(tmp_path, config)
    (cwd / "ro").mkdir(mode=0o555)
    try:
        done = agentshell(cwd, "run", "/help")
    finally:
        (cwd / "ro").chmod(0o755)
    assert done.returncode == EXIT_TELEMETRY_LOST, done.stderr
    line = last_line(done.stderr)
    assert line.startswith("error: telemetry: jsonl: all ") and "Permission denied" in line


def test_run_exits_0_with_a_warning_when_the_lost_sink_is_optional(tmp_path: Path) -> None:
    cwd = jsonl_under_a_file(tmp_path, extra='optional = ["jsonl"]\n')
    done = agentshell(cwd, "run", "/help")
    assert done.returncode == EXIT_OK, done.stderr
    line = last_line(done.stderr)
    assert line.startswith("warning: telemetry: jsonl: all ") and "event(s) lost" in line
    assert "exit status" not in line


def test_optional_can_be_set_from_the_environment(tmp_path: Path) -> None:
    cwd = jsonl_under_a_file(tmp_path)
    env = {**child_env(cwd / "home", sinks=None), "AGENTSHELL_TELEMETRY__OPTIONAL": '["jsonl"]'}
    done = subprocess.run(
        [sys.executable, "-m", "agentshell", "run", "/help"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == EXIT_OK, done.stderr
    assert last_line(done.stderr).startswith("warning: telemetry: jsonl: ")


def test_a_failed_command_keeps_its_own_status_and_the_loss_is_still_named(
    tmp_path: Path,
) -> None:
    cwd = jsonl_under_a_file(tmp_path)
    done = agentshell(cwd, "run", "/no-such-command")
    assert done.returncode == EXIT_FAILED, done.stderr
    assert last_line(done.stderr).startswith("error: telemetry: jsonl: all ")


def test_piped_commands_exit_4_when_a_sink_lost_events(tmp_path: Path) -> None:
    cwd = jsonl_under_a_file(tmp_path)
    done = agentshell(cwd, stdin="/help\n")
    assert done.returncode == EXIT_TELEMETRY_LOST, done.stderr
    assert "/help" in done.stdout
    assert last_line(done.stderr).startswith("error: telemetry: jsonl: all ")


def test_run_exits_4_when_the_jsonl_disk_is_full(tmp_path: Path) -> None:
    with small_fs(tmp_path / "fs", "64k") as fs:
        cwd = project(
            tmp_path,
            f'[telemetry]\nsinks = ["jsonl"]\n[telemetry.jsonl]\npath = "{fs}/t.jsonl"\n',
        )
        # the sink opens its (empty) file at start-up; every write then fails
        (fs / "t.jsonl").touch()
        (fs / "t.jsonl.lock").touch()
        fill(fs)
        done = agentshell(cwd, "run", "/help")
    assert done.returncode == EXIT_TELEMETRY_LOST, done.stderr
    line = last_line(done.stderr)
    assert line.startswith(f"error: telemetry: jsonl ({fs}/t.jsonl): "), line
    # the count, and the cause naming the file (os.write alone would not)
    assert " event(s) not written; last error: cannot write " in line
    assert f"{fs}/t.jsonl: No space left on device" in line
    assert "OSError" not in done.stderr


def test_run_exits_4_when_the_otlp_collector_refuses_connections(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    cwd = project(
        tmp_path,
        '[telemetry]\nsinks = ["otlp", "jsonl"]\nflush_timeout_s = 30\n'
        # under the SDK's first retry back-off: each export fails at once, not in a wait
        f'[telemetry.otlp]\nendpoint = "{endpoint}"\ntimeout = 0.75\n',
        docs=True,
    )
    done = agentshell(cwd, "run", "/spec-plan SPEC-KIT-DEMO")
    assert done.returncode == EXIT_TELEMETRY_LOST, done.stderr
    assert "plan: ok" in done.stdout  # the stage itself reached consensus
    line = last_line(done.stderr)
    assert line.startswith(f"error: telemetry: otlp ({endpoint}): "), line
    assert " span(s)" in line and "not exported" in line and "Connection refused" in line
    # the jsonl sink next to it lost nothing: it is not named
    assert "telemetry: jsonl" not in done.stderr


def test_a_third_party_sink_can_be_optional_without_a_setting_of_its_own(
    tmp_path: Path,
) -> None:
    config = '[telemetry]\nsinks = ["linefile"]\n{}[telemetry.linefile]\npath = "afile/x"\n'
    cwd = project(tmp_path, config.format(""))
    (cwd / "afile").write_text("", encoding="utf-8")
    args = ("-p", "tests.helpers.line_sink", "run", "/help")
    done = agentshell(cwd, *args)
    assert done.returncode == EXIT_TELEMETRY_LOST, done.stderr
    assert last_line(done.stderr).startswith("error: telemetry: linefile: all ")

    (cwd / "agentshell.toml").write_text(config.format('optional = ["linefile"]\n'))
    done = agentshell(cwd, *args)
    assert done.returncode == EXIT_OK, done.stderr
    assert last_line(done.stderr).startswith("warning: telemetry: linefile: all ")


def test_a_misspelt_optional_sink_is_a_warning_with_a_guess(tmp_path: Path) -> None:
    cwd = project(tmp_path, '[telemetry]\nsinks = ["null"]\noptional = ["jsnl"]\n')
    done = agentshell(cwd, "run", "/help")
    assert done.returncode == EXIT_OK, done.stderr
    assert (
        "telemetry.optional: no telemetry sink named 'jsnl' (did you mean 'jsonl'?" in done.stderr
    )


def test_a_sink_that_wrote_everything_changes_nothing(tmp_path: Path) -> None:
    cwd = project(tmp_path, '[telemetry]\nsinks = ["jsonl"]\n[telemetry.jsonl]\npath = "t.jsonl"\n')
    done = agentshell(cwd, "run", "/help")
    assert done.returncode == EXIT_OK, done.stderr
    assert "telemetry" not in done.stderr
    assert (cwd / "t.jsonl").read_text(encoding="utf-8").count("\n") >= 1


def test_the_repl_goes_on_and_warns_at_exit(tmp_path: Path) -> None:
    cwd = jsonl_under_a_file(tmp_path)
    # wide enough that the line is not wrapped; no colour codes inside it
    env = {"AGENTSHELL_TELEMETRY_SINKS": "jsonl", "NO_COLOR": "1"}
    child = spawn_repl(cwd / "home", cwd=cwd, dimensions=(40, 400), **env)
    child.expect("agentshell>")
    child.sendline("/help")
    child.expect("/quit")  # the shell works: /help lists its commands
    child.expect("agentshell>")
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == EXIT_OK
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", child.before or "")
    assert "warning: telemetry: jsonl: all " in text
    assert "exit status 4" not in text


# -- a queue that overflows: events dropped for a sink that is still busy ---------------


class BusySink:
    """Takes one event, then stays busy until released: what arrives meanwhile waits in
    its queue (of one) or is dropped."""

    def __init__(self) -> None:
        self.target = "busy://sink"
        self.busy = threading.Event()
        self.release = threading.Event()
        self.written: list[Event] = []

    def handle(self, event: Event) -> None:
        self.busy.set()
        self.release.wait(30)
        self.written.append(event)

    def close(self) -> None:
        pass


class BusySinkPlugin:
    __name__ = "busy_sink"

    def __init__(self) -> None:
        self.sink = BusySink()

    @hookimpl
    def register_telemetry_sinks(self, register: Any) -> None:
        register("busy", lambda shell, settings: self.sink)


async def test_events_dropped_on_a_full_queue_count_as_lost(
    make_shell: ShellFactory, output: Any
) -> None:
    plugin = BusySinkPlugin()
    shell = await make_shell(
        plugins=[plugin], config='[telemetry]\nsinks = ["busy"]\nqueue_size = 1\n'
    )
    shell.fail_on_telemetry_loss = True
    assert plugin.sink.busy.wait(30)  # handling session.started; its queue is empty
    for i in range(5):  # one fits in the queue, four are dropped
        shell.telemetry.emit(PluginErrorEvent(plugin="p", hook="h", error=str(i)))
    plugin.sink.release.set()
    await shell.stop()  # session.stopped is dropped too, or queued: it depends on timing
    assert shell.telemetry_lost
    line = last_line(output.errors)
    assert line.startswith("error: telemetry: busy (busy://sink): ")
    dropped = re.search(r"\): (\d+) event\(s\) dropped \(queue full\)", line)
    assert dropped is not None, line
    assert int(dropped.group(1)) in (4, 5)


async def test_telemetry_status_names_a_configured_sink_that_did_not_start(
    make_shell: ShellFactory, output: Any, tmp_path: Path
) -> None:
    (tmp_path / "afile").write_text("", encoding="utf-8")
    shell = await make_shell(
        config=f'[telemetry]\nsinks = ["jsonl"]\n[telemetry.jsonl]\npath = "{tmp_path}/afile/t"\n',
        mode="repl",
    )
    assert await shell.execute("/telemetry") == 0
    assert (
        f"  jsonl: did not start: cannot write {tmp_path}/afile/t: Not a directory "
        "(1 event(s) missed so far)"
    ) in output.text
    assert await shell.execute("/telemetry --json") == 0
    data = json.loads(output.text[output.text.rindex("\n{") :])
    [entry] = data["not_started"]
    assert entry["name"] == "jsonl" and entry["missed"] == 1
