"""The docs agree with the code: the examples in docs/plugins.md are real plugins (load
them and use them), and the documented exit status of a bad configuration is the
CLI's."""

from __future__ import annotations

import json
import re
import types
from typing import Any

from tests.conftest import CapturedOutput
from tests.helpers.paths import REPO

DOC = REPO / "docs" / "plugins.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def module_from(source: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, f"{DOC}:{name}", "exec"), module.__dict__)
    return module


async def test_the_twenty_line_example_works(make_shell: Any, output: CapturedOutput) -> None:
    source = python_blocks()[0]
    assert len(source.strip().splitlines()) <= 25
    plugin = module_from(source, "wordcount")
    shell = await make_shell(plugins=[plugin])
    assert shell.plugins.infos["wordcount"].state == "loaded"
    assert await shell.execute("/wordcount one two --echo") == 0
    assert "2 words: one two" in output.text
    assert await shell.execute("/wordcount") == 1
    assert "wc 2" in shell.status_text()


async def test_the_telemetry_sink_example_works(make_shell: Any) -> None:
    plugin = module_from(python_blocks()[1], "tap")
    shell = await make_shell(
        plugins=[plugin],
        config='[telemetry]\nsinks = ["tap"]\n\n[telemetry.tap]\npath = "t.jsonl"\n',
    )
    assert await shell.execute("/help") == 0
    await shell.stop()
    lines = (shell.data_dir / "t.jsonl").read_text(encoding="utf-8").splitlines()
    types_seen = [json.loads(line)["type"] for line in lines]
    assert types_seen[0].startswith("session")
    assert len(types_seen) >= 2


def test_docs_give_exit_2_for_a_bad_configuration() -> None:
    from agentshell.cli import EXIT_USAGE

    spec_kit = (REPO / "docs" / "spec-kit.md").read_text(encoding="utf-8")
    sentence = spec_kit[spec_kit.index("Exit codes") :].split("\n\n")[0]
    assert f"`{EXIT_USAGE}` the configuration is invalid" in sentence
    assert "bad configuration" not in sentence.split(f"`{EXIT_USAGE}`")[0]
    configuration = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert f"stops with exit status {EXIT_USAGE}" in configuration
