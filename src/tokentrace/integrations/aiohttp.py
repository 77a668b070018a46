"""aiohttp: every request to a provider API that no SDK integration is recording, sent with
``aiohttp.ClientSession`` (hand-written async clients, libraries built on it), read as the
httpx integration reads its requests (see ``tokentrace.integrations._wire``).

``ClientSession._request`` is the one door every request goes through (``session.post``,
``session.request``, ``async with session.post(...)``); it returns the response once its status
and headers are in, before its body is read. A request that is not a ``POST`` to a URL ending
like a provider API's goes through after one look at its method and one ``endswith``. The body
of a recorded request is read as the application reads it (``read()``, ``text()``, ``json()``
or any of ``content``'s reads and iterators), through a watcher put in front of
``ClientResponse.content``, the stream every way of reading the body goes through; the
response's release or close before the end of its body (``release()``, ``close()``, leaving
``async with`` unread) ends it as closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import wrapt

from tokentrace.integrations import Integration, Patch, _wire, guarded

_NAME = "aiohttp"

_Call = tuple[Any, tuple[Any, ...], dict[str, Any]]
"""``ClientSession._request``'s call: the session, ``(method, url)`` and the options."""


def _may_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a session's request is a ``POST`` to a URL that ends like a provider API's: the
    one look every other request pays."""
    method = args[0] if args else kwargs.get("method")
    if method != "POST" and (not isinstance(method, str) or method.upper() != "POST"):
        return False
    url = args[1] if len(args) > 1 else kwargs.get("str_or_url")
    if isinstance(url, str):
        path = url.partition("?")[0] if "?" in url else url
    else:
        path = getattr(url, "raw_path", "")  # a yarl.URL
    # A relative URL (``chat/completions`` against a session's ``base_url``) has no leading slash.
    return _wire.may_route("/" + path)


def _peek(call: _Call) -> tuple[_wire.Route, str, bytes | dict[str, Any] | None] | None:
    """The provider API a session's request calls, its origin and body, or ``None``."""
    session, args, kwargs = call
    if not _may_call(args, kwargs):
        return None
    url = args[1] if len(args) > 1 else kwargs.get("str_or_url")
    try:
        # aiohttp's own join of a relative URL to the session's ``base_url``, which it keeps
        # nowhere public; tests/integrations/test_aiohttp.py pins it.
        target = session._build_url(url)
    except ValueError:
        return None  # aiohttp raises its own error for the URL
    if not target.absolute:
        return None
    found = _wire.route(target.raw_path)
    if found is None:
        return None
    body = _body(kwargs)
    if body is None:
        return None
    port = target.explicit_port
    origin = f"{target.scheme}://{target.host}:{port}" if port else f"{target.scheme}://{target.host}"
    return found, origin, body


def _body(kwargs: dict[str, Any]) -> bytes | dict[str, Any] | None:
    """The request's body: the ``json=`` object (a copy of its top level, as an SDK method's
    keyword arguments are), or ``data=`` bytes or text; anything else (a form, a file, an
    async generator) is no LLM request."""
    json = kwargs.get("json")
    if json is not None:
        return dict(json) if isinstance(json, dict) else None
    data = kwargs.get("data")
    if isinstance(data, str):
        return data.encode("utf-8")
    return bytes(data) if isinstance(data, (bytes, bytearray)) else None


# wrapt 1.x proxies are not subscriptable at run time; wrapt 2.x types them as generics.
if TYPE_CHECKING:
    _Proxy = wrapt.ObjectProxy[Any]
else:
    _Proxy = wrapt.ObjectProxy


