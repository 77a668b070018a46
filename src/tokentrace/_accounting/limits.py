"""Limits across replicas: which calls a ``Limit`` applies to, its windows and counters, and the
breach when a counter has no room. The counters live in the ledger's store (``ledger/_limits``),
so every process and replica writing one ledger shares them.

Windows are fixed, aligned to the Unix epoch in UTC (``"1h"``: clock hours, ``"1d"``: UTC days),
so each (limit, value, window) is one counter row and a reservation is one row's update.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from tokentrace._foundation import semconv as sc
from tokentrace._foundation.safety import renew_after_fork
from tokentrace.ledger._limits import Ask, Counters, Refused, Row, Unreachable
from tokentrace.ledger._rows import pico
from tokentrace.types import Budget, BudgetBreach, CallEstimate, Limit, Totals

if TYPE_CHECKING:
    from tokentrace._accounting.tally import CallRecord
    from tokentrace._accounting.task import Task

logger: Final = logging.getLogger("tokentrace")

clock = time.time
"""Where the time comes from (Unix seconds), for the windows."""

_stores: dict[Path | str, Counters] = {}
_lock = threading.Lock()
_warned: set[tuple[Path | str, str]] = set()
_unchecked = 0

renew_after_fork(globals(), "_lock")


class Hold:
    """What one call reserved on its limits' counters until it is settled."""

    __slots__ = ("pico", "rows", "store", "tokens")

    def __init__(self, store: Counters, rows: list[Row], tokens: int, pico: int) -> None:
        self.store = store
        self.rows = rows
        self.tokens = tokens
        self.pico = pico


def store(target: Path | str) -> Counters:
    """This process's counters in the ledger ``target`` (opened on first use)."""
    with _lock:
        found = _stores.get(target)
        if found is None:
            found = _stores[target] = Counters(target)
        return found


def unchecked_calls() -> int:
    """Calls that went ahead unchecked because the store could not be reached (``on_error="open"``)."""
    return _unchecked


@lru_cache(maxsize=256)
def _shape(limit: Limit) -> tuple[str, int, tuple[tuple[str, str], ...], int | None]:
    """A limit's key, window length, filters and cost in picodollars (worked out once)."""
    cost = pico(limit.max_cost_usd) if limit.max_cost_usd is not None else None
    return limit.key, limit.window_seconds, tuple(limit.filters.items()), cost


def applicable(limits: tuple[Limit, ...], task: Task | None) -> list[tuple[Limit, str]]:
    """The limits that apply to a call in ``task``, each with the value of its ``per`` dimension
    (``"*"`` for a limit without one)."""
    if task is None:
        return [(limit, "*") for limit in limits if limit.per is None and not _shape(limit)[2]]
    dims = {"tenant": task.tenant, "user": task.user_id, "feature": task.feature, "task": task.name}
    found: list[tuple[Limit, str]] = []
    for limit in limits:
        if any(dims[name] != value for name, value in _shape(limit)[2]):
            continue
        value = dims[limit.per] if limit.per is not None else "*"
        if value is not None:
            found.append((limit, value))
    return found


