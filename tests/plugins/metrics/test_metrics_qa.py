"""QA regressions of the metrics plugin: replays of a resume are no loop (only the same
call replayed again is), and one warning line when a call crosses several thresholds."""

from __future__ import annotations

from typing import Any

import pytest

from speckit_metrics.session import SessionMetrics


def test_distinct_replays_are_counted_but_are_no_loop() -> None:
    m = SessionMetrics()
    for i in range(19):  # a resume: every stored answer replayed once
        m.record_replay(f"agent{i % 3}:prompt{i}")
    assert m.replay_updates == 19
    assert m.loop_warning() is None


def test_the_same_call_replayed_again_is_a_loop() -> None:
    m = SessionMetrics()
    m.record_replay("claude:abc")
    m.record_replay("gemini:abc")  # same prompt, another agent: another call
    assert m.loop_warning() is None
    m.record_replay("claude:abc")
    assert m.loop_warning() is None  # one repeat
    m.record_replay("claude:abc")
    assert (m.loop_warning() or "").startswith("potential loop (2 repeated replays)")
    m.record_replay("claude:abc")
    m.record_replay("claude:abc")
    assert (m.loop_warning() or "").startswith("loop detected (4 repeated replays)")
    assert m.replay_updates == 6
    m.reset()
    assert m.loop_warning() is None and m.loop_replays == 0
    m.record_replay("claude:abc")
    assert m.loop_warning() is None  # the reset forgot what was replayed


async def test_metrics_tab_offers_reset_and_json(
    make_shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from agentshell.repl import CommandCompleter

    monkeypatch.setenv("AGENTSHELL_LOAD_PLUGINS", "metrics")
    shell = await make_shell(config="[telemetry]\nsinks = []\n")
    completer = CommandCompleter(shell)

    def offered(typed: str) -> list[str]:
        return [c.text for c in completer.get_completions(Document(typed), CompleteEvent())]

    assert offered("/metrics ") == ["reset", "--json"]  # never `reset` alone on one Tab
    assert offered("/metrics r") == ["reset"]
    assert offered("/metrics --") == ["--json"]
