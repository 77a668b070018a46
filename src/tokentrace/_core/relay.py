"""Relayed calls: one logical call made through a library that sends the provider's HTTP
requests itself (LiteLLM), whose own retries and fallbacks are attempts of that call.

A ``RelayIntegration``'s method opens its call through the engine as any SDK method does (span,
task, budget: a budget stops it before the library starts, so the application gets
``BudgetExceeded`` itself). While it runs, each request the HTTP client integrations see to a
provider API is one of its attempts (``Relayed.attempt``): read from the provider's own response
and priced by its provider's rules, as any call on the wire is, but accounted by the relayed
call instead of on its own. Once the method has returned (or raised) and every attempt's
response has been read, the call is accounted once: its usage and cost are the sum of what its
attempts were billed (a failed attempt with no usage costs nothing but counts as a retry), and
its span lists each attempt with its model and status.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from tokentrace._accounting.tally import CallRecord
from tokentrace._core import engine as _engine
from tokentrace._core import streams as _streams
from tokentrace._core.attempts import Attempt
from tokentrace._core.call import _ACTIVE_CALL, Call, leave
from tokentrace._core.integration import Method, ProviderIntegration, RelayIntegration, Request
from tokentrace._foundation import semconv as sc
from tokentrace._foundation.safety import guarded
from tokentrace._pricing import inferences as _inferences
from tokentrace._pricing import prices as _pricing
from tokentrace._pricing.money import Parts
from tokentrace._tokens.usage import Usage

__all__ = ["NO_REQUEST", "Relayed", "call_wrapper"]

NO_REQUEST = (
    "no request to a provider API that tokentrace reads was seen beneath the call (a provider "
    "it has no reader for, a cached or mocked response, or the httpx and httpx2 integrations "
    "are not instrumented)"
)
# A cost status's weight when the attempts' statuses are combined: the least exact one wins.
_RANK = {
    _pricing.PRICED: 0,
    _pricing.ESTIMATED: 1,
    _pricing.UNPRICED: 2,
    _pricing.INVALID_USAGE: 2,
}


class Relayed:
    """The attempts of one relayed call, and when it may be accounted: once its method has
    returned or raised and every attempt's response has been read."""

    __slots__ = ("answered_by", "attempts", "call", "ended", "error", "lock", "open", "reading")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.attempts: list[Attempt] = []
        self.open = 0
        """Attempts sent whose response has not been read to its end yet."""
        self.ended = False
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.reading = False
        """Its method has returned a stream, which the application is reading."""
        self.answered_by: ProviderIntegration | None = None
        """The integration that read the attempt that answered (its attributes name the call's)."""

    def attempt(self, integration: ProviderIntegration, method: Method, request: Request) -> Call:
        """Open the call of one request to a provider API, sent now, in this call's context (the
        caller leaves it once the response is in)."""
        call = Call(integration, method, request, None)
        attempt = call.attempt_of = Attempt(self, call)
        with self.lock:
            self.attempts.append(attempt)
            self.open += 1
        # The request's own context: a lower HTTP layer leaves it alone (never twice); spans of
        # the HTTP client are children of the relayed call's span.
        context = trace.set_span_in_context(self.call.span)
        call.context_tokens = (_ACTIVE_CALL.set(call), otel_context.attach(context))
        return call

    def takes_requests(self) -> bool:
        """Whether a request sent now in this call's context is one of its attempts: while its
        method runs (its retries and fallbacks); once it has returned a stream, only before its
        first request (a stream that sends it when first read) or after an attempt that failed (a
        fallback from a stream its provider broke off). A request sent after the answer came (a
        success callback's, a cache's) is a call of its own."""
        if self.call.done:
            return False
        if not self.reading:
            return True
        attempts = self.attempts
        return not attempts or attempts[-1].failed

    def settled(self) -> None:
        """One attempt's response has been read to its end (or the request failed)."""
        with self.lock:
            self.open -= 1
            ready = self.ended and self.open == 0
        if ready:
            self.account()

    def ended_with(self, error: BaseException | None) -> None:
        """The relayed method returned (``error`` is ``None``) or raised ``error``."""
        with self.lock:
            self.ended = True
            self.error = error
            ready = self.open == 0
        if ready:
            self.account()

    def account(self) -> None:
        """Account the call once, from its attempts."""
        call = self.call
        if call.done:
            return
        call.done = True
        duration_ns = time.perf_counter_ns() - call.start_ns
        error = self.error
        attempts = [attempt for attempt in self.attempts if attempt.rec is not None]
        if not attempts:
            # Nothing seen on the wire: refused before sending (an error), or answered without a
            # request tokentrace reads (a provider it has no reader for, a cache, a mock).
            status = _pricing.UNPRICED if error is None else _pricing.NO_USAGE
            model = call.request.model or "unknown"
            error_type = type(error).__qualname__ if error is not None else None
            rec = CallRecord(
                provider=call.provider,
                model=model,
                usage=None,
                cost_units=None,
                cost_status=status,
                retries=0,
                error_type=error_type,
            )
            call.attempts = []  # an SDK's own attempt hooks may have noted requests it did not route
            problem = NO_REQUEST if error is None else None
            _engine.account(call, rec, None, problem, None, error, None, None, error is None, duration_ns)
            return
        last = attempts[-1]
        billed = [attempt for attempt in attempts if attempt.rec.usage is not None]  # type: ignore[union-attr]  # settled
        answer = billed[-1] if billed else last
        if error is None:
            error = last.error  # a stream the application was reading that failed
        rec = _combined(answer, billed, len(attempts), error)
        call.attempts = list(attempts)
        self.answered_by = answer.call.integration
        # The call is priced as its answer was: at that provider, at the base URL it was sent to.
        call.request.base_url = answer.call.request.base_url
        if call.provider != rec.provider:
            call.provider = rec.provider
            call.span.set_attribute(sc.GEN_AI_PROVIDER_NAME, rec.provider)
        _engine.account(
            call,
            rec,
            answer.response_model,
            answer.problem,
            answer.source,
            error,
            last.stream_end,
            answer.reading,
            True,
            duration_ns,
        )


