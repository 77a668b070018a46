"""HTTP attempts of the call in flight: the per-attempt hook that counts retries, the attempts
of a relayed call seen on the wire (``Attempt``), and how an attempt is named on the call span
(``tokentrace.attempts`` and its ``tokentrace.attempt`` events)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tokentrace._core.call import _ACTIVE_CALL, Call, in_flight
from tokentrace._core.integration import AttemptHook, Reading
from tokentrace._foundation import semconv as sc
from tokentrace._foundation.safety import guarded
from tokentrace._pricing import money as _money

if TYPE_CHECKING:
    from tokentrace._accounting.tally import CallRecord
    from tokentrace._core.relay import Relayed

Wrapper = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]


class ProviderStreamError(Exception):
    """The provider ended a stream it had begun (HTTP 2xx) with an error event of its own
    (Anthropic's ``overloaded_error``, OpenAI's ``server_error``): ``kind`` is its name for it."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class Attempt:
    """One request of a relayed call (``relay.py``), seen on the wire: its own call, read and
    priced by its provider's rules, whose record its relayed call accounts for."""

    __slots__ = (
        "broken",
        "call",
        "error",
        "problem",
        "reading",
        "rec",
        "relayed",
        "response_model",
        "source",
        "status",
        "stream_end",
    )

    def __init__(self, relayed: Relayed, call: Call) -> None:
        self.relayed = relayed
        self.call = call
        self.status: int | None = None
        """The response's HTTP status, once it is in."""
        self.rec: CallRecord | None = None
        """What the request came to, once its response has been read (or it failed)."""
        self.response_model: str | None = None
        self.problem: str | None = None
        self.source: str | None = None
        self.error: BaseException | None = None
        self.stream_end: str | None = None
        self.reading: Reading | None = None
        self.broken = False
        """The provider broke off its stream with an error event, seen as the event arrived
        (before the body ends: a library may send its fallback at once)."""

    @property
    def failed(self) -> bool:
        """Whether it failed, so far as is known now: an error, an HTTP error status, or a stream
        its provider broke off."""
        return self.broken or self.error is not None or (self.status is not None and self.status >= 400)

    def settled(
        self,
        rec: CallRecord,
        response_model: str | None,
        problem: str | None,
        source: str | None,
        error: BaseException | None,
        stream_end: str | None,
        reading: Reading | None,
    ) -> None:
        """The request is accounted (``_engine.complete``): keep its record for the relayed call."""
        self.rec, self.response_model, self.problem, self.source = rec, response_model, problem, source
        self.error, self.stream_end, self.reading = error, stream_end, reading
        self.relayed.settled()

    @property
    def outcome(self) -> str:
        """Its HTTP status; for a response whose stream the provider broke off, the provider's
        name for the error (``overloaded_error``); with no response, the error's type."""
        error = self.error
        if isinstance(error, ProviderStreamError):
            return error.kind
        if self.status is not None:
            return str(self.status)
        return type(error).__qualname__ if error is not None else "unknown"


def event(number: int, attempt: str | tuple[AttemptHook, Any] | Attempt, outcome: str) -> dict[str, Any]:
    """The attributes of an attempt's ``tokentrace.attempt`` event: its number and outcome, and
    for a request seen on the wire its model, provider and what it was billed."""
    attrs: dict[str, Any] = {sc.ATTEMPT_NUMBER: number, sc.ATTEMPT_OUTCOME: outcome}
    if isinstance(attempt, Attempt):
        request = attempt.call.request
        attrs[sc.GEN_AI_PROVIDER_NAME] = attempt.call.provider
        if request.model:
            attrs[sc.GEN_AI_REQUEST_MODEL] = request.model
        if attempt.response_model:
            attrs[sc.GEN_AI_RESPONSE_MODEL] = attempt.response_model
        rec = attempt.rec
        if rec is not None and rec.usage is not None:
            attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = rec.usage.input_tokens
            attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = rec.usage.output_tokens
        if rec is not None and rec.cost_units is not None:
            attrs[sc.COST_USD] = rec.cost_units / _money.UNITS_PER_USD
    return attrs


def _note_attempt(outcome: str | tuple[AttemptHook, Any]) -> None:
    """Note one attempt of the call in flight: what it raised (the error's type name), or the
    hook and the SDK's result, whose status is read only if the span lists the attempts."""
    call = in_flight(_ACTIVE_CALL.get())
    if call is not None:
        call.attempts.append(outcome)


def outcome(attempt: str | tuple[AttemptHook, Any] | Attempt) -> str:
    """An attempt as ``tokentrace.attempts`` names it: its HTTP status, error type or ``unknown``."""
    if isinstance(attempt, str):
        return attempt
    if isinstance(attempt, Attempt):
        return attempt.outcome
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
