"""requests: every request to a provider API that no SDK integration is recording, sent with
``requests`` (hand-written clients, libraries built on it), read as the httpx integration reads
its requests (see ``tokentrace.integrations._wire``).

``Session.send`` is the one door every request goes through (``requests.post``,
``Session.request``). A request whose URL does not end like a provider API's goes through after
one ``endswith``. The body of a recorded request is read from the response: whole, when
``requests`` has read it (``stream=False``, the default), or piece by piece as the application
reads it (``stream=True``), through a watcher put in front of ``Response.raw``, the urllib3
response every way of reading the body goes through.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import wrapt

from tokentrace.integrations import Integration, Patch, _wire, guarded

_NAME = "requests"


def _peek(request: Any) -> tuple[_wire.Route, str, bytes | None] | None:
    """The provider API a prepared request calls, its origin and body, or ``None`` (most requests:
    one check of the URL)."""
    return _wire.peek_url(request.method, request.url, request.body)


# wrapt 1.x proxies are not subscriptable at run time; wrapt 2.x types them as generics.
if TYPE_CHECKING:
    _Proxy = wrapt.ObjectProxy[Any]
else:
    _Proxy = wrapt.ObjectProxy


class _WatchedRaw(_Proxy):
    """urllib3's response behind a watcher: ``stream`` and ``read`` (what ``Response.content``,
    ``iter_content`` and ``iter_lines`` read through) feed the body's watcher; ``close`` and
    ``release_conn`` end it."""

    def __init__(self, raw: Any, body: _wire.Body) -> None:
        super().__init__(raw)
        self._self_body = body

    def _self_decoded(self, decode_content: bool | None) -> None:
        # urllib3 hands out decoded bytes when asked to (``iter_content`` does): the watcher then
        # has nothing to decompress. ``requests`` opens its responses with decoding off.
        if decode_content:
            self._self_body.decoder = None

    def stream(self, amt: int | None = 2**16, decode_content: bool | None = None) -> Iterator[bytes]:
        guarded("wire.decoded", self._self_decoded, None, decode_content)
        body = self._self_body
        try:
            for chunk in self.__wrapped__.stream(amt, decode_content=decode_content):
                guarded("wire.feed", body.feed, None, chunk)
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as exc:
            guarded("wire.end", body.end, None, "error", exc)
            raise
        guarded("wire.end", body.end, None, "completed")

    def read(self, amt: int | None = None, decode_content: bool | None = None, **kwargs: Any) -> Any:
        guarded("wire.decoded", self._self_decoded, None, decode_content)
        body = self._self_body
        try:
            data = self.__wrapped__.read(amt, decode_content=decode_content, **kwargs)
        except BaseException as exc:
            guarded("wire.end", body.end, None, "error", exc)
            raise
        if data:
            guarded("wire.feed", body.feed, None, data)
        if not data or amt is None:
            guarded("wire.end", body.end, None, "completed")
        return data

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            guarded("wire.end", self._self_body.end, None, "closed")

    def release_conn(self) -> Any:
        try:
            return self.__wrapped__.release_conn()
        finally:
            guarded("wire.end", self._self_body.end, None, "closed")


def _received(exchange: _wire.Exchange, response: Any, streamed: bool) -> None:
    """Read a response ``requests`` has read whole, or put a watcher in front of its body."""
    headers = response.headers.items()
    if not streamed:
        exchange.read(response.status_code, headers, response.content)
        return
    body = exchange.responded(response.status_code, headers)
    raw = response.raw = _WatchedRaw(response.raw, body)
    _wire.finalizer(raw, body)


class RequestsIntegration(Integration):
    """Requests sent with ``requests`` to a provider API that no SDK integration records."""

    name = _NAME
    distribution = "requests"
    module = "requests"
    min_version = (2, 25)

    def patches(self) -> tuple[Patch, ...]:
        # The steps are looked up when a request is sent (a fault injected into one reaches it).
        send = _wire.sender(_NAME, lambda r: _peek(r), lambda e, r, s: _received(e, r, s))
        return (Patch("requests.sessions", "Session.send", send),)
