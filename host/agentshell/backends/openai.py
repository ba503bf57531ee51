"""``openai``: any OpenAI-compatible ``/chat/completions`` server over httpx (OpenAI,
OpenRouter, Ollama, vLLM, llama.cpp server, ...).

Connections are pooled per backend instance and shared by every agent of the backend,
so a fan-out reuses keep-alive connections. The pool is a set of small
``httpx.AsyncClient`` shards rather than one client: httpcore 1.0's pool re-checks
every connection (a syscall each) on every request start and end, so one big pool
costs more per request the more connections it has. A call takes the least busy
shard; a new shard opens when every shard has 2 calls in flight. Every failure is
mapped to the taxonomy in :mod:`agentshell.errors`; retrying is the runner's job.

Per request the backend does only what varies (a 64-agent fan-out is bound by this
process's CPU per request): the URL is parsed and the timeout built once, the request
goes out through ``client.send`` with a ready ``httpx.Request`` (what
``client.stream`` would build, byte for byte), responses without Set-Cookie skip the
cookie jar, and the pools' connections are plain asyncio streams instead of anyio
ones (:class:`_FastBackend`: same errors, same TLS, ~15% less CPU a request).

Agent options (``[agents.<name>]`` keys besides the standard ones):
``stream`` (bool, default false), ``json_mode`` (bool: send
``response_format={"type": "json_object"}`` when the request expects JSON),
``include_usage`` (bool, default true: ``stream_options.include_usage`` when
streaming), ``max_response_bytes`` (default 8 MiB), ``connect_timeout_s`` (default 10),
``headers`` (extra request headers), ``extra_body`` (merged into the request JSON),
``max_tokens_param`` (``max_tokens`` or ``max_completion_tokens``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from agentshell.agents import AgentCall, AgentRequest, AgentResponse, AgentSpec, TokenUsage
from agentshell.errors import (
    AgentDisconnected,
    AgentError,
    AgentTimeout,
    AuthRequired,
    BadAgentOutput,
    FatalAgentError,
    RateLimited,
)
from agentshell.neterrors import describe_http_error
from agentshell.plugins import hookimpl
from agentshell.redact import redact, register_secret

if TYPE_CHECKING:
    import ssl

    import httpx

    from agentshell.hookspecs import Register

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
AGENT_HEADER = "X-Agent-Name"
_ERROR_BODY_CAP = 64 * 1024  # enough for any error object; the rest is not read
# A shard takes up to _SHARD_CALLS calls at once before another shard is opened, up to
# _MAX_SHARDS; beyond that the least busy one takes more. Small pools keep httpcore's
# per-request scans (every connection is checked for expiry, with a syscall) cheap.
_SHARD_CALLS = 2
_MAX_SHARDS = 32
_MAX_CONNECTIONS = 64  # per shard
_MAX_KEEPALIVE = 16  # per shard


def _option(agent: AgentSpec, key: str, default: Any) -> Any:
    value = agent.options.get(key, default)
    return default if value is None else value


def _server_message(body: bytes) -> tuple[Any, str]:
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


def _error_code(data: Any) -> str:
    if isinstance(data, Mapping) and isinstance(data.get("error"), Mapping):
        return str(data["error"].get("code") or data["error"].get("type") or "")
    return ""


def _content_text(content: Any) -> str:
    """``message.content``: a string, ``None``, or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


