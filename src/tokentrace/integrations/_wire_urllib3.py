"""A urllib3 response behind a watcher: the body of a call seen on the wire, as the application
reads it through a client built on urllib3 (``requests``' ``Response.raw``, botocore's
``AWSResponse.raw``).

Every way such a client reads a body goes through the urllib3 response's ``stream``, ``read`` or
``readinto``, and ends with its ``close`` or ``release_conn``: ``WatchedRaw`` feeds what they
return to the body's watcher (``_wire_bodies.Body``) and ends it, and hands everything else to
the response (botocore's ``set_socket_timeout`` reaches through it to the socket).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import wrapt

from tokentrace._foundation.safety import guarded
from tokentrace.integrations._wire_bodies import Body, finalizer, watched

__all__ = ["WatchedRaw", "received"]

if TYPE_CHECKING:
    from tokentrace.integrations._wire import Exchange

# wrapt 1.x proxies are not subscriptable at run time; wrapt 2.x types them as generics.
if TYPE_CHECKING:
    _Proxy = wrapt.ObjectProxy[Any]
else:
    _Proxy = wrapt.ObjectProxy


class WatchedRaw(_Proxy):
    """urllib3's response behind a watcher: ``stream``, ``read`` and ``readinto`` (what requests'
    ``Response.content``, ``iter_content`` and ``iter_lines``, and botocore's ``EventStream`` and
    ``StreamingBody``, read through) feed the body's watcher; ``close`` and ``release_conn`` end
    it."""

    def __init__(self, raw: Any, body: Body) -> None:
        super().__init__(raw)
        self._self_body = body

    def _self_decoded(self, decode_content: bool | None) -> None:
        # urllib3 hands out decoded bytes when asked to (``iter_content`` does): the watcher then
        # has nothing to decompress. ``requests`` opens its responses with decoding off.
        if decode_content:
            self._self_body.decoder = None

    def stream(self, amt: int | None = 2**16, decode_content: bool | None = None) -> Iterator[bytes]:
        guarded("wire.decoded", self._self_decoded, None, decode_content)
        return watched(self.__wrapped__.stream(amt, decode_content=decode_content), self._self_body)

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

    def readinto(self, buffer: Any) -> int:
        body = self._self_body
        try:
            count: int = self.__wrapped__.readinto(buffer)
        except BaseException as exc:
            guarded("wire.end", body.end, None, "error", exc)
            raise
        if count:
            guarded("wire.feed", self._self_read_into, None, buffer, count)
        else:
            guarded("wire.end", body.end, None, "completed")
        return count

    def _self_read_into(self, buffer: Any, count: int) -> None:
        self._self_body.feed(bytes(memoryview(buffer)[:count]))

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


def received(exchange: Exchange, response: Any, streamed: bool, decoded: bool) -> None:
    """A response over urllib3 (requests' ``Response`` and botocore's ``AWSResponse`` have the
    same ``status_code``, ``headers``, ``content`` and ``raw``): read whole when the client has
    read it (``decoded``: as urllib3 decoded it, else as sent), or a watcher put in front of
    ``raw`` for the application's reads."""
    headers = response.headers.items()
    if not streamed:
        exchange.read(response.status_code, headers, response.content, decoded=decoded)
        return
    body = exchange.responded(response.status_code, headers)
    raw = response.raw = WatchedRaw(response.raw, body)
    finalizer(raw, body)
