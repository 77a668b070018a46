"""Carries the current task (the whole ``contextvars`` context) into threads.

``threading.Thread`` (subclasses included) runs in the context that was current when ``start()`` was
called, and ``ThreadPoolExecutor.submit`` runs each work item in the submitter's context. So
a call made in a worker thread is attributed to the task that started or submitted it.
"""

from __future__ import annotations

import contextvars
from typing import Any

from tokentrace.integrations import Integration, Patch

_ATTR = "_tokentrace_context"


def _start(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    instance.__dict__[_ATTR] = contextvars.copy_context()
    return wrapped(*args, **kwargs)


def _run(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    ctx = instance.__dict__.pop(_ATTR, None)
    if ctx is None:
        return wrapped(*args, **kwargs)
    return ctx.run(wrapped, *args, **kwargs)


def _submit(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if not args:
        return wrapped(*args, **kwargs)
    ctx = contextvars.copy_context()
    return wrapped(ctx.run, *args, **kwargs)


class ThreadingIntegration(Integration):
    name = "threading"

    def patches(self) -> tuple[Patch, ...]:
        return (
            Patch("threading", "Thread.start", _start),
            Patch("threading", "Thread._bootstrap_inner", _run),
            Patch("concurrent.futures.thread", "ThreadPoolExecutor.submit", _submit),
        )