class _Reader:
    """Reads a response body under a size cap, so an oversized answer is cut off after
    ``cap`` bytes instead of being held in memory (twice) in full."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.size = 0

    def count(self, chunk: bytes | str) -> None:
        self.size += len(chunk)
        if self.size > self.cap:
            raise BadAgentOutput(f"response too large (over {self.cap} bytes)")


class OpenAIBackend:
    """The backend object: ``complete(call)`` and ``aclose()``."""

    def __init__(self, shell: Any, *, max_shards: int = _MAX_SHARDS) -> None:
        self.shell = shell
        self.max_shards = max(1, max_shards)
        self._clients: list[httpx.AsyncClient] = []
        self._in_flight: list[int] = []
        self._ssl: Any = None
        self._urls: dict[str, httpx.URL] = {}  # base_url -> parsed completions URL
        self._defaults: httpx.Headers | None = None  # the clients' default headers

    def _new_client(self) -> httpx.AsyncClient:
        import httpx  # heavy: imported on the first call, not at shell start-up

        if self._ssl is None:
            _remember_missing_sniffio()
            # One SSL context for all shards: building one costs ~50 ms.
            self._ssl = httpx.create_ssl_context()
        client = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=_MAX_CONNECTIONS,
                max_keepalive_connections=_MAX_KEEPALIVE,
                keepalive_expiry=60.0,
            ),
            timeout=httpx.Timeout(120.0, connect=10.0),
            verify=self._ssl,
            follow_redirects=False,
            trust_env=True,
        )
        _speed_up_liveness_checks(client)
        _skip_cookie_parsing_without_cookies(client)
        if self._defaults is None:
            self._defaults = httpx.Headers(client.headers)
        return client

    def _acquire(self) -> int:
        """The index of the shard for the next call: the least busy one, or a new one
        when every shard is at capacity (and the maximum is not reached)."""
        in_flight = self._in_flight
        index = min(range(len(in_flight)), key=in_flight.__getitem__) if in_flight else -1
        if index < 0 or (in_flight[index] >= _SHARD_CALLS and len(in_flight) < self.max_shards):
            self._clients.append(self._new_client())
            in_flight.append(0)
            index = len(in_flight) - 1
        in_flight[index] += 1
        return index

    def _release(self, index: int) -> None:
        if index < len(self._in_flight):
            self._in_flight[index] -= 1

    async def aclose(self) -> None:
        clients, self._clients, self._in_flight = self._clients, [], []
        for client in clients:
            await client.aclose()

    # -- the call ----------------------------------------------------------------------

    async def complete(self, call: AgentCall) -> AgentResponse:
        agent = call.agent
        request = call.request
        stream = (
            request.stream if request.stream is not None else bool(_option(agent, "stream", False))
        )
        body = self.request_body(agent, request, stream)
        url = self._url(agent.base_url or DEFAULT_BASE_URL)
        headers = await self._headers(agent)
        connect_s = min(float(_option(agent, "connect_timeout_s", 10.0)), agent.timeout_s)
        timeouts = _timeout_extension(agent.timeout_s, connect_s)
        content = _encode_json(body)
        for attempt in (1, 2):
            try:
                return await self._post(call, url, headers, content, timeouts)
            except _Unauthorized as exc:
                # A provider's token may have expired early: refresh once, try once more.
                if attempt == 1 and self._provider_auth(agent):
                    creds = await self.shell.auth.credentials(agent, refresh=True)
                    if creds is not None:
                        headers = {**headers, **creds.headers()}
                        continue
                raise self._auth_error(agent, exc.status, exc.message) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _url(self, base_url: str) -> httpx.URL:
        """The parsed completions URL of a base URL (parsing costs ~30 us a request)."""
        url = self._urls.get(base_url)
        if url is None:
            import httpx

            full = base_url.rstrip("/") + "/chat/completions"
            try:
                url = httpx.URL(full)
            except httpx.InvalidURL as exc:
                raise FatalAgentError(
                    f"bad base_url {redact(full)!r}: {redact(str(exc))}"
                ) from None
            if len(self._urls) < 256:  # bounded: base URLs come from the config
                self._urls[base_url] = url
        return url

    def request_body(self, agent: AgentSpec, request: AgentRequest, stream: bool) -> dict[str, Any]:
        messages: list[dict[str, Any]]
        if request.messages is not None:
            messages = list(request.messages)
        else:
            messages = []
            if request.system:
                messages.append({"role": "system", "content": request.system})
            messages.append({"role": "user", "content": request.prompt})
        body: dict[str, Any] = {
            "model": agent.model or _option(agent, "model", ""),
            "messages": messages,
            "stream": stream,
        }
        if stream and _option(agent, "include_usage", True):
            body["stream_options"] = {"include_usage": True}
        if request.max_tokens is not None:
            body[str(_option(agent, "max_tokens_param", "max_tokens"))] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.expect_json and _option(agent, "json_mode", False):
            body["response_format"] = {"type": "json_object"}
        extra = agent.options.get("extra_body")
        if isinstance(extra, Mapping):
            body.update(extra)
        return body

    async def _headers(self, agent: AgentSpec) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            AGENT_HEADER: agent.name,
        }
        extra = agent.options.get("headers")
        if isinstance(extra, Mapping):
            headers.update({str(k): str(v) for k, v in extra.items()})
        if agent.auth:
            creds = await self.shell.auth.credentials(agent)
            if creds is not None:
                headers.update(creds.headers())
            return headers
        secret = agent.options.get("api_key")  # `api_key = { env = "NAME" }` in the config
        if secret is not None:
            value = secret.get() if hasattr(secret, "get") else str(secret)
            if not value:
                env = getattr(secret, "env", None)
                fix = f"/set-env {env}=<value>" if env else None
                raise AuthRequired(f"{agent.name}: the api_key is not set", fix=fix)
            register_secret(value)
            headers["Authorization"] = f"Bearer {value}"
        return headers

    @staticmethod
    def _provider_auth(agent: AgentSpec) -> bool:
        kind = (agent.auth or "").partition(":")[0]
        return bool(agent.auth) and kind not in ("env", "keyring")

    def _auth_error(self, agent: AgentSpec, status: int, message: str) -> AuthRequired:
        ref = agent.auth or ""
        kind, _, rest = ref.partition(":")
        fix: str | None = None
        if kind == "env":
            fix = f"/set-env {rest}=<value>"
        elif kind == "keyring":
            service, _, name = rest.partition("/")
            fix = f"keyring set {service} {name}"
        elif ref:
            provider = self.shell.auth.provider(kind)
            if provider is not None:
                fix = provider.login_command(rest or None)
        elif isinstance(getattr(agent.options.get("api_key"), "env", None), str):
            fix = f"/set-env {agent.options['api_key'].env}=<value>"
        what = "refused the credentials" if status == 401 else "denied access"
        detail = f": {message}" if message else ""
        return AuthRequired(f"{agent.name}: the server {what} (HTTP {status}){detail}", fix=fix)

    async def _post(
        self,
        call: AgentCall,
        url: httpx.URL,
        headers: dict[str, str],
        content: bytes,
        timeouts: dict[str, float],
    ) -> AgentResponse:
        import httpx

        agent = call.agent
        cap = int(_option(agent, "max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES))
        shard = self._acquire()
        try:
            client = self._clients[shard]
            # What client.stream("POST", url, json=..., headers=..., timeout=...) builds,
            # without re-parsing the URL and re-merging the defaults on every call.
            merged = httpx.Headers(self._defaults)
            merged.update(headers)
            outgoing = httpx.Request(
                "POST", url, headers=merged, content=content, extensions={"timeout": timeouts}
            )
            if client.cookies:  # cookies the server set earlier go back, as with stream()
                client.cookies.set_cookie_header(outgoing)
            async with _closing(await client.send(outgoing, stream=True)) as response:
                if response.status_code >= 400:
                    raw = await _read(response, _ERROR_BODY_CAP, truncate=True)
                    raise self._status_error(agent, response, raw)
                if response.status_code != 200:
                    raise BadAgentOutput(f"unexpected HTTP {response.status_code} from the server")
                content_type = response.headers.get("content-type", "")
                if "text/event-stream" in content_type:
                    return await self._read_stream(agent, response, cap)
                # A server may ignore stream=true and answer JSON: accept that too.
                raw = await _read(response, cap)
                return self._parse_completion(agent, raw)
        except AgentError:
            raise
        except httpx.TimeoutException as exc:
            raise AgentTimeout(
                f"{_host(str(url))}: {describe_http_error(exc)}", timeout_s=agent.timeout_s
            ) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise FatalAgentError(
                f"bad base_url {redact(str(url))!r}: {redact(str(exc))}"
            ) from None
        except httpx.ConnectError as exc:
            # "cannot connect to 127.0.0.1:8080: connection refused", not "[Errno 111] ..."
            raise AgentDisconnected(
                f"cannot connect to {_netloc(str(url))}: {_os_reason(exc)}"
            ) from None
        except (httpx.TransportError, httpx.StreamError) as exc:
            # read/write errors, protocol errors, an incomplete body or stream
            raise AgentDisconnected(
                f"talking to {_host(str(url))}: {describe_http_error(exc)}"
            ) from None
        finally:
            self._release(shard)

    def _status_error(self, agent: AgentSpec, response: httpx.Response, raw: bytes) -> AgentError:
        status = response.status_code
        data, message = _server_message(raw)
        detail = f": {message}" if message else ""
        if status == 429:
            if _error_code(data) == "insufficient_quota":  # billing, not a rate: never passes
                return FatalAgentError(f"HTTP 429 (insufficient quota){detail}")
            from agentshell.ratelimit import reset_hint

            reset_at = reset_hint(response.headers, data, message)
            return RateLimited(f"rate limited (HTTP 429){detail}", reset_at=reset_at)
        if status in (401, 403):
            if status == 401:
                return _Unauthorized(status, message)
            return self._auth_error(agent, status, message)
        if status == 408:
            return AgentTimeout(f"the server timed out the request (HTTP 408){detail}")
        if status >= 500:
            return AgentDisconnected(f"server error (HTTP {status}){detail}")
        return FatalAgentError(f"HTTP {status}{detail}")

    # -- decoding ----------------------------------------------------------------------

    def _parse_completion(self, agent: AgentSpec, raw: bytes) -> AgentResponse:
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
            _, message = _server_message(raw)
            raise BadAgentOutput(f"the server answered HTTP 200 with an error: {message}")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
            raise BadAgentOutput("the response has no choices")
        choice = choices[0]
        reply = choice.get("message")
        if not isinstance(reply, Mapping):
            raise BadAgentOutput("the response's first choice has no message")
        content = _content_text(reply.get("content"))
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

    async def _read_stream(
        self, agent: AgentSpec, response: httpx.Response, cap: int
    ) -> AgentResponse:
        """Server-sent events: ``data: {chunk}`` lines until ``data: [DONE]``."""
        reader = _Reader(cap)
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
                _, message = _server_message(payload.encode())
                raise AgentDisconnected(f"the server ended the stream with an error: {message}")
            model = str(chunk.get("model") or model)
            if chunk.get("usage"):
                usage = chunk["usage"]
            for choice in chunk.get("choices") or ():
                if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta")
                if isinstance(delta, Mapping):
                    parts.append(_content_text(delta.get("content")))
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


class _Unauthorized(AgentError):
    """Internal: a 401, turned into AuthRequired after at most one refresh."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _read(response: httpx.Response, cap: int, *, truncate: bool = False) -> bytes:
    """The body, at most ``cap`` bytes: beyond that, raise (or stop, for error bodies)."""
    length = response.headers.get("content-length", "")
    if not truncate and length.isdigit() and int(length) > cap:
        raise BadAgentOutput(f"response too large ({int(length)} bytes, the limit is {cap})")
    reader = _Reader(cap)
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        if truncate and len(buffer) + len(chunk) > cap:
            buffer += chunk[: cap - len(buffer)]
            break
        reader.count(chunk)
        buffer += chunk
    return bytes(buffer)


