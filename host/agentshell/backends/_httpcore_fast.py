"""The ``openai`` backend's fast path: small patches into httpx/httpcore internals that
cut the client's CPU per request (a 64-agent fan-out is bound by it, not the server).

- :class:`FastBackend` / :class:`FastStream`: httpcore's network backend on plain
  asyncio streams instead of anyio (same errors, same TLS, ~15% less CPU a request),
  with a one-``poll()`` liveness check.
- cookie parsing only for responses that set cookies (:func:`install`).
- a failed ``import sniffio`` remembered (:func:`remember_missing_sniffio`).

Everything here reaches into internals known for httpx 0.28 / httpcore 1.0 (the pinned
range in pyproject.toml). Each patch is guarded: when an internal is not where it is
expected, nothing changes and the stock behaviour runs, just slower.
``tests/host/test_backend_openai_fast_path.py`` fails loudly when that happens, so an
upgrade that silently drops the fast path is noticed. Kept in its own module so the
backend reads without it, and so one place changes when httpcore does.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl

    import httpx


def install(client: httpx.AsyncClient) -> None:
    """Put the fast path into a new client: the network backend and lazy cookies."""
    _speed_up_liveness_checks(client)
    _skip_cookie_parsing_without_cookies(client)


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
        if backend is not None and not isinstance(backend, FastBackend):
            pool._network_backend = FastBackend(backend)  # type: ignore[union-attr]


class FastBackend:
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
    ) -> FastStream:
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
        stream = FastStream(reader, writer)
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


class FastStream:
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
    ) -> FastStream:
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


def remember_missing_sniffio() -> None:
    """httpcore runs ``import sniffio`` on every request and falls back to asyncio when
    it is missing; a failed import is not cached, so each request searched sys.path
    again (~0.2 ms, the largest client-side cost of a fan-out). A ``None`` entry in
    sys.modules makes the import fail at once, which is Python's documented way."""
    import importlib.util

    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


__all__ = ["FastBackend", "FastStream", "install", "remember_missing_sniffio"]
