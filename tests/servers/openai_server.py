"""A scriptable OpenAI-compatible chat-completions server on loopback, for tests.

Speaks ``POST /v1/chat/completions`` (JSON and ``stream: true`` SSE with chunked
transfer encoding), ``GET /v1/models`` and ``GET /v1/models/{id}`` over HTTP/1.1 with
keep-alive, one thread per connection, so a delayed reply never holds up another.

What each request gets is a `ScriptedReply`, chosen in this order:

1. the responder set with `OpenAIServer.set_responder`, when it returns a reply;
2. the next queued reply for the request's ``X-Agent-Name`` header (see `script`);
3. the next queued reply for the request's ``model`` field;
4. ``OpenAIServer.default``.

Run standalone: ``python -m tests.servers.openai_server [--content TEXT]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from tests.servers._http import LoopbackHTTPServer, LoopbackServerBase, QuietHandler

__all__ = [
    "AGENT_HEADER",
    "OpenAIServer",
    "RecordedCall",
    "Responder",
    "ScriptedReply",
    "make_usage",
]

AGENT_HEADER = "X-Agent-Name"


def make_usage(
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    *,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
    total_tokens: int | None = None,
) -> dict[str, Any]:
    """An OpenAI ``usage`` object."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens if total_tokens is None else total_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
    }


@dataclass
class ScriptedReply:
    """One scripted behaviour of the server for one request.

    - ``content``: the assistant message (streamed word by word when ``stream: true``).
    - ``status``: HTTP status; >= 400 answers an OpenAI-style error object
      (``{"error": {"message", "type", "param", "code"}}``), message ``error_message``.
    - ``delay_s``: sleep this long before answering (cut short by stop()).
    - ``stream_ok``: when False, a ``stream: true`` request gets 400
      ``unsupported_value`` for param ``stream`` (as models without streaming do).
    - ``usage``: the ``usage`` object verbatim (see `make_usage`); None = estimated
      from word counts, cached/reasoning 0.
    - ``headers``: extra response headers (``Retry-After``, ``x-ratelimit-reset-requests``).
    - ``body``: raw response body sent as is with ``status`` and ``headers``
      (Content-Type application/json unless given): invalid JSON, empty body,
      a 200 carrying an error object, 10 MB, ...
    - ``disconnect``: after the delay, close the socket without any response.
    - ``truncate_stream_after``: streaming only: send this many SSE events, then
      drop the connection (no terminating chunk, no ``[DONE]``).
    - ``model``: ``model`` in the response (default: the request's).
    - ``finish_reason``: ``choices[0].finish_reason``.
    - ``chunk_delay_s``: streaming only: pause between SSE events.
    - ``pieces``: streaming only: the content deltas, as given (default: ``content``
      split into words). ``content`` is ignored when it is set.
    - ``hold_after`` / ``release``: streaming only: after ``hold_after`` content deltas
      the server waits until the test sets ``release`` (a ``threading.Event``), so a
      test can look at a partial answer before the rest is sent. ``held`` is set
      before the last delta ahead of the hold is sent, so a client that has that delta
      knows the server is holding.
    """

    content: str = "ok"
    status: int = 200
    delay_s: float = 0.0
    stream_ok: bool = True
    usage: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str | bytes | None = None
    disconnect: bool = False
    truncate_stream_after: int | None = None
    model: str | None = None
    finish_reason: str = "stop"
    error_message: str | None = None
    chunk_delay_s: float = 0.0
    pieces: Sequence[str] | None = None
    hold_after: int | None = None
    release: threading.Event | None = None
    held: threading.Event = field(default_factory=threading.Event)

    def answer_pieces(self) -> list[str]:
        return list(self.pieces) if self.pieces is not None else _split_content(self.content)

    @property
    def answer(self) -> str:
        return "".join(self.answer_pieces())


@dataclass(frozen=True)
class RecordedCall:
    """One request to ``/v1/chat/completions`` as the server received it.

    ``headers`` keys are lower-case. ``json`` is {} when the body was not a JSON object.
    ``time`` is wall-clock (time.time()), ``monotonic`` is time.monotonic().
    ``client_address`` is the peer ``host:port``: equal for requests sent over one
    pooled (keep-alive) connection.
    """

    model: str | None
    agent: str | None
    authorization: str | None
    json: dict[str, Any]
    headers: dict[str, str]
    raw: bytes
    stream: bool
    path: str
    time: float
    monotonic: float
    client_address: str

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages = self.json.get("messages")
        return list(messages) if isinstance(messages, list) else []


Responder = Callable[[dict[str, Any], dict[str, str]], ScriptedReply | None]
"""(request JSON, lower-cased request headers) -> a reply, or None to fall through."""


_ERROR_KINDS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to sample from this model."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again in 1s."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def _error_body(
    status: int, message: str | None = None, param: str | None = None, code: str | None = None
) -> bytes:
    kind, default_code, default_message = _ERROR_KINDS.get(
        status,
        ("server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status}"),
    )
    error = {
        "message": message or default_message,
        "type": kind,
        "param": param,
        "code": code or default_code,
    }
    return json.dumps({"error": error}).encode()