class _closing:
    """``async with`` for a streamed response: closes it (back to the pool) on exit."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    async def __aenter__(self) -> httpx.Response:
        return self.response

    async def __aexit__(self, *exc_info: object) -> None:
        await self.response.aclose()


def _encode_json(body: dict[str, Any]) -> bytes:
    """The request body exactly as httpx's ``json=`` encodes it."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


@lru_cache(maxsize=64)
def _timeout_extension(read_s: float, connect_s: float) -> dict[str, float]:
    """httpx's ``timeout`` request extension (``Timeout(read_s, connect=connect_s)``),
    built once per pair of values. Shared and read-only: httpcore only reads it."""
    import httpx

    return httpx.Timeout(read_s, connect=connect_s).as_dict()  # type: ignore[return-value]


def _speed_up_liveness_checks(client: httpx.AsyncClient) -> None:
    """Before and after every request httpcore asks each pooled connection whether its
    socket is readable (= closed by the server); through anyio that looks the socket up
    with a getpeername/getsockname per question. Wrapping the pools' network backend so
    each stream keeps its socket from connect time makes the check one poll() call.
    The pools are httpx internals: when they are not where expected, nothing changes."""
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is not None and not isinstance(backend, _FastBackend):
            pool._network_backend = _FastBackend(backend)  # type: ignore[union-attr]


