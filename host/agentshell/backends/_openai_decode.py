"""Reading an OpenAI-compatible server's answer: a ``chat.completion`` JSON body or a
stream of server-sent events, under a size cap, into an :class:`AgentResponse`; and
the one-line message in an error body.

Every malformed answer is a :class:`BadAgentOutput` (or, for a stream cut short, an
:class:`AgentDisconnected`, which the runner retries) whose message says what was
wrong without quoting more than a short, redacted preview.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from agentshell.agents import AgentResponse, AgentSpec, TokenUsage
from agentshell.errors import AgentDisconnected, BadAgentOutput
from agentshell.redact import redact

if TYPE_CHECKING:
    import httpx


def server_message(body: bytes) -> tuple[Any, str]:
    """The decoded error body (or ``None``) and a one-line, redacted message from it."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data: Any = json.loads(text) if text else None
    except ValueError:
        data = None
    message = ""
    if isinstance(data, Mapping):
        error = data.get("error")
        if isinstance(error, Mapping):
            message = str(error.get("message") or error.get("code") or error.get("type") or "")
        elif isinstance(error, str):
            message = error
        else:
            message = str(data.get("message") or data.get("detail") or "")
    elif text:
        message = text
    message = " ".join(message.split())
    return data, redact(message)[:300]


def error_code(data: Any) -> str:
    if isinstance(data, Mapping) and isinstance(data.get("error"), Mapping):
        return str(data["error"].get("code") or data["error"].get("type") or "")
    return ""


def content_text(content: Any) -> str:
    """``message.content``: a string, ``None``, or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


class Reader:
    """Reads a response body under a size cap, so an oversized answer is cut off after
    ``cap`` bytes instead of being held in memory (twice) in full."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.size = 0

    def count(self, chunk: bytes | str) -> None:
        self.size += len(chunk)
        if self.size > self.cap:
            raise BadAgentOutput(f"response too large (over {self.cap} bytes)")


async def read_body(response: httpx.Response, cap: int, *, truncate: bool = False) -> bytes:
    """The body, at most ``cap`` bytes: beyond that, raise (or stop, for error bodies)."""
    length = response.headers.get("content-length", "")
    if not truncate and length.isdigit() and int(length) > cap:
        raise BadAgentOutput(f"response too large ({int(length)} bytes, the limit is {cap})")
    reader = Reader(cap)
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        if truncate and len(buffer) + len(chunk) > cap:
            buffer += chunk[: cap - len(buffer)]
            break
        reader.count(chunk)
        buffer += chunk
    return bytes(buffer)


def parse_completion(agent: AgentSpec, raw: bytes) -> AgentResponse:
    """A ``chat.completion`` JSON body: the first choice's text, usage and model."""
    if not raw.strip():
        raise BadAgentOutput("empty response body")
    try:
        data = json.loads(raw)
    except ValueError:
        preview = redact(raw[:80].decode("utf-8", errors="replace"))
        raise BadAgentOutput(f"invalid JSON in the response: {preview!r}") from None
    if not isinstance(data, Mapping):
        raise BadAgentOutput(f"the response is a JSON {type(data).__name__}, not an object")
    if data.get("error"):
        _, message = server_message(raw)
        raise BadAgentOutput(f"the server answered HTTP 200 with an error: {message}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise BadAgentOutput("the response has no choices")
    choice = choices[0]
    reply = choice.get("message")
    if not isinstance(reply, Mapping):
        raise BadAgentOutput("the response's first choice has no message")
    content = content_text(reply.get("content"))
    if not content and isinstance(reply.get("refusal"), str) and reply["refusal"]:
        raise BadAgentOutput(f"the model refused: {redact(reply['refusal'])[:200]}")
    finish = choice.get("finish_reason")
    return AgentResponse(
        agent=agent.name,
        content=content,
        usage=TokenUsage.from_openai(data.get("usage")),
        model=str(data.get("model") or agent.model),
        finish_reason=finish if isinstance(finish, str) else None,
    )


async def read_stream(
    agent: AgentSpec,
    response: httpx.Response,
    cap: int,
    emit: Callable[[str], None] | None = None,
) -> AgentResponse:
    """Server-sent events: ``data: {chunk}`` lines until ``data: [DONE]``. Each piece
    of content goes to ``emit`` as it arrives (``AgentCall.emit``); usage comes from
    the chunk that carries it (the last one, with ``stream_options.include_usage``)."""
    reader = Reader(cap)
    parts: list[str] = []
    usage: Any = None
    model = ""
    finish: str | None = None
    done = False
    async for line in response.aiter_lines():
        reader.count(line)
        if not line.startswith("data:"):
            continue  # blank separators, comments (":"), "event:" lines
        payload = line[5:].strip()
        if payload == "[DONE]":
            done = True
            break
        try:
            chunk = json.loads(payload)
        except ValueError:
            raise BadAgentOutput(
                f"invalid JSON in a stream event: {redact(payload[:80])!r}"
            ) from None
        if not isinstance(chunk, Mapping):
            continue
        if chunk.get("error"):
            _, message = server_message(payload.encode())
            raise AgentDisconnected(f"the server ended the stream with an error: {message}")
        model = str(chunk.get("model") or model)
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, Mapping):
                text = content_text(delta.get("content"))
                if text:
                    parts.append(text)
                    if emit is not None:
                        emit(text)
            if isinstance(choice.get("finish_reason"), str):
                finish = choice["finish_reason"]
    if not done and finish is None:
        raise AgentDisconnected("the stream ended before it was complete (no [DONE])")
    return AgentResponse(
        agent=agent.name,
        content="".join(parts),
        usage=TokenUsage.from_openai(usage),
        model=model or agent.model,
        finish_reason=finish,
    )


__all__ = [
    "Reader",
    "content_text",
    "error_code",
    "parse_completion",
    "read_body",
    "read_stream",
    "server_message",
]
