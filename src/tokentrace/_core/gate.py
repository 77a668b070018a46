"""The budget gate: what happens to an LLM call in a budgeted task, or under limits across
replicas, before it is sent.

``check`` estimates the call and reserves it on its tasks' budgets (or notes the limit it would
cross); ``check_limits`` reserves it on the counters of the limits that apply to it (or notes
the one without room); ``enforce`` applies the budget's ``on_exceed`` (a limit always refuses)
and is the one place where tokentrace raises into the user's call, by design:
``BudgetExceeded``, or the user's own callback's error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Status, StatusCode

from tokentrace._accounting import budget as _budget
from tokentrace._accounting import limits as _limits
from tokentrace._accounting.task import Task
from tokentrace._core import requests as _requests
from tokentrace._core.call import Call, leave
from tokentrace._foundation import semconv as sc
from tokentrace._foundation.safety import guarded
from tokentrace.exceptions import BudgetExceeded, ConfigurationError
from tokentrace.types import BudgetBreach, CallEstimate, Limit

if TYPE_CHECKING:
    from pathlib import Path


def _estimate(call: Call) -> CallEstimate:
    request = call.request
    return _requests.estimate(
        request.model or "unknown",
        call.provider,
        request.base_url,
        request.kwargs,
        embeddings=call.method.operation == "embeddings",
    )


def _estimated(call: Call) -> CallEstimate:
    """Estimate the call and put the estimate on its span."""
    estimate = call.estimate = _estimate(call)
    if call.span.is_recording():
        attrs: dict[str, Any] = {
            sc.BUDGET_ESTIMATED_INPUT_TOKENS: estimate.input_tokens,
            sc.BUDGET_ESTIMATED_OUTPUT_TOKENS: estimate.output_tokens,
        }
        if estimate.cost_usd is not None:
            attrs[sc.BUDGET_ESTIMATED_COST_USD] = float(estimate.cost_usd)
        call.span.set_attributes(attrs)
    return estimate


def check(call: Call, task: Task) -> None:
    """Estimate the call and reserve it on its tasks' budgets, or note the limit it would cross."""
    estimate = _estimated(call)
    call.reservation, call.breach, call.budget = _budget.check(
        task, estimate, call.provider, call.request.model or "unknown", call.request.kwargs
    )


def check_limits(call: Call, task: Task | None, limits: tuple[Limit, ...], store: Path | str | None) -> None:
    """Reserve the call on the counters of the limits across replicas that apply to it, or note
    the one without room (which replaces a budget's breach: a limit always refuses)."""
    assert store is not None  # configure() names the store whenever it sets limits
    budget = call.budget
    if budget is not None and budget.on_exceed == "raise":
        return  # the task's budget refuses the call already
    estimate = call.estimate
    if estimate is None:
        estimate = _estimated(call)
    request = call.request
    hold, breach, unchecked = _limits.check(
        limits, store, task, estimate, call.provider, request.model or "unknown", request.kwargs
    )
    call.limit_hold = hold
    if unchecked is not None:
        call.span.set_attribute(sc.LIMIT_UNAVAILABLE, unchecked)
    if breach is not None:
        if call.reservation is not None and task is not None:
            _budget.settle(call.reservation, None, task)  # not sent: the budgets get it back
            call.reservation = None
        call.breach, call.budget = breach, None


def _block(call: Call, breach: BudgetBreach, error: BaseException) -> None:
    """End a call that a budget (or its callback) or a limit stopped before the request was sent."""
    call.done = True
    span = call.span
    if span.is_recording():
        attrs: dict[str, Any] = {
            sc.BUDGET_BLOCKED: True,
            sc.BUDGET_LIMIT: breach.limit,
            sc.ERROR_TYPE: type(error).__qualname__,
        }
        if breach.limit_scope is not None:
            attrs.update(_limits.span_attributes(breach))
        span.set_attributes(attrs)
        span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
    span.end()
    if breach.limit_scope is not None:
        _limits.blocked(breach)
    else:
        _budget.blocked(breach)


def _give_back(call: Call) -> None:
    """Release what a call that is not sent reserved on limits' counters."""
    hold, call.limit_hold = call.limit_hold, None
    if hold is not None:
        _limits.release(hold)


def _go_ahead(call: Call, breach: BudgetBreach, action: str) -> None:
    task = call.task
    if task is not None and call.estimate is not None:
        call.reservation = _budget.force(task, call.estimate)
    _budget.warned(breach, action)


def _retarget(call: Call, instance: Any, kwargs: dict[str, Any]) -> None:
    """A budget callback replaced the call's arguments: read the request again."""
    call.request = call.integration.request(call.method, instance, kwargs)
    call.provider = call.request.provider or call.integration.provider
    model = call.request.model or "unknown"
    call.span.update_name(f"{call.method.operation} {model}")
    call.span.set_attribute(sc.GEN_AI_REQUEST_MODEL, model)
    call.estimate = _estimate(call)


def enforce(call: Call, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Apply the budget's ``on_exceed`` to a call that would cross a limit (user-facing: may raise);
    a limit across replicas always refuses the call."""
    breach, budget = call.breach, call.budget
    assert breach is not None
    mode = budget.on_exceed if budget is not None else "raise"
    if mode == "warn":
        guarded("budget.warn", _go_ahead, None, call, breach, "warn")
        return kwargs
    if mode == "raise":
        error = BudgetExceeded(breach)
        guarded("call.leave", leave, None, call)
        guarded("budget.block", _block, None, call, breach, error)
        raise error
    try:
        override = mode(breach)
        if override is not None and not isinstance(override, Mapping):
            raise ConfigurationError(
                "a Budget on_exceed callback returns None or a mapping of keyword arguments, "
                f"got {override!r}"
            )
    except BaseException as exc:
        guarded("call.leave", leave, None, call)
        guarded("limit.give_back", _give_back, None, call)
        guarded("budget.block", _block, None, call, breach, exc)
        raise
    if override:
        kwargs = {**kwargs, **override}
        guarded("budget.retarget", _retarget, None, call, instance, kwargs)
    guarded("budget.warn", _go_ahead, None, call, breach, "callback")
    return kwargs