class _FastBackend:
    """httpcore network backend on plain asyncio streams. httpcore's default goes through
    anyio, whose cancel scopes, checkpoints and attribute look-ups around every read,
    write and liveness check cost more than the rest of a loopback request. Errors map
    to httpcore's exceptions as its anyio backend maps them. Duck-typed (httpcore never
    type-checks it), so httpcore is not imported before the first call."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner  # for Unix sockets (uds) only

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> _FastStream:
        import httpcore

        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                    happy_eyeballs_delay=0.25,  # as anyio does (RFC 8305)
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        stream = _FastStream(reader, writer)
        try:
            for option in socket_options or ():
                writer.get_extra_info("socket").setsockopt(*option)
        except OSError as exc:
            await stream.aclose()
            raise httpcore.ConnectError(str(exc)) from exc
        return stream

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:
        return await self._inner.connect_unix_socket(*args, **kwargs)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _FastStream:
    """One connection as httpcore's ``AsyncNetworkStream``: asyncio reader and writer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from httpcore._utils import is_socket_readable

        self._reader = reader
        self._writer = writer
        self._readable = is_socket_readable

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        import httpcore

        try:
            if timeout is None:
                return await self._reader.read(max_bytes)
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except (OSError, RuntimeError) as exc:  # reset, TLS errors, a closed transport
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        import httpcore

        if not buffer:
            return
        try:
            self._writer.write(buffer)
            if timeout is None:
                await self._writer.drain()
            else:
                async with asyncio.timeout(timeout):
                    await self._writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except (OSError, RuntimeError) as exc:
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        writer = self._writer
        writer.close()
        if writer.get_extra_info("ssl_object") is None:
            # Plain TCP closes on the next loop turn; TLS would wait for the peer's
            # close_notify (as anyio, httpcore does not wait for it).
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> _FastStream:
        import httpcore

        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except BaseException as exc:
            await self.aclose()
            if isinstance(exc, TimeoutError):
                raise httpcore.ConnectTimeout(str(exc)) from exc
            if isinstance(exc, (OSError, RuntimeError)):  # ssl.SSLError is an OSError
                raise httpcore.ConnectError(str(exc)) from exc
            raise
        return self

    def get_extra_info(self, info: str) -> Any:
        writer = self._writer
        if info == "is_readable":
            # Readable = the server closed it (or sent something unasked): not reusable.
            reader = self._reader
            if reader.at_eof() or reader.exception() is not None:
                return True
            return self._readable(writer.get_extra_info("socket"))
        if info == "ssl_object":
            return writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return writer.get_extra_info("sockname")
        if info == "server_addr":
            return writer.get_extra_info("peername")
        if info == "socket":
            return writer.get_extra_info("socket")
        return None


