"""HTTP attempts of the call in flight: the per-attempt hook that counts retries, and how an
attempt is named on the call span (``tokentrace.attempts``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokentrace._core.call import _ACTIVE_CALL
from tokentrace._core.integration import AttemptHook
from tokentrace._foundation.safety import guarded

Wrapper = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]


def _note_attempt(outcome: str | tuple[AttemptHook, Any]) -> None:
    """Note one attempt of the call in flight: what it raised (the error's type name), or the
    hook and the SDK's result, whose status is read only if the span lists the attempts."""
    call = _ACTIVE_CALL.get()
    if call is not None:
        call.attempts.append(outcome)


def outcome(attempt: str | tuple[AttemptHook, Any]) -> str:
    """An attempt as ``tokentrace.attempts`` names it: its HTTP status, error type or ``unknown``."""
    if isinstance(attempt, str):
        return attempt
    hook, result = attempt
    status = hook.status(result) if hook.status is not None else None
    return str(status) if status is not None else "unknown"


def attempt_wrapper(hook: AttemptHook) -> Wrapper:
    """The wrapt wrapper that counts one HTTP attempt of the call in flight."""

    if hook.is_async:

        async def async_wrapper(
            wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:
                guarded("attempt.note", _note_attempt, None, type(exc).__qualname__)
                raise
            guarded("attempt.note", _note_attempt, None, (hook, result))
            return result

        return async_wrapper

    def sync_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            guarded("attempt.note", _note_attempt, None, type(exc).__qualname__)
            raise
        guarded("attempt.note", _note_attempt, None, (hook, result))
        return result

    return sync_wrapper
