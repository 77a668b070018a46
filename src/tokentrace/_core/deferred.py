"""Helpers whose context manager sends a streamed request only when it is entered (anthropic's
``messages.stream()``): the request is routed through the engine's ``call_wrapper``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokentrace._core.engine import Wrapper, call_wrapper
from tokentrace._core.integration import Method, ProviderIntegration
from tokentrace._foundation.safety import guarded

__all__ = ["on_enter_wrapper"]


class _SendLater:
    """An awaitable that starts ``make()`` only when awaited (a manager never entered leaves no
    un-awaited coroutine of tokentrace's behind)."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make

    def __await__(self) -> Any:
        return self.make().__await__()


def on_enter_wrapper(integration: ProviderIntegration, method: Method) -> Wrapper:
    """The wrapt wrapper for a helper whose context manager sends a streamed request on entry.

    The helper runs untouched and returns its own manager; tokentrace replaces the request the
    manager holds (a callable, or an awaitable for an async manager) with the same request sent
    through ``call_wrapper``, so the call begins when the request is sent and its stream is
    watched like any other. A budget callback that changes the arguments gets the helper run
    again with them, for a request that carries them.
    """
    send_call = call_wrapper(integration, method)

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        manager = wrapped(*args, **kwargs)
        guarded("call.defer", _defer, None, send_call, method, wrapped, instance, args, kwargs, manager)
        return manager

    return wrapper


def _defer(
    send_call: Wrapper,
    method: Method,
    wrapped: Any,
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    manager: Any,
) -> None:
    suffix = method.sends_on_enter
    key = next((name for name in vars(manager) if name.endswith(suffix)), None)
    if key is None:
        raise AttributeError(f"{type(manager).__qualname__} holds no {suffix!r}")
    original = getattr(manager, key)
    call_kwargs = {**kwargs, "stream": True}

    def send(**sent: Any) -> Any:
        if len(sent) == len(call_kwargs) and all(sent.get(k) is v for k, v in call_kwargs.items()):
            return original() if not method.is_async else original
        # A budget callback changed the arguments: build the request again with them.
        if method.is_async:
            original.close()  # the coroutine built with the old arguments is never awaited
        sent = {name: value for name, value in sent.items() if name != "stream"}
        fresh = getattr(wrapped(*args, **sent), key)
        return fresh() if not method.is_async else fresh

    if method.is_async:
        setattr(manager, key, _SendLater(lambda: send_call(send, instance, (), call_kwargs)))
    else:
        setattr(manager, key, lambda: send_call(send, instance, (), call_kwargs))
