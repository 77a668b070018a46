"""httpx and httpx2 (the HTTP client under the openai, anthropic and google-genai SDKs): every
request to a provider API that no SDK integration is recording, from any library.

``Client.send`` and ``AsyncClient.send`` are the one door every request of these clients goes
through (``post``, ``request``, ``stream`` all end there). A request whose path is not a
provider API's goes through after one ``endswith`` on its path (see ``tokentrace.integrations._wire``).
A recorded request's body is read from the response: whole, when the client has read it, or
piece by piece as the application reads it, through a watcher put in front of the response's
byte stream (``Response.stream``, the attribute httpx itself wraps the transport's stream in).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from tokentrace.integrations import Integration, Patch, _wire, guarded


def _origin(url: Any) -> str:
    port = url.port
    return f"{url.scheme}://{url.host}:{port}" if port else f"{url.scheme}://{url.host}"


def _peek(request: Any) -> tuple[_wire.Route, str, bytes | None] | None:
    """The provider API ``request`` calls, its origin and body, or ``None`` (most requests: one
    check of the path)."""
    if request.method != "POST":
        return None
    url = request.url
    found = _wire.route(url.raw_path.decode("ascii").partition("?")[0])
    if found is None:
        return None
    try:
        body = request.content
    except Exception:  # noqa: BLE001  # a streamed request body (httpx's RequestNotRead): not an LLM call
        return None
    return found, _origin(url), body


def _stream_classes(lib: Any) -> tuple[type, type]:
    """Watching byte streams that are the library's own stream types (httpx checks them)."""

    class WatchedStream(lib.SyncByteStream):  # type: ignore[misc]  # the library's class
        def __init__(self, stream: Any, body: _wire.Body) -> None:
            self._stream = stream
            self._body = body

        def __iter__(self) -> Iterator[bytes]:
            return _wire.watched(self._stream, self._body)

        def close(self) -> None:
            try:
                self._stream.close()
            finally:
                guarded("wire.end", self._body.end, None, "closed")

    class AsyncWatchedStream(lib.AsyncByteStream):  # type: ignore[misc]  # the library's class
        def __init__(self, stream: Any, body: _wire.Body) -> None:
            self._stream = stream
            self._body = body

        def __aiter__(self) -> AsyncIterator[bytes]:
            return _wire.awatched(self._stream, self._body)

        async def aclose(self) -> None:
            try:
                await self._stream.aclose()
            finally:
                guarded("wire.end", self._body.end, None, "closed")

    return WatchedStream, AsyncWatchedStream


def _received(exchange: _wire.Exchange, response: Any, streamed: bool, watched: type) -> None:
    """Read a response the client has read whole, or put a watcher in front of its body."""
    headers = response.headers.items()
    if not streamed or response.is_stream_consumed:
        exchange.read(response.status_code, headers, response.content)
        return
    body = exchange.responded(response.status_code, headers)
    stream = response.stream = watched(response.stream, body)
    _wire.finalizer(stream, body)


def _patches(module: str, name: str) -> tuple[Patch, ...]:
    lib = importlib.import_module(module)
    watched, async_watched = _stream_classes(lib)
    # The steps are looked up when a request is sent (a fault injected into one reaches it).
    return (
        Patch(
            module,
            "Client.send",
            _wire.sender(name, lambda r: _peek(r), lambda e, r, s: _received(e, r, s, watched)),
        ),
        Patch(
            module,
            "AsyncClient.send",
            _wire.async_sender(name, lambda r: _peek(r), lambda e, r, s: _received(e, r, s, async_watched)),
        ),
    )


class HttpxIntegration(Integration):
    """Requests sent with httpx to a provider API that no SDK integration records (LiteLLM's
    own handlers, any hand-written client)."""

    name = "httpx"
    distribution = "httpx"
    module = "httpx"
    min_version = (0, 23)

    def patches(self) -> tuple[Patch, ...]:
        return _patches("httpx", self.name)


class Httpx2Integration(Integration):
    """Requests sent with httpx2, the client the openai, anthropic and google-genai SDKs are
    built on: a call LiteLLM makes through an SDK client's low-level ``post()``."""

    name = "httpx2"
    distribution = "httpx2"
    module = "httpx2"
    min_version = (2, 0)

    def patches(self) -> tuple[Patch, ...]:
        return _patches("httpx2", self.name)
