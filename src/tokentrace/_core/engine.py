"""The one engine: the lifecycle of an LLM call, for every integration.

``call_wrapper`` builds the wrapt wrapper for an SDK method. The user's call runs exactly once,
outside every guard; only tokentrace's own steps (``_begin``, ``_finish``, ``_fail``) are
guarded, and after an internal error the user's own result is returned.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from tokentrace._accounting import budget as _budget
from tokentrace._accounting import limits as _limits
from tokentrace._accounting.tally import CallRecord
from tokentrace._accounting.task import _CURRENT as _CURRENT_TASK
from tokentrace._core import attempts as _attempts
from tokentrace._core import content as _content
from tokentrace._core import gate as _gate
from tokentrace._core import requests as _requests
from tokentrace._core.call import _ACTIVE_CALL, Call, active_call, in_flight, leave
from tokentrace._core.integration import UNREAD, Method, ProviderIntegration, Reading, Request
from tokentrace._foundation import semconv as sc
from tokentrace._foundation.providers import is_own_api
from tokentrace._foundation.safety import guarded
from tokentrace._pricing import charge as _charge
from tokentrace._pricing import inferences as _inferences
from tokentrace._pricing import money as _money
from tokentrace._pricing import prices as _pricing
from tokentrace._telemetry import exception_events as _exception_events
from tokentrace._telemetry import propagation as _propagation
from tokentrace._telemetry import providers as _telemetry
from tokentrace._tokens import tokenize as _tokenize
from tokentrace._tokens.usage import UsageError

__all__ = ["Call", "account", "active_call", "call_wrapper", "complete", "complete_with", "start"]

Wrapper = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]

# The integrations whose patches are live; a patch left in place by an out-of-order unwrap
# passes straight through once its integration is no longer here. Changed only through
# ``switch_on`` and ``switch_off`` (by the registry).
_live: set[str] = set()
# The integrations whose per-attempt hooks are installed, so a call with no attempt was never sent.
_counts_attempts: set[str] = set()


def switch_on(name: str, *, counts_attempts: bool) -> None:
    """Record calls through ``name``'s patches from now on (the registry has applied them)."""
    _live.add(name)
    if counts_attempts:
        _counts_attempts.add(name)


def switch_off(name: str) -> None:
    """Let calls through ``name``'s patches pass unrecorded (the registry is undoing them)."""
    _live.discard(name)
    _counts_attempts.discard(name)


def is_live(name: str) -> bool:
    """Whether ``name``'s patches record calls."""
    return name in _live


def _begin(
    integration: ProviderIntegration,
    method: Method,
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Call | None:
    if integration.name not in _live or not _telemetry.state.settings.enabled:
        return None
    active = _ACTIVE_CALL.get()
    if active is not None and in_flight(active) is not None:
        # A layered SDK (one instrumented method calling another): record the call once.
        return None
    return start(integration, method, integration.request(method, instance, kwargs))


def start(integration: ProviderIntegration, method: Method, request: Request) -> Call:
    """Open one LLM call: its span, its place in the current task, and its budget and limits
    checks (the caller applies ``_gate.enforce`` when ``call.breach`` is set, before sending)."""
    task = _CURRENT_TASK.get()
    call = Call(integration, method, request, task)
    model = request.model or "unknown"
    operation = method.operation
    attrs: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: operation,
        sc.GEN_AI_PROVIDER_NAME: call.provider,
        sc.GEN_AI_REQUEST_MODEL: model,
    }
    if request.stream:
        attrs[sc.GEN_AI_REQUEST_STREAM] = True
    if task is not None:
        attrs.update(task._dimensions())
    else:
        attrs.update(guarded("call.upstream", _propagation.call_dimensions, {}))
    span = call.span = _telemetry.tracer().start_span(
        f"{operation} {model}", kind=SpanKind.CLIENT, attributes=attrs
    )
    call.context_tokens = (_ACTIVE_CALL.set(call), otel_context.attach(trace.set_span_in_context(span)))
    if task is not None and task._guarded:
        guarded("budget.check", _gate.check, None, call, task)
    settings = _telemetry.state.settings
    if settings.limits:
        guarded("limit.check", _gate.check_limits, None, call, task, settings.limits, settings.limit_store)
    if request.stream and settings.request_stream_usage:
        call.ask_usage = guarded("call.ask_usage", integration.usage_options, None, method, request)
    return call


