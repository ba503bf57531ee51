"""Hostile or mistaken configuration is one clear line per problem when the config is
checked, never a traceback, a blocked read or a silently ignored setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agentshell.errors import ConfigError
from agentshell.plugins import hookimpl
from tests.helpers.cli import child_env


async def _problems(make_shell: Any, config: str, **kw: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        await make_shell(mode="run", config=config, **kw)
    lines = str(caught.value).splitlines()
    for line in lines:
        assert "Traceback" not in line and "Error:" not in line
        assert len(line) < 400, line[:200]
    return lines


# -- nesting -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        "[plugins.x]\nv = " + "[" * 400 + "]" * 400 + "\n",
        "[plugins.x]\nv = " + "{a = " * 400 + "1" + "}" * 400 + "\n",
        "[" + ".".join(["a"] * 400) + "]\nk = 1\n",
        "[plugins.x]\n" + ".".join(["k"] * 400) + " = 1\n",
    ],
    ids=["array", "inline-table", "header", "dotted-key"],
)
async def test_deep_nesting_is_one_line_not_a_recursion_error(make_shell: Any, config: str) -> None:
    lines = await _problems(make_shell, config)
    assert len(lines) == 1
    assert "nested more than 32 levels deep" in lines[0]
    assert lines[0].startswith("./agentshell.toml")


async def test_deep_nesting_from_the_environment_is_one_line(make_shell: Any) -> None:
    value = "[" * 400 + "]" * 400
    lines = await _problems(make_shell, "", env={"AGENTSHELL_PLUGINS__X__V": value})
    assert lines == [
        "environment variable AGENTSHELL_PLUGINS__X__V: plugins.x.v...: "
        "nested more than 32 levels deep"
    ]


# -- [telemetry] and strict values ---------------------------------------------------


async def test_unknown_telemetry_keys_are_reported_in_one_pass(make_shell: Any) -> None:
    lines = await _problems(
        make_shell, '[telemetry]\nsinkz = ["null"]\npath = "x"\n\n[retry]\nattempts = true\n'
    )
    assert sorted(lines) == sorted(
        [
            "./agentshell.toml:2: telemetry.sinkz: unknown key (did you mean 'sinks'?)",
            "./agentshell.toml:3: telemetry.path: unknown key "
            "(a sink's settings go in its own table, [telemetry.<sink>])",
            "./agentshell.toml:6: retry.attempts: Input should be a valid integer (got True)",
        ]
    )


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("[retry]\nbase_delay_s = false", "retry.base_delay_s: Input should be a valid number"),
        ('[retry]\nattempts = "3"', "retry.attempts: Input should be a valid integer"),
        ("[telemetry]\nqueue_size = 1.5", "telemetry.queue_size: Input should be a valid integer"),
    ],
)
async def test_numbers_are_strict(make_shell: Any, setting: str, expected: str) -> None:
    lines = await _problems(make_shell, setting + "\n")
    assert len(lines) == 1 and expected in lines[0]


async def test_a_nul_byte_in_a_value_is_one_line(make_shell: Any) -> None:
    lines = await _problems(make_shell, '[plugins.resume]\npath = "db\\u0000x"\n')
    assert lines == [
        "./agentshell.toml:2: plugins.resume.path: contains a NUL character "
        "(no path, name or command can hold one)"
    ]


async def test_a_huge_key_is_cut_in_the_message(make_shell: Any) -> None:
    key = "k" * 1_000_000
    lines = await _problems(make_shell, f"[retry]\n{key} = 1\n")
    assert len(lines) == 1 and "unknown key" in lines[0]
    assert len(lines[0]) < 200


# -- what the config file is --------------------------------------------------------


async def test_agentshell_config_naming_a_device_says_so(make_shell: Any) -> None:
    lines = await _problems(make_shell, "", env={"AGENTSHELL_CONFIG": "/dev/zero"})
    assert lines == ["/dev/zero: is a character device, not a config file"]


async def test_a_dangling_project_file_symlink_is_reported(make_shell: Any) -> None:
    Path("agentshell.toml").symlink_to("nowhere.toml")  # noqa: ASYNC240
    with pytest.raises(ConfigError) as caught:
        await make_shell(mode="run")
    assert str(caught.value) == (
        "./agentshell.toml: is a symbolic link to nowhere.toml, which does not exist"
    )


def test_agentshell_config_naming_a_fifo_is_reported_without_blocking(
    isolated_env: Path,
) -> None:
    fifo = isolated_env / "config.fifo"
    os.mkfifo(fifo)
    env = child_env(isolated_env / "home", AGENTSHELL_CONFIG=str(fifo))
    # nobody ever writes to the FIFO: a blocking read would hang until the timeout
    done = subprocess.run(
        [sys.executable, "-m", "agentshell", "run", "/help"],
        env=env,
        cwd=isolated_env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode != 0
    assert f"error: {fifo}: is a FIFO (named pipe), not a config file" in done.stderr
    assert "missing" not in done.stderr


# -- agents checked when the config is checked ----------------------------------------


async def test_a_command_agent_without_a_command_is_a_config_error(make_shell: Any) -> None:
    lines = await _problems(make_shell, '[agents.cli]\nbackend = "command"\n')
    assert lines == [
        "./agentshell.toml:1: agents.cli: the command backend needs "
        '`command = ["program", "arg", ...]`'
    ]


# -- plugin settings written the plain way -------------------------------------------


class CsvSettings(BaseModel):  # as docs/plugins.md shows: no model_config at all
    path: str = "events.csv"


class Nested(BaseModel):
    depth: int = 1


class PlainSettings(BaseModel):
    name: str = "x"
    nested: Nested = Nested()


class CsvSink:
    def __init__(self, settings: CsvSettings) -> None:
        self.settings = settings

    def emit(self, event: Any) -> None:
        pass

    def close(self) -> None:
        pass


class PlainPlugin:
    __name__ = "plain"

    def __init__(self) -> None:
        self.made: list[CsvSettings] = []

    @hookimpl
    def register_telemetry_sinks(self, register: Any) -> None:
        def make(shell: Any, settings: CsvSettings) -> CsvSink:
            self.made.append(settings)
            return CsvSink(settings)

        register("csvsink", make, config_model=CsvSettings)

    @hookimpl
    def register_config(self, register: Any) -> None:
        register("plain", PlainSettings)


async def test_a_typo_in_a_plain_sink_model_is_an_unknown_key(make_shell: Any) -> None:
    lines = await _problems(
        make_shell,
        '[telemetry]\nsinks = ["csvsink"]\n\n[telemetry.csvsink]\npth = "x.csv"\n',
        plugins=[PlainPlugin()],
    )
    assert lines == [
        "./agentshell.toml:5: telemetry.csvsink.pth: unknown key (did you mean 'path'?)"
    ]


async def test_a_typo_in_a_plain_sink_model_stops_the_sink_in_the_repl(
    make_shell: Any, output: Any
) -> None:
    plugin = PlainPlugin()
    await make_shell(
        mode="repl",
        config='[telemetry]\nsinks = ["csvsink"]\n\n[telemetry.csvsink]\npth = "x.csv"\n',
        plugins=[plugin],
    )
    assert plugin.made == []
    assert "telemetry.csvsink.pth: unknown key (did you mean 'path'?)" in output.errors


async def test_a_typo_in_a_plain_plugin_section_is_an_unknown_key(make_shell: Any) -> None:
    lines = await _problems(
        make_shell,
        '[plugins.plain]\nnme = "y"\n\n[plugins.plain.nested]\ndepht = 2\n',
        plugins=[PlainPlugin()],
    )
    assert sorted(lines) == [
        "./agentshell.toml:2: plugins.plain.nme: unknown key (did you mean 'name'?)",
        "./agentshell.toml:5: plugins.plain.nested.depht: unknown key (did you mean 'depth'?)",
    ]


async def test_a_model_that_allows_extra_keys_keeps_them(make_shell: Any) -> None:
    from pydantic import ConfigDict

    class Open(BaseModel):
        model_config = ConfigDict(extra="allow")
        name: str = "x"

    class OpenPlugin:
        __name__ = "open"

        @hookimpl
        def register_config(self, register: Any) -> None:
            register("open", Open)

    shell = await make_shell(
        mode="run", config='[plugins.open]\nanything = "y"\n', plugins=[OpenPlugin()]
    )
    assert shell.plugin_config("open").model_extra == {"anything": "y"}