def check(
    limits: tuple[Limit, ...],
    target: Path | str,
    task: Task | None,
    estimate: CallEstimate,
    provider: str,
    model: str,
    kwargs: Mapping[str, Any],
) -> tuple[Hold | None, BudgetBreach | None, str | None]:
    """Reserve the call on the counters of every limit that applies to it.

    Returns (the reservation, None, None) when every counter has room (no reservation when no
    limit applies), (None, the breach, None) when the call must be refused, and (None, None, why)
    when the store cannot be reached and every limit that applies lets the call go unchecked."""
    found = applicable(limits, task)
    if not found:
        return None, None, None
    now = int(clock())
    asks = []
    for limit, value in found:
        key, seconds, _, max_pico = _shape(limit)
        row = (key, value, now // seconds * seconds)
        asks.append(Ask(row, limit.max_llm_calls, limit.max_tokens, max_pico))
    tokens = estimate.input_tokens + estimate.output_tokens
    cost = pico(estimate.cost_usd) if estimate.cost_usd is not None else None
    counters = store(target)
    try:
        refused = counters.reserve(asks, tokens, cost)
    except Unreachable as exc:
        reason = str(exc)
        closed = [(limit, value) for limit, value in found if limit.on_error == "closed"]
        if closed:
            limit, value = closed[0]
            return None, _unavailable(limit, value, reason, task, estimate, provider, model, kwargs), None
        _went_unchecked(target, reason)
        return None, None, reason
    if refused is None:
        return Hold(counters, sorted({ask.row for ask in asks}), tokens, cost or 0), None, None
    limit, value = found[refused.ask]
    breach = _breach(limit, value, refused, asks[refused.ask].row[2], task, estimate, provider, model, kwargs)
    return None, breach, None


def _went_unchecked(target: Path | str, reason: str) -> None:
    global _unchecked
    with _lock:
        _unchecked += 1
    _warn_once(
        target,
        "check",
        "tokentrace limits: %s; calls go ahead unchecked while it cannot be reached (on_error='open'; "
        "this is logged once)",
        reason,
    )


def _warn_once(target: Path | str, step: str, message: str, reason: object) -> None:
    """Log ``message`` the first time ``step`` fails on the store ``target`` in this process."""
    with _lock:
        first = (target, step) not in _warned
        _warned.add((target, step))
    if first:
        logger.warning(message, reason)


def _breach(
    limit: Limit,
    value: str,
    refused: Refused,
    window_start: int,
    task: Task | None,
    estimate: CallEstimate,
    provider: str,
    model: str,
    kwargs: Mapping[str, Any],
) -> BudgetBreach:
    u = refused.usage
    spent: Decimal | int
    projected: Decimal | int
    if refused.limit == "max_llm_calls":
        assert limit.max_llm_calls is not None
        limit_value: Decimal | int = limit.max_llm_calls
        spent, projected = u.calls, u.calls + 1
    elif refused.limit == "max_tokens":
        assert limit.max_tokens is not None
        limit_value = limit.max_tokens
        spent = u.tokens + u.reserved_tokens
        projected = spent + estimate.input_tokens + estimate.output_tokens
    else:
        assert limit.max_cost_usd is not None
        assert estimate.cost_usd is not None  # an unpriced call is checked against no cost limit
        limit_value = limit.max_cost_usd
        spent = Decimal(u.cost_pico + u.reserved_pico).scaleb(-12)
        projected = spent + estimate.cost_usd
    return _make(
        limit,
        value,
        refused.limit,
        limit_value,
        spent,
        projected,
        task,
        estimate,
        provider,
        model,
        kwargs,
        window_start,
    )


def _unavailable(
    limit: Limit,
    value: str,
    reason: str,
    task: Task | None,
    estimate: CallEstimate,
    provider: str,
    model: str,
    kwargs: Mapping[str, Any],
) -> BudgetBreach:
    name, limit_value = next(
        (n, v)
        for n, v in (
            ("max_llm_calls", limit.max_llm_calls),
            ("max_tokens", limit.max_tokens),
            ("max_cost_usd", limit.max_cost_usd),
        )
        if v is not None
    )
    return _make(limit, value, name, limit_value, 0, 0, task, estimate, provider, model, kwargs, None, reason)


def _make(
    limit: Limit,
    value: str,
    name: str,
    limit_value: Decimal | int,
    spent: Decimal | int,
    projected: Decimal | int,
    task: Task | None,
    estimate: CallEstimate,
    provider: str,
    model: str,
    kwargs: Mapping[str, Any],
    window_start: int | None,
    unavailable: str | None = None,
) -> BudgetBreach:
    return BudgetBreach(
        task=task,
        totals=task.totals if task is not None else Totals(),
        limit=name,  # type: ignore[arg-type]  # one of the three Limit field names
        limit_value=limit_value,
        spent=spent,
        projected=projected,
        estimate=estimate,
        provider=provider,
        model=model,
        budget=Budget(limit.max_cost_usd, limit.max_tokens, limit.max_llm_calls),
        request_kwargs=MappingProxyType(dict(kwargs)),
        limit_scope=limit,
        scope_value=value if limit.per is not None else None,
        window_start=window_start,
        unavailable=unavailable,
    )


def span_attributes(breach: BudgetBreach) -> dict[str, Any]:
    """What a call span stopped by a limit says of the limit."""
    scope = breach.limit_scope
    assert scope is not None
    attrs: dict[str, Any] = {sc.LIMIT_KEY: scope.key}
    if breach.scope_value is not None:
        attrs[sc.LIMIT_SCOPE_VALUE] = breach.scope_value
    if breach.unavailable is not None:
        attrs[sc.LIMIT_UNAVAILABLE] = breach.unavailable
    if breach.window_start is not None:
        attrs[sc.LIMIT_WINDOW_START] = breach.window_start
    return attrs


def blocked(breach: BudgetBreach) -> None:
    """Record a call a limit stopped as an event on its task's span (a call in a task)."""
    task = breach.task
    if task is not None:
        attrs = span_attributes(breach)
        attrs[sc.BUDGET_LIMIT] = breach.limit
        task._span.add_event(sc.EVENT_LIMIT_BLOCKED, attrs)


def settle(hold: Hold, rec: CallRecord | None) -> None:
    """Release a call's reservation and charge what it used (``rec``; ``None``: never sent, so
    its call is given back). When the store cannot be reached the reservation stays until its
    window ends (warned of once)."""
    used: tuple[int, int] | None = None
    if rec is not None:
        usage = rec.usage
        tokens = usage.input_tokens + usage.output_tokens if usage is not None else 0
        cost = rec.cost_usd
        used = (tokens, pico(cost) if cost is not None else 0)
    try:
        hold.store.settle(hold.rows, hold.tokens, hold.pico, used)
    except Unreachable as exc:
        _warn_once(
            hold.store.target,
            "settle",
            "tokentrace limits: %s; a call's reservation stays until its window ends, and what it "
            "used is not counted (this is logged once)",
            exc,
        )


def release(hold: Hold) -> None:
    """Give back a reservation whose call was not sent."""
    settle(hold, None)
