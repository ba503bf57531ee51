"""A line that is not a slash command goes to the plugin that handles text (the
``handle_text`` hook); with none installed, the host says how to get one."""

from __future__ import annotations

from typing import Any

import pytest

from agentshell.commands import NO_CHAT


async def test_plain_text_without_a_chat_plugin_says_how_to_get_one(
    make_shell: Any, output: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "builtins,openai")
    shell = await make_shell(config="[telemetry]\nsinks = []\n")
    assert await shell.execute("hello") == 1
    assert NO_CHAT in output.errors
    assert "agentshell install agentshell-chat" in output.errors