def _combined(
    answer: Attempt, billed: list[Attempt], attempts: int, error: BaseException | None
) -> CallRecord:
    """The relayed call's record: the provider and model of the attempt that answered (the last
    one billed), the sum of the billed attempts' usage and cost, one retry per further attempt."""
    own = answer.rec
    assert own is not None  # settled
    records = [attempt.rec for attempt in billed if attempt.rec is not None]
    usage: Usage | None = own.usage
    cost, status, parts = own.cost_units, own.cost_status, own.parts
    if len(records) > 1:
        more = tuple(_inferences.Inference(None, r.usage) for r in records[1:] if r.usage is not None)
        usage = _inferences.combined(records[0].usage, more)  # type: ignore[arg-type]  # billed
        costs = [r.cost_units for r in records]
        cost = sum(c for c in costs if c is not None) if None not in costs else None
        status = max((r.cost_status for r in records), key=lambda s: _RANK.get(s, 2))
        every = [r.parts for r in records]
        parts = _sum_parts(every) if cost is not None and None not in every else None
    error_type = type(error).__qualname__ if error is not None else None
    # The billed attempts before the answer were thrown away: retry waste, though the call answered.
    thrown = [attempt.rec for attempt in billed[:-1] if attempt.rec is not None]
    return CallRecord(
        provider=own.provider,
        model=own.model,
        usage=usage,
        cost_units=cost,
        cost_status=status,
        retries=attempts - 1,
        error_type=error_type,
        parts=parts,
        waste_tokens=sum(r.usage.input_tokens + r.usage.output_tokens for r in thrown if r.usage is not None),
        waste_units=sum(r.cost_units for r in thrown if r.cost_units is not None),
    )


def _sum_parts(every: list[Parts | None]) -> Parts:
    total = [0, 0, 0, 0, 0]
    for parts in every:
        assert parts is not None
        for i, value in enumerate(parts):
            total[i] += value
    return Parts(*total)


# --- the wrapper of a relaying library's methods -----------------------------------------------


def _begin(
    integration: ProviderIntegration,
    method: Method,
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Call | None:
    if args and method.positional:
        # Read the request from the positional arguments too; the call gets them as they were.
        kwargs = {**dict(zip(method.positional, args, strict=False)), **kwargs}
    call = _engine._begin(integration, method, instance, (), kwargs)
    if call is not None:
        call.relay = Relayed(call)
    return call


def _after(call: Call, result: Any) -> Any:
    """The method returned: its call is accounted once its attempts' responses are read, and,
    for a stream, once the stream has ended."""
    guarded("call.leave", leave, None, call)
    return guarded("relay.returned", _returned, result, call, result)


def _returned(call: Call, result: Any) -> Any:
    relay = call.relay
    assert relay is not None  # opened by _begin
    if call.integration.is_stream(call.request, result):
        # A library's stream may send its request only when its first item is asked for
        # (LiteLLM's to Gemini): that item is asked for with the call in flight.
        relay.reading = True
        return _streams.wrap_stream(call, result, lazy=True)
    relay.ended_with(None)
    return result


def _fail(call: Call, error: BaseException) -> None:
    relay = call.relay
    if relay is not None:
        relay.ended_with(error)


def call_wrapper(integration: RelayIntegration, method: Method) -> _engine.Wrapper:
    """The wrapt wrapper for one method of a relaying library (sync or async as it is)."""
    return _engine.call_wrapper(integration, method, _begin, _after, _fail)