def _finish(call: Call, result: Any) -> Any:
    if call.integration.is_stream(call.request, result):
        from tokentrace._core.streams import wrap_stream

        return call.integration.attach_stream(call.method, result, lambda stream: wrap_stream(call, stream))
    integration, request = call.integration, call.request
    parsed = integration.parsed(request, result)
    if parsed is UNREAD:
        from tokentrace._core.streams import wrap_unread

        return wrap_unread(call, result)
    try:  # complete_with, inline: this runs on every call
        reading = integration.read(call.method, request, parsed)
    except UsageError as exc:
        complete(call, None, problem=str(exc))
    else:
        complete(call, reading)
    return result


def complete_with(
    call: Call,
    read: Callable[..., Reading],
    *args: Any,
    error: BaseException | None = None,
    stream_end: str | None = None,
) -> None:
    """Complete ``call`` with what ``read(*args)`` says; a reading it rejects leaves the call
    without usage, with the reason."""
    try:
        reading = read(*args)
    except UsageError as exc:
        complete(call, None, error=error, problem=str(exc), stream_end=stream_end)
    else:
        complete(call, reading, error=error, stream_end=stream_end)


def _fail(call: Call, error: BaseException) -> None:
    # Some SDK errors come after a billed response (e.g. a length limit while parsing).
    reading = call.integration.read_error(call.method, call.request, error)
    complete(call, reading, error=error)


def complete(
    call: Call,
    reading: Reading | None,
    *,
    error: BaseException | None = None,
    problem: str | None = None,
    stream_end: str | None = None,
) -> None:
    """Account a finished call: price it, add it to its task, end its span, record metrics."""
    if call.done:
        return
    call.done = True
    duration_ns = time.perf_counter_ns() - call.start_ns
    request = call.request
    if reading is not None:
        usage, response_model = reading.usage, reading.response_model
    else:
        usage = response_model = None
    model = response_model or request.model or "unknown"
    cost = source = parts = note = None
    if reading is not None and reading.free and error is None:
        # Token counting: a call, at no charge; what it counted is not usage.
        status, cost, usage, problem = _pricing.FREE, 0, None, None
    elif problem is not None:
        # An estimate the missing estimate extra could not make: unpriced, the extra named.
        status = _pricing.UNPRICED if problem == _tokenize.NO_ESTIMATE else _pricing.INVALID_USAGE
        usage = None
    elif usage is None:
        if error is None:
            status, problem = _pricing.UNPRICED, "the response reported no usage"
        else:
            status = _pricing.NO_USAGE
    else:
        assert reading is not None  # usage came from it
        # Priced as of when the call was made (some prices change with the time of day).
        charged = _charge.charge(
            usage,
            model=model,
            provider=call.provider,
            base_url=request.base_url,
            elapsed_ns=duration_ns,
            duration_ns=duration_ns,
            tier=reading.service_tier,
            billed=reading.billed,
            inferences=reading.inferences,
            reported_cost=reading.reported_cost,
            estimated=reading.estimated,
            request_model=request.model if response_model else None,
        )
        status, usage, cost, parts = charged.status, charged.usage, charged.cost, charged.parts
        source, problem, note = charged.source, charged.problem, charged.note
    attempts = len(call.attempts)
    rec = CallRecord(
        provider=call.provider,
        model=model,
        usage=usage,
        cost_units=cost,
        cost_status=status,
        retries=attempts - 1 if attempts > 1 else 0,
        error_type=type(error).__qualname__ if error is not None else None,
        parts=parts,
    )
    attempt = call.attempt_of
    if attempt is not None:
        # One request of a relayed call (see relay.py): that call accounts for it.
        attempt.settled(rec, response_model, problem or note, source, error, stream_end, reading)
        return
    # A call the SDK refused before sending (bad arguments) is not an LLM call. A stream that
    # ended in an error was handed to the application: a lazy one (a generator that sends on
    # its first iteration) has its attempts outside the call's context, so none were noted.
    sent = (
        error is None
        or attempts > 0
        or stream_end is not None
        or call.integration.name not in _counts_attempts
    )
    account(call, rec, response_model, problem or note, source, error, stream_end, reading, sent, duration_ns)


def account(
    call: Call,
    rec: CallRecord,
    response_model: str | None,
    problem: str | None,
    source: str | None,
    error: BaseException | None,
    stream_end: str | None,
    reading: Reading | None,
    sent: bool,
    duration_ns: int,
) -> None:
    """Charge a priced call to its tasks (when it was ``sent``), budgets and limits, end its span
    and record its metrics."""
    task = call.task
    duplicate = False
    if task is not None:
        if _telemetry.state.settings.detect_duplicates:
            request = call.request
            rec.digest = _requests.digest(
                call.provider, call.method.operation, request.model, request.base_url, request.kwargs
            )
        if sent:
            duplicate = task._record(rec)
        if task._guarded:
            _budget.settle(call.reservation, rec if sent else None, task)
    if call.limit_hold is not None:
        guarded("limit.settle", _limits.settle, None, call.limit_hold, rec if sent else None)
    _end_span(call, rec, response_model, problem, source, error, stream_end, reading, duplicate)
    _record_metrics(call, rec, response_model, duration_ns)


