"""The conversation of one shell session: its agent, its branch, and each turn.

A turn: the path's items (and the configured system message) plus the new user
message go to the agent; the answer streams into the terminal; the user item and the
answer are stored together, in one transaction, once the answer is complete (or
stopped: a cancelled answer is kept, marked). So a process killed mid-answer loses
only the unfinished turn.

The history lives in the resume store (``shell.state["speckit.resume.conversations"]``).
Without it (``[plugins.resume] enabled = false``) the conversation is kept in memory
for the session only, and the branch commands say why they cannot work.

Session metrics (``shell.state["metrics.session"]``, the metrics plugin, when
installed): every turn is already recorded by its agent call; this module adds what
only a conversation knows — an item replayed into the context from the store
(``record_replay``), a message the context already held (``record_duplicate_items``),
and the stored totals of a resumed conversation (``sync_absolute``).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from agentshell.agents import AgentRequest, AgentResponse, AgentSpec, TokenUsage
from agentshell.errors import AgentshellError, CommandError
from agentshell.redact import redact

from .events import (
    ChatTurnFinished,
    ChatTurnStarted,
    ConversationEnded,
    ConversationStarted,
    turn_key,
)
from .settings import ECHO_AGENT, ChatSettings

if TYPE_CHECKING:
    from agentshell import Shell
    from speckit_resume.conversations import ConversationItem, Conversations

CONVERSATIONS_KEY = "speckit.resume.conversations"
METRICS_KEY = "metrics.session"

COMPACT_PROMPT = (
    "Summarise the conversation so far for yourself, to continue it later: the user's "
    "goals, what was decided, facts and names that matter, open questions. Be concise; "
    "write only the summary."
)


class SessionMetricsApi(Protocol):
    """What the metrics plugin publishes at ``shell.state["metrics.session"]``."""

    def record_replay(self, key: str | None = None) -> None: ...
    def record_duplicate_items(self, count: int) -> None: ...
    def sync_absolute(self, total: TokenUsage, last: TokenUsage, turn_count: int) -> None: ...
    def estimated_next_prompt_tokens(self) -> int: ...
    def context_window(self, model: str) -> int | None: ...


@dataclass
class Item:
    """An item of the history in memory: a stored one, or one of a session without
    the store (``id`` 0)."""

    role: str
    content: str
    turn: int
    agent: str | None = None
    id: int = 0
    status: str = "ok"

    def message(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass
class TurnResult:
    response: AgentResponse | None
    text: str
    cancelled: bool = False


@dataclass
class ChatSession:
    shell: Shell
    agent: str
    conversation_id: str | None = None
    branch_id: str | None = None
    items: list[Item] = field(default_factory=list)
    warned: bool = False  # the context warning, once per conversation
    announced: set[str] = field(default_factory=set)  # conversations with an open span
    turns_this_session: int = 0

    # -- what it reaches -----------------------------------------------------------------

    @property
    def settings(self) -> ChatSettings:
        settings = self.shell.plugin_config("chat")
        return settings if isinstance(settings, ChatSettings) else ChatSettings()

    @property
    def store(self) -> Conversations | None:
        return self.shell.state.get(CONVERSATIONS_KEY)

    def need_store(self, what: str) -> Conversations:
        store = self.store
        if store is None:
            raise CommandError(
                f"{what} needs the resume store, which is off "
                "(set [plugins.resume] enabled = true, or install agentshell-speckit-resume)"
            )
        return store

    @property
    def metrics(self) -> SessionMetricsApi | None:
        return self.shell.state.get(METRICS_KEY)

    def spec(self, name: str | None = None) -> AgentSpec:
        """The agent called ``name`` (default: the session's chat agent)."""
        name = name or self.agent
        spec = self.shell.agents.get(name)
        if spec is None:
            known = ", ".join(sorted(self.shell.agents)) or "none"
            why = self.shell.broken_agents.get(name)
            detail = f": {why}" if why else f" (agents: {known}; see /agents)"
            raise CommandError(f"no agent {name!r}{detail}")
        return spec  # type: ignore[no-any-return]

    @property
    def last_turn(self) -> int:
        return max((i.turn for i in self.items), default=0)

    # -- conversations -------------------------------------------------------------------

    def _announce(self, conversation_id: str, *, resumed: bool) -> None:
        if conversation_id not in self.announced:
            self.announced.add(conversation_id)
            self.shell.telemetry.emit(
                ConversationStarted(
                    conversation_id=conversation_id, agent=self.agent, resumed=resumed
                )
            )

    def end_conversation(self) -> None:
        """Close the conversation's trace (``/new``, switching, the end of the session)."""
        if self.conversation_id is not None and self.conversation_id in self.announced:
            self.announced.discard(self.conversation_id)
            self.shell.telemetry.emit(
                ConversationEnded(conversation_id=self.conversation_id, turns=self.last_turn)
            )

    def new(self) -> None:
        """Start afresh: the next message opens a new conversation."""
        self.end_conversation()
        self.conversation_id = None
        self.branch_id = None
        self.items = []
        self.warned = False

    async def _ensure_conversation(self, first_text: str) -> None:
        if self.conversation_id is not None:
            return
        store = self.store
        if store is None:
            conversation, branch = "memory-" + os.urandom(4).hex(), "memory"
        else:
            conversation, branch = await asyncio.to_thread(
                store.create, agent=self.agent, title=" ".join(first_text.split())[:80]
            )
        self.conversation_id, self.branch_id = conversation, branch
        self._announce(conversation, resumed=False)

    def _load(self, branch_id: str) -> list[Item]:
        store = self.need_store("the history")
        return [_item(i) for i in store.load(branch_id)]

    def _replayed(self) -> None:
        """The path's items were (re)loaded into the context from the store: each one is
        a replay update (keyed by item, so replaying one again reads as a loop)."""
        metrics = self.metrics
        if metrics is None:
            return
        for item in self.items:
            metrics.record_replay(f"chat:{item.id}")

    async def resume(self, prefix: str | None) -> str:
        """Continue a stored conversation (the newest with ``prefix`` None); return its id."""
        store = self.need_store("/resume-chat")
        if prefix is None:
            recent = await asyncio.to_thread(store.recent, 1)
            if not recent:
                raise CommandError("no conversation to continue yet: just type a message")
            info = recent[0]
        else:
            info = await asyncio.to_thread(store.find, prefix)
        self.new()
        self.conversation_id = info.conversation_id
        self.branch_id = info.current_branch_id
        if info.agent and info.agent in self.shell.agents:
            self.agent = info.agent
        self.items = await asyncio.to_thread(self._load, info.current_branch_id)
        metrics = self.metrics
        if metrics is not None:
            # the store is the authority on what the conversation used so far
            total, last, turns = await asyncio.to_thread(store.totals, info.conversation_id)
            metrics.sync_absolute(total, last, turns)
        self._replayed()
        self._announce(info.conversation_id, resumed=True)
        return info.conversation_id

    async def branch(self, fork_turn: int, reason: str) -> str:
        """A new branch keeping turns ``<= fork_turn``; the old branch is kept."""
        store = self.need_store(f"/{reason}")
        if self.conversation_id is None or self.branch_id is None:
            raise CommandError(f"/{reason}: no conversation yet (type a message first)")
        self.branch_id = await asyncio.to_thread(
            store.fork, self.conversation_id, self.branch_id, fork_turn, reason
        )
        self.items = await asyncio.to_thread(self._load, self.branch_id)
        self.warned = False
        self._replayed()
        return self.branch_id

    # -- a turn --------------------------------------------------------------------------

    def _messages(self, text: str, system: str | None = None) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        system = system if system is not None else self.settings.system
        if system:
            messages.append({"role": "system", "content": system})
        messages.extend(i.message() for i in self.items)
        messages.append({"role": "user", "content": text})
        return messages

    async def send(self, text: str, agent_name: str | None = None) -> TurnResult:
        """One turn: ``text`` to the chat agent (or ``agent_name``, for this message
        only), the answer streamed, both stored. Ctrl-C keeps the partial answer, marked
        cancelled, and re-raises the cancellation."""
        spec = self.spec(agent_name)
        await self._ensure_conversation(text)
        assert self.conversation_id is not None and self.branch_id is not None
        masked = redact(text)
        duplicates = sum(1 for i in self.items if i.role == "user" and i.content == masked)
        if duplicates and self.metrics is not None:
            self.metrics.record_duplicate_items(1)  # the context already holds it
        turn = self.last_turn + 1
        key = turn_key(self.conversation_id, turn, os.urandom(3).hex())
        telemetry = self.shell.telemetry
        telemetry.emit(
            ChatTurnStarted(
                conversation_id=self.conversation_id,
                branch_id=self.branch_id,
                turn=turn,
                agent=spec.name,
                model=spec.model,
                key=key,
            )
        )
        request = AgentRequest(prompt=text, messages=self._messages(text))
        context = {
            "trace_parent": key,
            "conversation_id": self.conversation_id,
            "conversation_branch": self.branch_id,
            "chat_turn": turn,
        }
        quiet = self.shell.json_output
        answer = None if quiet else self.shell.output.stream_answer()
        try:
            if answer is None:
                response = await self.shell.runner.run(spec, request, context)
            else:
                with answer:
                    response = await self.shell.runner.run(
                        spec, request, context, on_delta=answer.delta
                    )
        except asyncio.CancelledError:
            partial = answer.text if answer is not None else ""
            # synchronous on purpose: the task is being cancelled, and a short SQLite
            # transaction is what keeps the partial answer; failing to keep it must not
            # turn the cancellation into another error
            try:
                self._store_turn(turn, text, spec, partial, None, cancelled=True)
            except AgentshellError as exc:
                self.shell.output.warn(f"the cancelled answer was not kept: {exc}")
            telemetry.emit(
                ChatTurnFinished(
                    conversation_id=self.conversation_id, turn=turn, key=key, status="cancelled"
                )
            )
            raise
        except Exception as exc:
            telemetry.emit(
                ChatTurnFinished(
                    conversation_id=self.conversation_id,
                    turn=turn,
                    key=key,
                    status="failed",
                    error=redact(str(exc))[:300],
                )
            )
            raise
        await asyncio.to_thread(
            self._store_turn, turn, text, spec, response.content, response, cancelled=False
        )
        telemetry.emit(
            ChatTurnFinished(
                conversation_id=self.conversation_id,
                turn=turn,
                key=key,
                status="ok",
                usage=response.usage,
                response_model=response.model or spec.model or None,
                cost_usd=response.cost_usd,
            )
        )
        self.turns_this_session += 1
        self._check_context(spec, response)
        return TurnResult(response=response, text=response.content)

    def _store_turn(
        self,
        turn: int,
        text: str,
        spec: AgentSpec,
        content: str,
        response: AgentResponse | None,
        *,
        cancelled: bool,
    ) -> None:
        if cancelled and not content.strip():
            return  # nothing was said: the message is not part of the history
        user = Item("user", redact(text), turn, spec.name)
        reply = Item("assistant", redact(content), turn, spec.name)
        reply.status = "cancelled" if cancelled else "ok"
        store = self.store
        if store is not None and self.conversation_id and self.branch_id:
            from speckit_resume.conversations import NewItem

            ids = store.append(
                self.conversation_id,
                self.branch_id,
                turn,
                [
                    NewItem(role="user", content=text, agent=spec.name),
                    NewItem(
                        role="assistant",
                        content=content,
                        agent=spec.name,
                        model=(response.model if response else None) or spec.model or None,
                        usage=response.usage if response else None,
                        cost_usd=response.cost_usd if response else None,
                        status="cancelled" if cancelled else "ok",
                    ),
                ],
            )
            user.id, reply.id = ids[0], ids[1]
        self.items += [user, reply]

    # -- the context window --------------------------------------------------------------

    def context_window(self, spec: AgentSpec, response: AgentResponse | None) -> int:
        model = (response.model if response else "") or spec.model
        metrics = self.metrics
        window = metrics.context_window(model) if metrics is not None and model else None
        return window or self.settings.context_tokens

    def next_prompt_estimate(self, response: AgentResponse | None) -> int:
        """The next prompt's size: the whole context this answer closed (what was sent
        plus the answer), or the session metrics' estimate when that is larger."""
        usage = response.usage if response is not None else TokenUsage()
        context = usage.input_tokens + usage.output_tokens
        metrics = self.metrics
        if metrics is not None and metrics.estimated_next_prompt_tokens() > context:
            return metrics.estimated_next_prompt_tokens()
        return context

    def _check_context(self, spec: AgentSpec, response: AgentResponse) -> None:
        if self.warned:
            return
        window = self.context_window(spec, response)
        estimate = self.next_prompt_estimate(response)
        if estimate * 100 < window * self.settings.warn_at_pct:
            return
        self.warned = True
        pct = estimate * 100 // window
        self.shell.output.warn(
            f"the conversation is at ~{estimate:,} tokens, {pct}% of the context window "
            f"({window:,}); /compact summarises the older turns into one item"
        )

    async def compact(self) -> str:
        """Summarise the path with the chat agent into one system item, on a new branch."""
        store = self.need_store("/compact")
        if self.conversation_id is None or not self.items:
            raise CommandError("/compact: nothing to compact yet")
        spec = self.spec()
        messages = self._messages(COMPACT_PROMPT)
        context = {"conversation_id": self.conversation_id, "chat_turn": 0}
        response = await self.shell.runner.run(
            spec, AgentRequest(prompt=COMPACT_PROMPT, messages=messages), context
        )
        summary = "Summary of the conversation so far:\n\n" + response.content.strip()
        from speckit_resume.conversations import NewItem

        assert self.branch_id is not None
        self.branch_id = await asyncio.to_thread(
            store.fork, self.conversation_id, self.branch_id, -1, "compact"
        )
        await asyncio.to_thread(
            store.append,
            self.conversation_id,
            self.branch_id,
            0,
            [NewItem(role="system", content=summary, agent=spec.name, usage=response.usage)],
        )
        self.items = await asyncio.to_thread(self._load, self.branch_id)
        self.warned = False
        return self.branch_id


def _item(stored: ConversationItem) -> Item:
    return Item(
        role=stored.role,
        content=stored.content,
        turn=stored.turn,
        agent=stored.agent,
        id=stored.id,
        status=stored.status,
    )


def default_agent(shell: Shell) -> str:
    settings = shell.plugin_config("chat")
    configured = settings.agent if isinstance(settings, ChatSettings) else None
    return configured or ECHO_AGENT


__all__ = ["ChatSession", "Item", "TurnResult", "default_agent"]
