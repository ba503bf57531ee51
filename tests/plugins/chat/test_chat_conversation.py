"""A conversation in a real shell against the loopback OpenAI-compatible server: what
each turn sends (only the current branch's path), /undo and /fork keeping the old
branch, resuming from the store, the session metrics' replay and duplicate counters,
secrets masked in the store and in telemetry, and the offline echo agent."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.servers.openai_server import OpenAIServer, ScriptedReply, make_usage

SECRET = "sk-proj-chatsecretvalue0123456789abcdef"


def config(server: OpenAIServer, extra: str = "") -> str:
    return (
        '[telemetry]\nsinks = ["jsonl"]\n\n'
        "[retry]\nattempts = 1\n\n"
        f'[agents.gpt]\nbackend = "openai"\nbase_url = "{server.base_url}"\n'
        'model = "gpt-4o-mini"\ntimeout = 10\n\n'
        f'[agents.other]\nbackend = "openai"\nbase_url = "{server.base_url}"\n'
        'model = "other-model"\ntimeout = 10\n\n'
        f'[plugins.chat]\nagent = "gpt"\n{extra}'
    )


def answer_with_turn(server: OpenAIServer) -> None:
    """Each answer names how many user messages it was sent: easy to tell apart."""

    def responder(request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply:
        users = [m["content"] for m in request["messages"] if m["role"] == "user"]
        return ScriptedReply(content=f"answer to {users[-1]}", usage=make_usage(100, 20))

    server.set_responder(responder)


def sent(server: OpenAIServer, index: int = -1) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in server.calls[index].messages]


async def test_each_turn_sends_the_path_so_far(
    make_shell: Any, openai_server: OpenAIServer, output: Any
) -> None:
    answer_with_turn(openai_server)
    shell = await make_shell(config=config(openai_server))
    assert await shell.execute("first question") == 0
    assert await shell.execute("second question") == 0
    assert sent(openai_server) == [
        ("user", "first question"),
        ("assistant", "answer to first question"),
        ("user", "second question"),
    ]
    assert "answer to second question" in output.text
    assert "chat gpt · turn 2" in shell.status_text()


async def test_undo_sends_only_the_current_branch_and_keeps_the_old_one(
    make_shell: Any, openai_server: OpenAIServer, output: Any
) -> None:
    answer_with_turn(openai_server)
    shell = await make_shell(config=config(openai_server))
    for text in ("one", "two", "three"):
        assert await shell.execute(text) == 0
    assert await shell.execute("/undo") == 0
    assert await shell.execute("three again") == 0
    assert sent(openai_server) == [
        ("user", "one"),
        ("assistant", "answer to one"),
        ("user", "two"),
        ("assistant", "answer to two"),
        ("user", "three again"),
    ]
    # the undone exchange is still stored, on the old branch
    store = shell.state["speckit.resume.conversations"]
    info = store.recent(1)[0]
    assert info.branches == 2
    assert info.items == 8


async def test_fork_sends_only_the_turns_up_to_the_fork(
    make_shell: Any, openai_server: OpenAIServer
) -> None:
    answer_with_turn(openai_server)
    shell = await make_shell(config=config(openai_server))
    for text in ("one", "two", "three"):
        assert await shell.execute(text) == 0
    assert await shell.execute("/fork 1") == 0
    assert await shell.execute("other path") == 0
    assert sent(openai_server) == [
        ("user", "one"),
        ("assistant", "answer to one"),
        ("user", "other path"),
    ]
    # forking the fork at its own turn 2 keeps turn 1 of the root and turn 2 of the fork
    assert await shell.execute("/fork 2") == 0
    assert await shell.execute("deeper") == 0
    assert sent(openai_server) == [
        ("user", "one"),
        ("assistant", "answer to one"),
        ("user", "other path"),
        ("assistant", "answer to other path"),
        ("user", "deeper"),
    ]
    assert await shell.execute("/fork 9") == 1


async def test_at_agent_sends_one_message_to_another_agent(
    make_shell: Any, openai_server: OpenAIServer
) -> None:
    answer_with_turn(openai_server)
    shell = await make_shell(config=config(openai_server))
    assert await shell.execute("hello") == 0
    assert await shell.execute("@other what do you think?") == 0
    assert openai_server.calls[-1].model == "other-model"
    assert sent(openai_server)[-1] == ("user", "what do you think?")
    assert await shell.execute("back to gpt") == 0
    assert openai_server.calls[-1].model == "gpt-4o-mini"
    assert await shell.execute("@nobody hi") == 1


async def test_chat_switches_the_agent(
    make_shell: Any, openai_server: OpenAIServer, output: Any
) -> None:
    answer_with_turn(openai_server)
    shell = await make_shell(config=config(openai_server))
    assert await shell.execute("/chat other") == 0
    assert await shell.execute("hi") == 0
    assert openai_server.calls[-1].model == "other-model"
    assert await shell.execute("/chat nobody") == 1
    assert "no agent 'nobody'" in output.errors
    from agentshell_chat.commands import complete_agents

    assert complete_agents(shell, "ot") == ["other"]


async def test_resume_continues_from_the_store_and_syncs_the_metrics(
    make_shell: Any, openai_server: OpenAIServer, output: Any
) -> None:
    answer_with_turn(openai_server)
    first = await make_shell(config=config(openai_server))
    assert await first.execute("remember 42") == 0
    assert await first.execute("and 43") == 0
    conversation = first.state["chat"].conversation_id
    await first.stop()

    second = await make_shell(config=config(openai_server))
    metrics = second.state["metrics.session"]
    assert await second.execute(f"/resume-chat {conversation[:6]}") == 0
    # the store is the authority: two answers of 120 tokens each
    assert metrics.session.turn_count == 2
    assert metrics.session.running_total.total_tokens == 240
    # the four items came back into the context from the store: replays
    assert metrics.replay_updates == 4
    assert await second.execute("what did I say?") == 0
    assert sent(openai_server)[0] == ("user", "remember 42")
    assert len(sent(openai_server)) == 5


async def test_a_message_sent_twice_counts_as_a_duplicate_item(
    make_shell: Any, openai_server: OpenAIServer
) -> None:
    answer_with_turn(openai_server)
    shell = await make_shell(config=config(openai_server))
    metrics = shell.state["metrics.session"]
    assert await shell.execute("same words") == 0
    assert metrics.duplicate_items == 0
    assert await shell.execute("same words") == 0
    assert metrics.duplicate_items == 1
    assert metrics.session.turn_count == 2  # every turn recorded through its call


async def test_secrets_in_a_message_are_masked_in_the_store_and_telemetry(
    make_shell: Any, openai_server: OpenAIServer, isolated_env: Path
) -> None:
    answer_with_turn(openai_server)
    shell = await make_shell(config=config(openai_server))
    assert await shell.execute(f"my key is {SECRET} keep it safe") == 0
    path = shell.state["speckit.resume"].path
    jsonl = shell.data_dir / "telemetry.jsonl"
    await shell.stop()
    with sqlite3.connect(path) as db:
        stored = " ".join(row[0] for row in db.execute("SELECT content FROM conversation_items"))
        titles = " ".join(row[0] for row in db.execute("SELECT title FROM conversations"))
    assert "my key is" in stored
    assert SECRET not in stored and SECRET not in titles
    events = jsonl.read_text()
    assert "chat.turn_finished" in events
    assert SECRET not in events


async def test_turns_are_chat_spans_under_one_conversation(
    make_shell: Any, openai_server: OpenAIServer
) -> None:
    answer_with_turn(openai_server)
    shell = await make_shell(config=config(openai_server))
    assert await shell.execute("one") == 0
    assert await shell.execute("two") == 0
    jsonl = shell.data_dir / "telemetry.jsonl"
    await shell.stop()
    events = [json.loads(line) for line in jsonl.read_text().splitlines()]
    started = [e for e in events if e["type"] == "chat.conversation_started"]
    turns = [e for e in events if e["type"] == "chat.turn_started"]
    calls = [e for e in events if e["type"] == "agent.call.started"]
    assert len(started) == 1 and len(turns) == 2
    assert {t["conversation_id"] for t in turns} == {started[0]["conversation_id"]}
    # each agent call hangs under its turn's span
    assert [c["trace_parent"] for c in calls] == [t["key"] for t in turns]
    assert [e for e in events if e["type"] == "chat.conversation_ended"]


async def test_without_a_configured_agent_the_echo_agent_explains(
    make_shell: Any, output: Any
) -> None:
    shell = await make_shell(config="[telemetry]\nsinks = []\n")
    assert await shell.execute("hello there") == 0
    assert "You said: hello there" in output.text
    assert '[plugins.chat]\nagent = "gpt"' in output.text


async def test_the_context_warning_comes_once_and_compact_starts_a_branch(
    make_shell: Any, openai_server: OpenAIServer, output: Any
) -> None:
    def responder(request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply:
        if "Summarise the conversation" in request["messages"][-1]["content"]:
            return ScriptedReply(content="the user likes 42", usage=make_usage(900, 10))
        return ScriptedReply(content="ok", usage=make_usage(850, 10))

    openai_server.set_responder(responder)
    # a model no price table knows: the configured window applies
    shell = await make_shell(
        config=config(openai_server, "context_tokens = 1000\n").replace(
            "gpt-4o-mini", "unknown-model-x"
        )
    )
    assert await shell.execute("one") == 0
    assert await shell.execute("two") == 0
    assert output.errors.count("of the context window") == 1
    assert "/compact" in output.errors
    assert await shell.execute("/compact") == 0
    assert await shell.execute("three") == 0
    assert sent(openai_server) == [
        ("system", "Summary of the conversation so far:\n\nthe user likes 42"),
        ("user", "three"),
    ]


async def test_bare_words_still_point_at_commands(make_shell: Any, output: Any) -> None:
    shell = await make_shell(config="[telemetry]\nsinks = []\n")
    assert await shell.execute("exit") == 1
    assert "to leave, type /quit" in output.errors
    assert await shell.execute("help") == 1
    assert "type /help" in output.errors
    assert "You said" not in output.text


async def test_resume_chat_completes_conversation_ids(
    make_shell: Any, openai_server: OpenAIServer
) -> None:
    answer_with_turn(openai_server)
    shell = await make_shell(config=config(openai_server))
    assert await shell.execute("hello") == 0
    conversation = shell.state["chat"].conversation_id
    from agentshell_chat.commands import complete_conversations

    assert complete_conversations(shell, conversation[:3]) == [conversation]
    assert await shell.execute("/resume-chat zzzz") == 1


async def test_the_otlp_trace_is_a_conversation_of_chat_turns(
    make_shell: Any, openai_server: OpenAIServer, otlp_receiver: Any
) -> None:
    answer_with_turn(openai_server)
    agents = config(openai_server).split("\n\n", 1)[1]  # the agents, without [telemetry]
    shell = await make_shell(
        config=(
            '[telemetry]\nsinks = ["otlp"]\nflush_timeout_s = 30\n'
            f'[telemetry.otlp]\nendpoint = "{otlp_receiver.endpoint}"\n\n{agents}'
        )
    )
    assert await shell.execute("one") == 0
    assert await shell.execute("two") == 0
    conversation_id = shell.state["chat"].conversation_id
    await shell.stop()  # ends the conversation and flushes the sink
    spans = otlp_receiver.wait_for_spans(5)
    (conversation,) = [s for s in spans if s["name"] == "conversation"]
    turns = [s for s in spans if s["name"] == "chat gpt"]
    calls = [s for s in spans if s["name"] == "chat gpt-4o-mini"]
    assert len(turns) == 2 and len(calls) == 2
    assert conversation["parent_span_id"] is None
    assert {t["parent_span_id"] for t in turns} == {conversation["span_id"]}
    assert {c["parent_span_id"] for c in calls} == {t["span_id"] for t in turns}
    assert {s["trace_id"] for s in spans} == {conversation["trace_id"]}
    attributes = turns[0]["attributes"]
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.conversation.id"] == conversation_id
    assert attributes["gen_ai.usage.input_tokens"] == 100
    assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
