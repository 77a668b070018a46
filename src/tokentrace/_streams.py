"""Transparent stream proxies: the user iterates the SDK's own stream, tokentrace watches.

Each proxy feeds every item to the integration's ``StreamReader`` and completes the call
exactly once: when the stream is exhausted, closed, exited as a context manager, raises,
or is dropped unfinished (garbage-collected).
"""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import wrapt

from tokentrace._engine import Call, complete
from tokentrace._safety import guarded
from tokentrace._usage import UsageError
from tokentrace.integrations._base import StreamReader

COMPLETED = "completed"
CLOSED = "closed"
ABANDONED = "abandoned"
ERROR = "error"


class _State:
    __slots__ = ("__weakref__", "call", "done", "reader")

    def __init__(self, call: Call, reader: StreamReader) -> None:
        self.call = call
        self.reader = reader
        self.done = False

    def finish(self, end: str, error: BaseException | None = None) -> None:
        if self.done:
            return
        self.done = True
        try:
            reading = self.reader.result()
        except UsageError as exc:
            complete(self.call, None, error=error, problem=str(exc), stream_end=end)
        else:
            complete(self.call, reading, error=error, stream_end=end)


def _feeder(state: _State) -> Callable[[Any], None]:
    """The reader's ``feed``, guarded, with no Python frame of its own (a C-level partial)."""
    # mypy cannot follow a partial of a ParamSpec function; the call shape is guarded's own.
    return cast(
        "Callable[[Any], None]", functools.partial(cast(Any, guarded), "stream.feed", state.reader.feed, None)
    )


def _finish(state: _State, end: str, error: BaseException | None = None) -> None:
    guarded("stream.finish", state.finish, None, end, error)


# wrapt 1.x proxies are not subscriptable at run time; wrapt 2.x types them as generics.
if TYPE_CHECKING:
    _Proxy = wrapt.ObjectProxy[Any]
else:
    _Proxy = wrapt.ObjectProxy


class StreamProxy(_Proxy):
    """A sync SDK stream, watched.

    ``__next__`` runs once per chunk, so it keeps to the minimum: the wrapped iterator's own
    ``__next__`` and the guarded feed are bound once, on the first item (attribute access on a
    proxy costs more than on a plain object).
    """

    def __init__(self, wrapped: Any, state: _State) -> None:
        super().__init__(wrapped)
        self._self_state = state
        self._self_next: Any = None
        self._self_feed = _feeder(state)
        weakref.finalize(self, _finish, state, ABANDONED)

    def __iter__(self) -> StreamProxy:
        return self

    def __next__(self) -> Any:
        step = self._self_next
        if step is None:
            step = self._self_next = iter(self.__wrapped__).__next__
        try:
            item = step()
        except StopIteration:
            _finish(self._self_state, COMPLETED)
            raise
        except BaseException as exc:
            _finish(self._self_state, ERROR, exc)
            raise
        self._self_feed(item)
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
    """An async SDK stream, watched."""

    def __init__(self, wrapped: Any, state: _State) -> None:
        super().__init__(wrapped)
        self._self_state = state
        self._self_next: Any = None
        self._self_feed = _feeder(state)
        weakref.finalize(self, _finish, state, ABANDONED)

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        step = self._self_next
        if step is None:
            step = self._self_next = self.__wrapped__.__aiter__().__anext__
        try:
            item = await step()
        except StopAsyncIteration:
            _finish(self._self_state, COMPLETED)
            raise
        except BaseException as exc:
            _finish(self._self_state, ERROR, exc)
            raise
        self._self_feed(item)
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


def wrap_stream(call: Call, stream: Any) -> Any:
    """Return ``stream`` behind a proxy that completes ``call`` when the stream ends."""
    state = _State(call, call.integration.stream_reader(call.method, call.request))
    if call.method.is_async:
        return AsyncStreamProxy(stream, state)
    return StreamProxy(stream, state)
