"""Transparent stream proxies: the user iterates the SDK's own stream, tokentrace watches.

Each proxy feeds every item to the integration's ``StreamReader`` and completes the call
exactly once: when the stream is exhausted, closed, exited as a context manager, raises,
or is dropped unfinished (garbage-collected).
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import wrapt

from tokentrace._core.call import _ACTIVE_CALL
from tokentrace._core.engine import Call, complete, complete_with
from tokentrace._core.integration import Reading, StreamReader
from tokentrace._foundation.safety import guarded

COMPLETED = "completed"
CLOSED = "closed"
ABANDONED = "abandoned"
ERROR = "error"


class _StreamState:
    __slots__ = ("__weakref__", "call", "done", "lazy", "reader", "relayed")

    def __init__(self, call: Call, reader: StreamReader, lazy: bool = False) -> None:
        self.call = call
        self.reader = reader
        self.done = False
        self.lazy = lazy
        """A generator (google-genai's streams, cohere's async stream) sends its request when
        its first item is asked for, after the SDK method returned: that first step runs with
        the call in flight, so the request is the call's (its attempts counted, and never taken
        by the HTTP client integrations for a call of its own)."""
        self.relayed = call.relay is not None
        """A relayed call's stream asks for every item with the call in flight, not only the
        first: a library may send another request while the application reads (a LiteLLM Router
        falling back from a stream its provider broke off), an attempt of the same call."""

    def finish(self, end: str, error: BaseException | None = None) -> None:
        if self.done:
            return
        self.done = True
        relay = self.call.relay
        if relay is not None:
            # A relayed call's stream (see relay.py): its requests' bodies say what it used.
            relay.ended_with(error)
            return
        complete_with(self.call, self.reader.result, error=error, stream_end=end)


def _finish(state: _StreamState, end: str, error: BaseException | None = None) -> None:
    guarded("stream.finish", state.finish, None, end, error)


# wrapt 1.x proxies are not subscriptable at run time; wrapt 2.x types them as generics.
if TYPE_CHECKING:
    _Proxy = wrapt.ObjectProxy[Any]
else:
    _Proxy = wrapt.ObjectProxy


class StreamProxy(_Proxy):
    """A sync SDK stream, watched.

    Per item it does the least it can: a ``for`` loop over the proxy runs a generator (resuming
    one costs less than calling a method), which feeds each item to the reader, its failures
    caught in place rather than by a wrapping function. ``next(stream)`` works too, on the same
    underlying iterator.
    """

    def __init__(self, wrapped: Any, state: _StreamState) -> None:
        super().__init__(wrapped)
        self._self_state = state
        self._self_it: Iterator[Any] | None = None
        weakref.finalize(self, _finish, state, ABANDONED)

    def _self_iterator(self) -> Iterator[Any]:
        it = self._self_it
        if it is None:
            it = iter(self.__wrapped__)
            if self._self_state.call.ask_usage is not None:
                it = _hiding(it, self._self_state)
            self._self_it = it
        return it

    def __iter__(self) -> Iterator[Any]:
        return _watched(self, self._self_iterator(), self._self_state)

    def __next__(self) -> Any:
        try:
            if self._self_state.lazy or self._self_state.relayed:
                item = _first(self._self_state, self._self_iterator())
            else:
                item = next(self._self_iterator())
        except StopIteration:
            _finish(self._self_state, COMPLETED)
            raise
        except BaseException as exc:
            _finish(self._self_state, ERROR, exc)
            raise
        guarded("stream.feed", self._self_state.reader.feed, None, item)
        return item

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            _finish(self._self_state, CLOSED)

    def __enter__(self) -> StreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            _finish(self._self_state, ERROR if exc is not None else CLOSED, exc)


class AsyncStreamProxy(_Proxy):
    """An async SDK stream, watched: the SDK iterator's ``__anext__`` and the reader's ``feed``
    are bound once, on the first item (attribute access on a proxy costs more than on a plain
    object)."""

    def __init__(self, wrapped: Any, state: _StreamState) -> None:
        super().__init__(wrapped)
        self._self_state = state
        self._self_next: Any = None
        self._self_feed = state.reader.feed
        weakref.finalize(self, _finish, state, ABANDONED)

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        step = self._self_next
        if step is None:
            if self._self_state.call.ask_usage is not None:
                step = self._self_next = _ahiding(self.__wrapped__.__aiter__(), self._self_state).__anext__
            else:
                step = self._self_next = self.__wrapped__.__aiter__().__anext__
        try:
            state = self._self_state
            if state.lazy or state.relayed:
                state.lazy = False
                token = _ACTIVE_CALL.set(state.call)
                try:
                    item = await step()
                finally:
                    _ACTIVE_CALL.reset(token)
            else:
                item = await step()
        except StopAsyncIteration:
            _finish(self._self_state, COMPLETED)
            raise
        except BaseException as exc:
            _finish(self._self_state, ERROR, exc)
            raise
        guarded("stream.feed", self._self_feed, None, item)
        return item

    async def close(self) -> Any:
        try:
            result = self.__wrapped__.close()
            if inspect.isawaitable(result):
                result = await result
            return result
        finally:
            _finish(self._self_state, CLOSED)

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            _finish(self._self_state, ERROR if exc is not None else CLOSED, exc)


def _watched(proxy: StreamProxy, it: Iterator[Any], state: _StreamState) -> Iterator[Any]:
    """Iterate ``it`` for a ``for`` loop over ``proxy``, feeding each item to the reader.

    The generator holds ``proxy``, so a proxy that only the loop references lives as long as
    the loop. Breaking out of the loop closes the generator but does not end the call: the
    stream may be iterated further, and is accounted when it ends, is closed or is dropped.
    """
    feed = state.reader.feed
    try:
        while state.lazy or state.relayed:
            try:
                item = _first(state, it)
            except StopIteration:
                _finish(state, COMPLETED)
                return
            guarded("stream.feed", feed, None, item)
            yield item
        for item in it:
            guarded("stream.feed", feed, None, item)
            yield item
    except GeneratorExit:
        raise
    except BaseException as exc:
        _finish(state, ERROR, exc)
        raise
    _finish(state, COMPLETED)
    del proxy


def _hiding(it: Iterator[Any], state: _StreamState) -> Iterator[Any]:
    """The stream's items without the usage chunk tokentrace asked for (fed to the reader only):
    the application gets exactly the chunks it would have had."""
    usage_only, feed = state.call.integration.is_usage_only, state.reader.feed
    for item in it:
        if guarded("stream.usage_only", usage_only, False, item):
            guarded("stream.feed", feed, None, item)
            continue
        yield item


async def _ahiding(it: AsyncIterator[Any], state: _StreamState) -> AsyncIterator[Any]:
    """The async twin of ``_hiding``."""
    usage_only, feed = state.call.integration.is_usage_only, state.reader.feed
    async for item in it:
        if guarded("stream.usage_only", usage_only, False, item):
            guarded("stream.feed", feed, None, item)
            continue
        yield item


def _first(state: _StreamState, it: Iterator[Any]) -> Any:
    """The first item of a lazy stream, or any item of a relayed call's, asked for with its call in
    flight (see ``_StreamState.lazy`` and ``relayed``)."""
    state.lazy = False
    token = _ACTIVE_CALL.set(state.call)
    try:
        return next(it)
    finally:
        _ACTIVE_CALL.reset(token)


def _read_parsed(call: Call, parsed: Any) -> None:
    complete_with(call, call.integration.read, call.method, call.request, parsed)


def _unparsed(call: Call) -> None:
    """Closed or dropped before the application parsed it: a call without usage, unpriced."""
    guarded("raw.unparsed", complete, None, call, Reading(None))


class _Unread:
    """What a raw response's proxy knows: its call, and the stream its ``parse()`` handed out."""

    __slots__ = ("call", "finalizer", "parsed", "stream")

    def __init__(self, proxy: Any, call: Call) -> None:
        self.call = call
        self.parsed: Any = None
        self.stream: StreamProxy | AsyncStreamProxy | None = None
        self.finalizer = weakref.finalize(proxy, _unparsed, call)

    def parsed_to(self, parsed: Any) -> Any:
        """What the application's ``parse()`` returns: the object itself, after the call is read
        from it, or, for a streamed call, the stream behind a watching proxy (the same proxy each
        time the SDK hands back the same stream from its cache)."""
        if not self.call.request.stream:
            _read_parsed(self.call, parsed)
            return parsed
        if self.stream is not None and self.parsed is parsed:
            return self.stream
        # The stream now completes the call, however it ends; the raw response's end no longer does.
        self.finalizer.detach()
        self.parsed = parsed
        self.stream = wrap_stream(self.call, parsed)
        return self.stream

    def closed(self) -> None:
        """The raw response was closed: a stream it handed out ends here, else the call ends unparsed."""
        stream = self.stream
        if stream is None:
            _unparsed(self.call)
        else:
            _finish(stream._self_state, CLOSED)


