"""Tab completion of /metrics through the REPL's own completer: one Tab never inserts
``reset`` alone."""

from __future__ import annotations

from typing import Any

import pytest


async def test_metrics_tab_offers_reset_and_json(
    make_shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from agentshell import CommandCompleter

    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "metrics")
    shell = await make_shell(config="[telemetry]\nsinks = []\n")
    completer = CommandCompleter(shell)

    def offered(typed: str) -> list[str]:
        return [c.text for c in completer.get_completions(Document(typed), CompleteEvent())]

    assert offered("/metrics ") == ["reset", "--json"]  # never `reset` alone on one Tab
    assert offered("/metrics r") == ["reset"]
    assert offered("/metrics --") == ["--json"]