def _count_words(value: Any) -> int:
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_count_words(part.get("text", "")) for part in value if isinstance(part, dict))
    return 0


def _estimate_usage(request: dict[str, Any], content: str) -> dict[str, Any]:
    messages = request.get("messages")
    prompt = 0
    if isinstance(messages, list):
        prompt = sum(_count_words(m.get("content")) + 1 for m in messages if isinstance(m, dict))
    return make_usage(prompt, len(content.split()))


def _split_content(content: str) -> list[str]:
    """Word-sized stream pieces that join back to ``content`` exactly."""
    return re.findall(r"\s*\S+\s*|\s+", content) if content else []


class _Handler(QuietHandler):
    server: LoopbackHTTPServer

    @property
    def owner(self) -> OpenAIServer:
        return cast(OpenAIServer, self.server.owner)

    # -- routing ----------------------------------------------------------------
    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if path in ("/v1/models", "/models"):
            data = [self._model_object(name) for name in self.owner.model_ids()]
            self._send_json(200, {"object": "list", "data": data})
        elif path.startswith(("/v1/models/", "/models/")):
            name = path.rsplit("/", 1)[1]
            if name in self.owner.model_ids():
                self._send_json(200, self._model_object(name))
            else:
                self._send(404, _error_body(404, f"The model '{name}' does not exist"))
        else:
            self._send(404, _error_body(404, f"Unknown path {path}", code="unknown_url"))

    def do_POST(self) -> None:
        raw = self.read_body()
        path = urlsplit(self.path).path.rstrip("/")
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self._send(404, _error_body(404, f"Unknown path {path}", code="unknown_url"))
            return
        try:
            self._chat(raw, path)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    # -- chat completions ---------------------------------------------------------
    def _chat(self, raw: bytes, path: str) -> None:
        owner = self.owner
        headers = {key.lower(): value for key, value in self.headers.items()}
        try:
            parsed = json.loads(raw) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            parsed = None
        request: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
        model = request.get("model")
        stream = request.get("stream") is True
        owner._record(
            RecordedCall(
                model=model if isinstance(model, str) else None,
                agent=headers.get(AGENT_HEADER.lower()),
                authorization=headers.get("authorization"),
                json=request,
                headers=headers,
                raw=raw,
                stream=stream,
                path=path,
                time=time.time(),
                monotonic=time.monotonic(),
                client_address="{}:{}".format(*self.client_address[:2]),
            )
        )
        if not isinstance(parsed, dict):
            self._send(400, _error_body(400, "We could not parse the JSON body of your request."))
            return
        if owner.api_key is not None and headers.get("authorization") != f"Bearer {owner.api_key}":
            self._send(401, _error_body(401))
            return

        try:
            reply = owner._next_reply(request, headers)
        except Exception as exc:  # a broken test responder: say so instead of hanging up
            owner._record_error(exc)
            self._send(500, _error_body(500, f"test responder raised {exc!r}"))
            return
        if reply.delay_s > 0 and owner.stopping.wait(reply.delay_s):
            self.drop_connection()
            return
        if reply.disconnect:
            self.drop_connection()
            return
        if reply.body is not None:
            body = reply.body.encode() if isinstance(reply.body, str) else reply.body
            self._send(reply.status, body, reply.headers)
            return
        if reply.status >= 400:
            self._send(reply.status, _error_body(reply.status, reply.error_message), reply.headers)
            return
        if stream and not reply.stream_ok:
            message = "Unsupported value: 'stream' does not support true with this model."
            self._send(
                400,
                _error_body(400, message, param="stream", code="unsupported_value"),
                reply.headers,
            )
            return

        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        response_model = reply.model or (model if isinstance(model, str) else "gpt-test")
        usage = reply.usage if reply.usage is not None else _estimate_usage(request, reply.answer)
        if stream:
            options = request.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            events = self._stream_events(
                completion_id, created, response_model, reply, usage, include_usage
            )
            self._stream(reply, events)
            return
        self._send_json(
            reply.status,
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": response_model,
                "system_fingerprint": "fp_agentshell_test",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": reply.finish_reason,
                    }
                ],
                "usage": usage,
            },
            reply.headers,
        )

    @staticmethod
    def _stream_events(
        completion_id: str,
        created: int,
        model: str,
        reply: ScriptedReply,
        usage: dict[str, Any],
        include_usage: bool,
    ) -> list[str]:
        def chunk(delta: dict[str, Any], finish_reason: str | None) -> str:
            payload: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_agentshell_test",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if include_usage:
                payload["usage"] = None
            return json.dumps(payload)

        events = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
        events += [chunk({"content": piece}, None) for piece in reply.answer_pieces()]
        events.append(chunk({}, reply.finish_reason))
        if include_usage:
            events.append(
                json.dumps(
                    {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "system_fingerprint": "fp_agentshell_test",
                        "choices": [],
                        "usage": usage,
                    }
                )
            )
        events.append("[DONE]")
        return events

    def _stream(self, reply: ScriptedReply, events: Iterable[str]) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.flush()
        for index, payload in enumerate(events):
            if reply.truncate_stream_after is not None and index >= reply.truncate_stream_after:
                self.drop_connection()
                return
            if (
                index > 0
                and reply.chunk_delay_s > 0
                and self.owner.stopping.wait(reply.chunk_delay_s)
            ):
                self.drop_connection()
                return
            # event 0 is the role; content delta N is event N. ``held`` is set before
            # the last delta before the hold is written: a client that has seen that
            # delta can rely on it (setting it afterwards raced the client's read)
            holding = reply.hold_after is not None and index == reply.hold_after
            if holding:
                reply.held.set()
            data = f"data: {payload}\n\n".encode()
            self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
            if holding and not self._wait_for(reply.release):
                self.drop_connection()
                return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # -- helpers ----------------------------------------------------------------
    def _wait_for(self, release: threading.Event | None) -> bool:
        """Wait for ``release`` (False when the server stops first)."""
        if release is None:
            return True
        # wakes the moment the test releases it; looks at `stopping` between waits
        while not release.wait(0.05):
            if self.owner.stopping.is_set():
                return False
        return True

    @staticmethod
    def _model_object(name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 0, "owned_by": "agentshell-tests"}

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_bytes(status, body, "application/json", headers)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers)