class _WatchedContent(_Proxy):
    """The response's ``StreamReader`` behind a watcher: each read feeds the body's watcher what
    it returns and ends it at the end of the body, or with the read's error; the iterators read
    through these reads. The response's ``release()`` and ``close()`` end it too: both set the
    stream's exception (``set_exception``) when its body was not read to the end."""

    def __init__(self, content: Any, body: _wire.Body) -> None:
        super().__init__(content)
        self._self_body = body

    def _self_at_end(self) -> bool:
        return bool(self.__wrapped__.at_eof())

    def _self_took(self, data: bytes) -> None:
        body = self._self_body
        if data:
            guarded("wire.feed", body.feed, None, data)
        if guarded("wire.at_end", self._self_at_end, False):
            guarded("wire.end", body.end, None, "completed")

    async def _self_watch(self, reading: Awaitable[Any], chunk: bool = False) -> Any:
        try:
            data = await reading
        except asyncio.CancelledError:
            raise  # a read given up (a timeout around it): the stream is still there to read
        except BaseException as exc:
            guarded("wire.end", self._self_body.end, None, "error", exc)
            raise
        self._self_took(data[0] if chunk else data)
        return data

    async def read(self, n: int = -1) -> bytes:
        data: bytes = await self._self_watch(self.__wrapped__.read(n))
        return data

    async def readany(self) -> bytes:
        data: bytes = await self._self_watch(self.__wrapped__.readany())
        return data

    async def readline(self, **kwargs: Any) -> bytes:
        data: bytes = await self._self_watch(self.__wrapped__.readline(**kwargs))
        return data

    async def readuntil(self, *args: Any, **kwargs: Any) -> bytes:
        data: bytes = await self._self_watch(self.__wrapped__.readuntil(*args, **kwargs))
        return data

    async def readexactly(self, n: int) -> bytes:
        data: bytes = await self._self_watch(self.__wrapped__.readexactly(n))
        return data

    async def readchunk(self) -> tuple[bytes, bool]:
        data: tuple[bytes, bool] = await self._self_watch(self.__wrapped__.readchunk(), chunk=True)
        return data

    def read_nowait(self, n: int = -1) -> bytes:
        try:
            data: bytes = self.__wrapped__.read_nowait(n)
        except BaseException as exc:
            guarded("wire.end", self._self_body.end, None, "error", exc)
            raise
        self._self_took(data)
        return data

    # aiohttp's own iterators, over this proxy: they read through the watched reads above, and
    # stop, and tune the stream, exactly as aiohttp's do.
    def __aiter__(self) -> Any:
        return type(self.__wrapped__).__aiter__(self)

    def iter_chunked(self, n: int) -> Any:
        return type(self.__wrapped__).iter_chunked(self, n)

    def iter_any(self) -> Any:
        return type(self.__wrapped__).iter_any(self)

    def iter_chunks(self) -> Any:
        return type(self.__wrapped__).iter_chunks(self)

    def set_exception(self, *args: Any, **kwargs: Any) -> None:
        try:
            self.__wrapped__.set_exception(*args, **kwargs)
        finally:
            guarded("wire.end", self._self_body.end, None, "closed")


def _received(exchange: _wire.Exchange, response: Any, call: _Call) -> None:
    """Put a watcher in front of the response's body, which the application reads later."""
    session, _, kwargs = call
    body = exchange.responded(response.status, response.headers.items())
    decompress = kwargs.get("auto_decompress")
    if decompress is None:
        decompress = session.auto_decompress
    if decompress:
        body.decoder = None  # aiohttp hands out the body decompressed
    content = response.content = _WatchedContent(response.content, body)
    _wire.finalizer(content, body)


class AiohttpIntegration(Integration):
    """Requests sent with aiohttp to a provider API that no SDK integration records."""

    name = _NAME
    distribution = "aiohttp"
    module = "aiohttp"
    min_version = (3, 9)

    def patches(self) -> tuple[Patch, ...]:
        # The steps are looked up when a request is sent (a fault injected into one reaches it),
        # but for the cheap check every request runs, handed as it is (a fault reaches it through
        # _wire.may_route).
        send = _wire.async_sender(
            _NAME, lambda c: _peek(c), lambda e, r, c: _received(e, r, c), whole_call=_may_call
        )
        return (Patch("aiohttp.client", "ClientSession._request", send),)
