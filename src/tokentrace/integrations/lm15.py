"""lm15's transports (DSPy's default engine): every request to a provider API that no SDK
integration is recording, sent with lm15's own stdlib HTTP client, read as the httpx
integration reads its requests (see ``tokentrace.integrations._wire``).

lm15 writes HTTP/1.1 to a socket itself, past every other HTTP client. DSPy vendors it
(``dspy._vendor.lm15``) and sends ``dspy.LM(...)`` calls through it unless told
``engine="litellm"``; lm15 is also a package of its own. ``StdlibTransport.stream`` and
``StdlibAsyncTransport._do_stream`` (which ``stream`` awaits, as a context manager or not) are
the one door of each. A request whose URL does not end like a provider API's goes through after
one ``endswith``. The response comes back behind a watcher: every way of reading its body
(iterating it, ``read``, ``iter_lines``) goes through the watcher's iteration, and closing it
(``close``, leaving ``with``) ends the call. lm15 hands out decoded bytes, so the watcher never
decompresses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import wrapt

from tokentrace.integrations import Integration, Patch, _wire, guarded

# wrapt 1.x proxies are not subscriptable at run time; wrapt 2.x types them as generics.
if TYPE_CHECKING:
    _Proxy = wrapt.ObjectProxy[Any]
else:
    _Proxy = wrapt.ObjectProxy


class _Watched(_Proxy):
    """A ``TransportResponse`` behind a watcher: its iteration feeds the body's watcher, and
    ``read`` and ``iter_lines`` are lm15's own, iterating this proxy."""

    def __init__(self, response: Any, body: _wire.Body) -> None:
        super().__init__(response)
        self._self_body = body

    def __iter__(self) -> Iterator[bytes]:
        return _wire.watched(self.__wrapped__, self._self_body)

    def read(self) -> bytes:
        return type(self.__wrapped__).read(self)  # type: ignore[no-any-return]  # lm15's bytes

    def iter_lines(self) -> Iterator[bytes]:
        return type(self.__wrapped__).iter_lines(self)  # type: ignore[no-any-return]  # lm15's

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            guarded("wire.end", self._self_body.end, None, "closed")

    def __enter__(self) -> _Watched:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.__wrapped__.__exit__(*exc_info)
        finally:
            guarded("wire.end", self._self_body.end, None, "closed")


class _AsyncWatched(_Proxy):
    """An ``AsyncTransportResponse`` behind a watcher (``_Watched``, awaited)."""

    def __init__(self, response: Any, body: _wire.Body) -> None:
        super().__init__(response)
        self._self_body = body

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _wire.awatched(self.__wrapped__, self._self_body)

    async def read(self) -> bytes:
        return await type(self.__wrapped__).read(self)  # type: ignore[no-any-return]  # lm15's bytes

    def aiter_lines(self) -> AsyncIterator[bytes]:
        return type(self.__wrapped__).aiter_lines(self)  # type: ignore[no-any-return]  # lm15's

    async def aclose(self) -> None:
        try:
            await self.__wrapped__.aclose()
        finally:
            guarded("wire.end", self._self_body.end, None, "closed")

    async def __aenter__(self) -> _AsyncWatched:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.__wrapped__.__aexit__(*exc_info)
        finally:
            guarded("wire.end", self._self_body.end, None, "closed")


def _peek(request: Any) -> tuple[_wire.Route, str, bytes | None] | None:
    """The provider API a ``TransportRequest`` calls, its origin and body, or ``None``."""
    return _wire.peek_url(request.method, request.url, request.body)


def _received(exchange: _wire.Exchange, response: Any, watched: type) -> Any:
    """The response behind a watcher of its (decoded) body."""
    body = exchange.responded(response.status, response.headers)
    body.decoder = None
    proxy = watched(response, body)
    _wire.finalizer(proxy, body)
    return proxy


def _patches(package: str, name: str) -> tuple[Patch, ...]:
    # The steps are looked up when a request is sent (a fault injected into one reaches it).
    return (
        Patch(
            f"{package}._sync",
            "StdlibTransport.stream",
            _wire.sender(name, lambda r: _peek(r), lambda e, r, s: _received(e, r, _Watched)),
        ),
        Patch(
            f"{package}._async",
            "StdlibAsyncTransport._do_stream",
            _wire.async_sender(name, lambda r: _peek(r), lambda e, r, s: _received(e, r, _AsyncWatched)),
        ),
    )


class Lm15Integration(Integration):
    """Requests sent with lm15's transports to a provider API."""

    name = "lm15"
    distribution = "lm15"
    module = "lm15.transports"
    min_version = (1, 0)

    def patches(self) -> tuple[Patch, ...]:
        return _patches("lm15.transports", self.name)


class DspyIntegration(Integration):
    """Requests sent by DSPy's default engine (``dspy.LM``), through the lm15 it vendors."""

    name = "dspy"
    distribution = "dspy"
    module = "dspy._vendor.lm15.transports"
    min_version = (3, 4)

    def patches(self) -> tuple[Patch, ...]:
        return _patches("dspy._vendor.lm15.transports", self.name)