class OpenAIServer(LoopbackServerBase):
    """The server. ``with OpenAIServer() as server: ... server.base_url ...``.

    ``api_key``: when set, requests without ``Authorization: Bearer <api_key>`` get 401.
    ``models``: ids listed by ``GET /v1/models`` (besides every scripted key).
    """

    handler_class = _Handler

    def __init__(
        self,
        default: ScriptedReply | None = None,
        *,
        api_key: str | None = None,
        models: Sequence[str] = ("gpt-test",),
    ) -> None:
        super().__init__()
        self.default: ScriptedReply = default if default is not None else ScriptedReply()
        self.api_key = api_key
        self._models = list(models)
        self._lock = threading.Lock()
        self._queues: dict[str, deque[ScriptedReply]] = {}
        self._responder: Responder | None = None
        self._calls: list[RecordedCall] = []
        self._errors: list[BaseException] = []

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no path)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: what OpenAI clients take as base URL."""
        return f"{self.url}/v1"

    # -- scripting --------------------------------------------------------------
    def script(self, model_or_agent_key: str, replies: Sequence[ScriptedReply]) -> None:
        """Queue replies for requests whose ``X-Agent-Name`` header or ``model`` is the key.

        Each request takes the next reply; an exhausted queue falls back to ``default``.
        Calling again appends to the queue.
        """
        with self._lock:
            self._queues.setdefault(model_or_agent_key, deque()).extend(replies)

    def set_responder(self, fn: Responder | None) -> None:
        """Answer dynamically: ``fn(request_json, headers)``; None from it falls through."""
        with self._lock:
            self._responder = fn

    def pending(self, key: str) -> int:
        """How many scripted replies for ``key`` are still queued."""
        with self._lock:
            queue = self._queues.get(key)
            return len(queue) if queue else 0

    def reset(self) -> None:
        """Forget queued replies, the responder and recorded calls (default stays)."""
        with self._lock:
            self._queues.clear()
            self._responder = None
            self._calls.clear()
            self._errors.clear()

    def model_ids(self) -> list[str]:
        with self._lock:
            names = list(self._models) + [key for key in self._queues if key not in self._models]
        return names

    # -- recording ----------------------------------------------------------------
    @property
    def calls(self) -> list[RecordedCall]:
        """A snapshot of the chat-completion requests received, in arrival order."""
        with self._lock:
            return list(self._calls)

    def count_for(self, key: str) -> int:
        """Requests whose ``model`` or ``X-Agent-Name`` header equals ``key``."""
        with self._lock:
            return sum(1 for call in self._calls if key in (call.model, call.agent))

    @property
    def call_count(self) -> int:
        with self._lock:
            return len(self._calls)

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised by the responder (each answered with HTTP 500)."""
        with self._lock:
            return list(self._errors)

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    def _record(self, call: RecordedCall) -> None:
        with self._lock:
            self._calls.append(call)

    def _next_reply(self, request: dict[str, Any], headers: dict[str, str]) -> ScriptedReply:
        with self._lock:
            responder = self._responder
        if responder is not None:
            reply = responder(request, headers)
            if reply is not None:
                return reply
        keys = [headers.get(AGENT_HEADER.lower()), request.get("model")]
        with self._lock:
            for key in keys:
                if isinstance(key, str):
                    queue = self._queues.get(key)
                    if queue:
                        return queue.popleft()
            return self.default


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the loopback OpenAI-compatible test server.")
    parser.add_argument("--content", default="ok", help="default assistant reply")
    parser.add_argument("--delay", type=float, default=0.0, help="default delay in seconds")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with OpenAIServer(
        ScriptedReply(content=args.content, delay_s=args.delay), api_key=args.api_key
    ) as server:
        print(json.dumps({"base_url": server.base_url}), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()


if __name__ == "__main__":
    _main()