def _end_span(
    call: Call,
    rec: CallRecord,
    response_model: str | None,
    problem: str | None,
    source: str | None,
    error: BaseException | None,
    stream_end: str | None,
    reading: Reading | None,
    duplicate: bool,
) -> None:
    span = call.span
    if not span.is_recording():
        span.end()
        return
    usage = rec.usage
    if usage is not None:
        attrs: dict[str, Any] = {
            sc.COST_STATUS: rec.cost_status,
            sc.RETRIES: rec.retries,
            sc.GEN_AI_USAGE_INPUT_TOKENS: usage.input_tokens,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: usage.cache_read_tokens,
            sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: usage.cache_write_tokens,
            sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: usage.reasoning_tokens,
        }
        if usage.cache_write_1h_tokens:
            attrs[sc.USAGE_CACHE_WRITE_1H] = usage.cache_write_1h_tokens
        if usage.web_search_requests:
            attrs[sc.USAGE_WEB_SEARCHES] = usage.web_search_requests
        if usage.file_search_requests:
            attrs[sc.USAGE_FILE_SEARCHES] = usage.file_search_requests
        if usage.modalities is not None:
            for name, key in sc.USAGE_MODALITIES.items():
                count = getattr(usage.modalities, name)
                if count:
                    attrs[key] = count
    else:
        attrs = {sc.COST_STATUS: rec.cost_status, sc.RETRIES: rec.retries}
    if duplicate:
        attrs[sc.DUPLICATE] = True
    if response_model:
        attrs[sc.GEN_AI_RESPONSE_MODEL] = response_model
    if reading is not None:
        if reading.estimated:
            attrs[sc.USAGE_ESTIMATED] = True
        if reading.counted_tokens is not None:
            attrs[sc.COUNTED_INPUT_TOKENS] = reading.counted_tokens
        if reading.service_tier is not None:
            # A relayed call's tier is named as the provider's own integration names it.
            relay = call.relay
            reader = call.integration if relay is None or relay.answered_by is None else relay.answered_by
            attrs[reader.service_tier_attribute] = reading.service_tier
        base_url = call.request.base_url
        if base_url is not None and usage is not None and not is_own_api(call.provider, base_url):
            # Only a gateway's, a proxy's or a self-hosted server's URL can change the price.
            attrs[sc.BASE_URL] = _shareable(base_url)
        if reading.inferences and usage is not None:
            attrs[sc.USAGE_ITERATIONS] = _inferences.as_json(reading.inferences)
        if reading.billed is not None and usage is not None:
            attrs[sc.USAGE_BILLED_INPUT] = reading.billed.input_tokens
            attrs[sc.USAGE_BILLED_OUTPUT] = reading.billed.output_tokens
    settings = _telemetry.state.settings
    cost = rec.cost_units
    if cost is not None:
        usd = attrs[sc.COST_USD] = cost / _money.UNITS_PER_USD
        if _money.needs_exact_text(cost):
            attrs[sc.COST_USD_EXACT] = str(_money.usd(cost))
        if settings.genai_cost:
            attrs[sc.GEN_AI_USAGE_COST_AMOUNT] = usd
            attrs[sc.GEN_AI_USAGE_COST_CURRENCY] = sc.COST_CURRENCY_USD
            attrs[sc.GEN_AI_USAGE_COST_SOURCE] = (
                sc.COST_SOURCE_PROVIDER if source == _pricing.SOURCE_PROVIDER else sc.COST_SOURCE_LOCAL
            )
    if source is not None:
        attrs[sc.COST_SOURCE] = source
    if problem is not None:
        attrs[sc.USAGE_PROBLEM] = problem
    attempts = call.attempts
    if attempts and (len(attempts) > 1 or error is not None):
        # One clean attempt is the common case and says nothing that retries=0 does not.
        outcomes = [guarded("attempt.status", _attempts.outcome, "unknown", attempt) for attempt in attempts]
        attrs[sc.ATTEMPTS] = outcomes
        if len(outcomes) > 1:
            for number, (attempt, outcome) in enumerate(zip(attempts, outcomes, strict=True), 1):
                plain = {sc.ATTEMPT_NUMBER: number, sc.ATTEMPT_OUTCOME: outcome}
                attrs_ = guarded("attempt.event", _attempts.event, plain, number, attempt, outcome)
                span.add_event(sc.EVENT_ATTEMPT, attrs_)
    if stream_end is not None:
        attrs[sc.STREAM_END] = stream_end
    if settings.capture_content:
        _content.add(attrs, call, reading, settings.content_max_chars)
    if error is not None:
        attrs[sc.ERROR_TYPE] = rec.error_type
        _exception_events.record(span, error)
        span.set_status(Status(StatusCode.ERROR, rec.error_type))
    span.set_attributes(attrs)
    span.end()


