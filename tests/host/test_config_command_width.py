"""``/config`` prints valid TOML at any terminal width: on a 60-column terminal a long
value stays on its key's line and a long ``# problem:`` comment is not continued on a
line without its ``#`` (the terminal wraps them softly, so a copy is still TOML).
Written to a real pty of 60 columns, read back from its other end."""

from __future__ import annotations

import fcntl
import os
import struct
import termios
import threading
import tomllib
from pathlib import Path

import pytest

from agentshell.output import Output
from agentshell.shell import Shell

LONG_PATH = "/tmp/a-rather-long-directory-name/for-telemetry/events-of-this-project.jsonl"


async def test_config_is_valid_toml_on_a_narrow_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AGENTSHELL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AGENTSHELL_TELEMETRY_SINKS", raising=False)
    (tmp_path / "agentshell.toml").write_text(
        # a valid long value, and a key with a problem (shown as a "# problem:" line)
        '[telemetry]\nsinks = ["null"]\n'
        f'[telemetry.jsonl]\npath = "{LONG_PATH}"\n[retry]\nattempts = "many many times"\n',
        encoding="utf-8",
    )
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 60, 0, 0))
    received = bytearray()

    def drain() -> None:  # the pty's buffer is small: read while the shell writes
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the other end closed
                return
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    terminal = open(slave, "w", encoding="utf-8", closefd=False)  # noqa: SIM115, ASYNC230
    output = Output(terminal, terminal, color="never")
    shell = Shell(mode="repl", output=output)
    try:
        await shell.start()
        assert await shell.execute("/config") == 0
        await shell.stop()
    finally:
        terminal.close()
        os.close(slave)
    reader.join(10)
    os.close(master)
    text = received.decode("utf-8").replace("\r\n", "\n")
    shown = text[text.index("[shell]") :]
    parsed = tomllib.loads(shown)  # a folded line would not parse
    assert parsed["telemetry"]["jsonl"]["path"] == LONG_PATH
    [problem] = [line for line in shown.splitlines() if line.startswith("# problem: ")]
    assert "retry.attempts" in problem and "many many times" in problem
    assert max(len(line) for line in shown.splitlines()) > 60  # the test means something
