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
ones (the fast path, :mod:`._httpcore_fast`: same errors, same TLS, ~15% less CPU a
request). Reading answers is :mod:`._openai_decode`'s job, and mapping failures to the
taxonomy :mod:`._openai_errors`'.

Streaming: when the caller wants the answer as it arrives (``AgentCall.on_delta`` is
set, e.g. ``runner.run(..., on_delta=...)``) or ``request.stream`` is true, the request
asks for server-sent events (``"stream": true``, ``stream_options.include_usage``)
and each content delta goes to ``call.emit`` as it is read; usage comes from the final
chunk. ``request.stream = False`` turns it off. A server that refuses ``stream`` for a
model (HTTP 400 naming the ``stream`` parameter) is asked again without it, and that
agent is not asked to stream again. A stream cut short is an ``AgentDisconnected``:
the runner retries it, and the retry's deltas carry the next attempt number.

Agent options (``[agents.<name>]`` keys besides the standard ones):
``stream`` (bool, default false: stream even when nobody listens), ``json_mode`` (bool: send
``response_format={"type": "json_object"}`` when the request expects JSON),
``include_usage`` (bool, default true: ``stream_options.include_usage`` when
streaming), ``max_response_bytes`` (default 8 MiB), ``connect_timeout_s`` (default 10),
``headers`` (extra request headers), ``extra_body`` (merged into the request JSON),
``max_tokens_param`` (``max_tokens`` or ``max_completion_tokens``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from agentshell.agents import AgentCall, AgentRequest, AgentResponse, AgentSpec
from agentshell.errors import AgentError, AuthRequired, BadAgentOutput, FatalAgentError
from agentshell.plugins import hookimpl
from agentshell.redact import redact, register_secret

if TYPE_CHECKING:
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
        self._no_stream: set[str] = set()  # agents whose server refused "stream"

    def _new_client(self) -> httpx.AsyncClient:
        # heavy, or needed only once agents are called: imported then, not at start-up
        import httpx

        from . import _httpcore_fast

        if self._ssl is None:
            _httpcore_fast.remember_missing_sniffio()
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
        _httpcore_fast.install(client)
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

    def wants_stream(self, call: AgentCall) -> bool:
        """Whether to ask for server-sent events: the request says so, else a listener
        for deltas (unless this agent's server refused streaming), else the option."""
        request = call.request
        if request.stream is not None:
            return request.stream
        if call.streaming and call.agent.name not in self._no_stream:
            return True
        return bool(_option(call.agent, "stream", False))

    async def complete(self, call: AgentCall) -> AgentResponse:
        from ._openai_errors import StreamRefused, Unauthorized, auth_error

        agent = call.agent
        request = call.request
        stream = self.wants_stream(call)
        body = self.request_body(agent, request, stream)
        url = self._url(agent.base_url or DEFAULT_BASE_URL)
        headers = await self._headers(agent)
        connect_s = min(float(_option(agent, "connect_timeout_s", 10.0)), agent.timeout_s)
        timeouts = _timeout_extension(agent.timeout_s, connect_s)
        content = _encode_json(body)
        refreshed = False
        while True:
            try:
                return await self._post(call, url, headers, content, timeouts, stream)
            except StreamRefused as exc:
                # streaming was our idea (a listener), not the request's: ask again
                # without it, and do not ask this agent's server to stream again
                if request.stream or _option(agent, "stream", False):
                    raise exc.error from None
                self._no_stream.add(agent.name)
                stream = False
                content = _encode_json(self.request_body(agent, request, stream))
            except Unauthorized as exc:
                # A provider's token may have expired early: refresh once, try once more.
                if not refreshed and self._provider_auth(agent):
                    refreshed = True
                    creds = await self.shell.auth.credentials(agent, refresh=True)
                    if creds is not None:
                        headers = {**headers, **creds.headers()}
                        continue
                raise auth_error(self.shell, agent, exc.status, exc.message) from None

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

    async def _post(
        self,
        call: AgentCall,
        url: httpx.URL,
        headers: dict[str, str],
        content: bytes,
        timeouts: dict[str, float],
        stream: bool = False,
    ) -> AgentResponse:
        import httpx

        from ._openai_decode import parse_completion, read_body, read_stream
        from ._openai_errors import StreamRefused, refuses_stream, status_error, transport_error

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
                    raw = await read_body(response, _ERROR_BODY_CAP, truncate=True)
                    failure = status_error(self.shell, agent, response, raw)
                    if stream and refuses_stream(response.status_code, raw):
                        raise StreamRefused(failure)
                    raise failure
                if response.status_code != 200:
                    raise BadAgentOutput(f"unexpected HTTP {response.status_code} from the server")
                content_type = response.headers.get("content-type", "")
                if "text/event-stream" in content_type:
                    emit = call.emit if call.streaming else None
                    return await read_stream(agent, response, cap, emit)
                # A server may ignore stream=true and answer JSON: accept that too.
                raw = await read_body(response, cap)
                return parse_completion(agent, raw)
        except AgentError:
            raise
        except Exception as exc:
            error = transport_error(exc, url, agent)
            if error is None:
                raise
            raise error from None
        finally:
            self._release(shard)


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


def make_backend(shell: Any) -> OpenAIBackend:
    return OpenAIBackend(shell)


@hookimpl
def register_agent_backends(register: Register) -> None:
    register("openai", make_backend)


__all__ = ["DEFAULT_BASE_URL", "OpenAIBackend", "make_backend"]