class UnreadResponse(_Proxy):
    """A raw response whose body the application reads later (``with_streaming_response``, or
    any streamed ``with_raw_response``): the call is completed from what the application's own
    ``parse()`` returns, or by the stream that ``parse()`` returns."""

    def __init__(self, wrapped: Any, call: Call) -> None:
        super().__init__(wrapped)
        self._self_unread = _Unread(self, call)

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        parsed = self.__wrapped__.parse(*args, **kwargs)
        return guarded("raw.parse", self._self_unread.parsed_to, parsed, parsed)

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            guarded("raw.close", self._self_unread.closed, None)


class AsyncUnreadResponse(_Proxy):
    """The async twin of ``UnreadResponse`` (``parse()`` and ``close()`` are coroutines)."""

    def __init__(self, wrapped: Any, call: Call) -> None:
        super().__init__(wrapped)
        self._self_unread = _Unread(self, call)

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        parsed = await self.__wrapped__.parse(*args, **kwargs)
        return guarded("raw.parse", self._self_unread.parsed_to, parsed, parsed)

    async def close(self) -> Any:
        try:
            return await self.__wrapped__.close()
        finally:
            guarded("raw.close", self._self_unread.closed, None)


def wrap_unread(call: Call, response: Any) -> Any:
    """Return a raw response behind a proxy that completes ``call`` when it is parsed or closed."""
    if inspect.iscoroutinefunction(getattr(response, "parse", None)):
        return AsyncUnreadResponse(response, call)
    return UnreadResponse(response, call)


def wrap_stream(call: Call, stream: Any, lazy: bool = False) -> Any:
    """Return ``stream`` behind a proxy that completes ``call`` when the stream ends; ``lazy``:
    the stream may send its request when its first item is asked for (see ``_StreamState.lazy``),
    as a generator does."""
    lazy = lazy or inspect.isgenerator(stream) or inspect.isasyncgen(stream)
    state = _StreamState(call, call.integration.stream_reader(call.method, call.request), lazy)
    if call.method.is_async or inspect.isasyncgen(stream):
        # An async generator is returned by a plain call (cohere's AsyncV2Client.chat_stream).
        return AsyncStreamProxy(stream, state)
    return StreamProxy(stream, state)