@lru_cache(maxsize=1)
def _lazy_cookies_class() -> type[httpx.Cookies]:
    import httpx

    class LazyCookies(httpx.Cookies):
        """Client cookies that skip the cookie jar for a response without cookies:
        the jar wraps each response in urllib objects first (~50 us), to find nothing."""

        def extract_cookies(self, response: httpx.Response) -> None:
            headers = response.headers
            if "set-cookie" in headers or "set-cookie2" in headers:
                super().extract_cookies(response)

    return LazyCookies


def _skip_cookie_parsing_without_cookies(client: httpx.AsyncClient) -> None:
    """Swap the client's cookie store for one that parses only responses that set
    cookies (same jar, same behaviour). httpx internals: if absent, nothing changes."""
    import httpx

    cookies = getattr(client, "_cookies", None)
    if type(cookies) is httpx.Cookies:
        client._cookies = _lazy_cookies_class()(cookies.jar)


def _remember_missing_sniffio() -> None:
    """httpcore runs ``import sniffio`` on every request and falls back to asyncio when
    it is missing; a failed import is not cached, so each request searched sys.path
    again (~0.2 ms, the largest client-side cost of a fan-out). A ``None`` entry in
    sys.modules makes the import fail at once, which is Python's documented way."""
    import importlib.util

    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


def _host(url: str) -> str:
    """``scheme://host:port`` of a URL: enough to say where, never a query or userinfo."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}"


def _netloc(url: str) -> str:
    """``host:port`` of a URL, the port filled in from the scheme when implicit."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if not re.search(r":\d+$", host):
        host = f"{host}:{443 if scheme == 'https' else 80}"
    return host


def _os_reason(exc: BaseException) -> str:
    """The operating system's reason behind a connect error, in words: the errno of the
    first OSError in the chain ("connection refused"), else the message, redacted."""
    import errno
    import os
    import socket

    seen: BaseException | None = exc
    for _ in range(8):  # the chain: httpx -> httpcore -> OSError
        if seen is None:
            break
        if isinstance(seen, socket.gaierror):
            return "unknown host"
        if isinstance(seen, OSError) and seen.errno and seen.errno > 0:
            if seen.errno == errno.ECONNREFUSED:
                return "connection refused"
            return os.strerror(seen.errno).lower()
        seen = seen.__cause__ or seen.__context__
    text = re.sub(r"\[Errno -?\d+\]\s*", "", redact(str(exc))).strip()
    return text[:200] or "connection failed"


def make_backend(shell: Any) -> OpenAIBackend:
    return OpenAIBackend(shell)


@hookimpl
def register_agent_backends(register: Register) -> None:
    register("openai", make_backend)


__all__ = ["DEFAULT_BASE_URL", "OpenAIBackend", "make_backend"]