def _shareable(url: str) -> str:
    """``url`` without a query, fragment or user info (an API key can ride in any of them)."""
    if "?" not in url and "@" not in url and "#" not in url:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _record_metrics(call: Call, rec: CallRecord, response_model: str | None, duration_ns: int) -> None:
    inst = _telemetry.instruments()
    if not inst.noop:
        # One buffered entry per call; attribute sets are built when the metrics are collected.
        task = call.task
        inst.buffer.add(
            _emit_call_metrics,
            inst,
            call.method.operation,
            call.provider,
            call.request.model or "unknown",
            response_model,
            rec,
            duration_ns,
            task.name if task is not None else None,
            task.feature if task is not None else None,
        )


def _emit_call_metrics(
    inst: _telemetry.Instruments,
    operation: str,
    provider: str,
    request_model: str,
    response_model: str | None,
    rec: CallRecord,
    duration_ns: int,
    task_name: str | None,
    feature: str | None,
) -> None:
    base: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: operation,
        sc.GEN_AI_PROVIDER_NAME: provider,
        sc.GEN_AI_REQUEST_MODEL: request_model,
    }
    if response_model:
        base[sc.GEN_AI_RESPONSE_MODEL] = response_model
    if rec.error_type is not None:
        base[sc.ERROR_TYPE] = rec.error_type
    inst.duration.record(duration_ns / 1e9, base)
    usage = rec.usage
    if usage is not None:
        inst.token_usage.record(usage.input_tokens, {**base, sc.GEN_AI_TOKEN_TYPE: "input"})
        inst.token_usage.record(usage.output_tokens, {**base, sc.GEN_AI_TOKEN_TYPE: "output"})
    cost_attrs: dict[str, Any] = {sc.GEN_AI_PROVIDER_NAME: provider, sc.GEN_AI_RESPONSE_MODEL: rec.model}
    if task_name is not None:
        cost_attrs[sc.TASK_NAME] = task_name
        if feature is not None:
            cost_attrs[sc.FEATURE] = feature
    if rec.cost_units is not None:
        inst.cost.add(_money.as_float(rec.cost_units), cost_attrs)
    elif rec.cost_status in (_pricing.UNPRICED, _pricing.INVALID_USAGE):
        inst.unpriced.add(1, cost_attrs)


# --- wrappers --------------------------------------------------------------------------------


def _after(call: Call, result: Any) -> Any:
    """Leave the call's context and finish it; ``result`` itself after an internal error."""
    guarded("call.leave", leave, None, call)
    return guarded("call.finish", _finish, result, call, result)


Begin = Callable[[ProviderIntegration, Method, Any, tuple[Any, ...], dict[str, Any]], "Call | None"]


def call_wrapper(
    integration: ProviderIntegration,
    method: Method,
    begin: Begin | None = None,
    after: Callable[[Call, Any], Any] | None = None,
    fail: Callable[[Call, BaseException], None] | None = None,
) -> Wrapper:
    """The wrapt wrapper for one LLM method (sync or async as the method is). ``begin``, ``after``
    and ``fail`` replace the steps that open the call, finish it from the method's result and
    finish it from the method's error (a relayed call's, see ``relay.py``); by default the
    engine's own, looked up on each call."""

    if method.is_async:

        async def async_wrapper(
            wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            call = guarded("call.begin", begin or _begin, None, integration, method, instance, args, kwargs)
            if call is None:
                return await wrapped(*args, **kwargs)
            if call.breach is not None:
                kwargs = _gate.enforce(call, instance, kwargs)
            if call.ask_usage is not None:
                kwargs = {**kwargs, **call.ask_usage}
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:
                guarded("call.leave", leave, None, call)
                guarded("call.fail", fail or _fail, None, call, exc)
                raise
            return (after or _after)(call, result)

        return async_wrapper

    def sync_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = guarded("call.begin", begin or _begin, None, integration, method, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        if call.breach is not None:
            kwargs = _gate.enforce(call, instance, kwargs)
        if call.ask_usage is not None:
            kwargs = {**kwargs, **call.ask_usage}
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            guarded("call.leave", leave, None, call)
            guarded("call.fail", fail or _fail, None, call, exc)
            raise
        return (after or _after)(call, result)

    return sync_wrapper
