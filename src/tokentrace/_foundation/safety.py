"""The one error boundary of tokentrace.

Only tokentrace's own steps run inside it, never the user's call. An internal error is logged
once per (site, exception type) on the ``tokentrace`` logger and swallowed, so the user's
application never sees it. The project's own test suite turns on *strict* mode, in which the
boundary re-raises, so that tokentrace's bugs fail its tests loudly.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

from typing_extensions import ParamSpec

logger: Final = logging.getLogger("tokentrace")

P = ParamSpec("P")
R = TypeVar("R")

_seen: set[tuple[str, type[BaseException]]] = set()
_seen_lock = threading.Lock()
_strict = os.environ.get("TOKENTRACE_STRICT", "").lower() in {"1", "true", "yes"}


def after_fork(fn: Callable[[], None]) -> None:
    """Run ``fn`` in a child process right after ``os.fork()`` (a no-op where fork does not exist).

    Modules use it to replace their locks, which another thread of the parent may have held at the
    moment of the fork and which would then never be released in the child.
    """
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=lambda: guarded("fork", fn, None))


def renew_after_fork(
    namespace: dict[str, Any], name: str, factory: Callable[[], object] = threading.Lock
) -> None:
    """Replace the module global ``namespace[name]`` (a lock) with ``factory()`` in a forked child."""
    after_fork(lambda: namespace.__setitem__(name, factory()))


def set_strict(strict: bool) -> None:
    """Make the boundary re-raise (``True``) or log and swallow (``False``, the default)."""
    global _strict
    _strict = strict


def strict() -> bool:
    """Whether the boundary re-raises (tokentrace's own test suite turns it on)."""
    return _strict


def report(site: str, exc: Exception) -> None:
    """Log an internal error once per (site, exception type)."""
    key = (site, type(exc))
    with _seen_lock:
        if key in _seen:
            return
        _seen.add(key)
    logger.warning(
        "tokentrace: internal error in %s (%s: %s); the application is unaffected, "
        "but this call's accounting may be incomplete. Further %s errors here are not logged.",
        site,
        type(exc).__name__,
        exc,
        type(exc).__name__,
        exc_info=exc,
    )


def failed(site: str, exc: Exception) -> None:
    """What the boundary does with an error of one of tokentrace's own steps: report it once, or
    re-raise it in strict mode. For hot paths that catch in place instead of calling ``guarded``."""
    if _strict:
        raise exc
    report(site, exc)


def guarded(site: str, fn: Callable[P, R], default: R, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run one of tokentrace's own steps; on an ``Exception`` report it and return ``default``."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        failed(site, exc)
        return default


def reset_reported() -> None:
    """Forget which errors were logged, so they are logged again (for tests)."""
    with _seen_lock:
        _seen.clear()


renew_after_fork(globals(), "_seen_lock")
