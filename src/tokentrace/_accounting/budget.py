"""Budgets: a call reserves its estimate before it is sent and is charged its real use after.

Every task with its own ``Budget`` has a ``Guard``. A call checks and reserves on the guard of
its task and of every enclosing task in one step under one lock, so threads racing for a
task's last calls never let more through than its limits allow (for ``max_llm_calls`` exactly;
for tokens and cost as far as the estimates go). After the call its reservation is released
and its real tokens and cost are charged; a task that went over is marked.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from tokentrace._accounting.tally import CallRecord
from tokentrace._foundation import semconv as sc
from tokentrace._foundation.safety import renew_after_fork
from tokentrace.types import Budget, BudgetBreach, CallEstimate

if TYPE_CHECKING:
    from tokentrace._accounting.task import Task

logger: Final = logging.getLogger("tokentrace")
_ZERO: Final = Decimal(0)
_lock = threading.Lock()

renew_after_fork(globals(), "_lock")


class Guard:
    """What one budgeted task has spent and has reserved for calls in flight."""

    __slots__ = ("blocked", "budget", "calls", "cost", "exceeded", "r_calls", "r_cost", "r_tokens", "tokens")

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.calls = self.tokens = self.r_calls = self.r_tokens = self.blocked = 0
        self.cost = self.r_cost = _ZERO
        self.exceeded: str | None = None
        """The first limit that real spending went over, once it did."""

    def over(self) -> tuple[str, Decimal | int, Decimal | int] | None:
        """The first limit the real spending is over: (limit, its value, the amount spent)."""
        b = self.budget
        if b.max_llm_calls is not None and self.calls > b.max_llm_calls:
            return ("max_llm_calls", b.max_llm_calls, self.calls)
        if b.max_tokens is not None and self.tokens > b.max_tokens:
            return ("max_tokens", b.max_tokens, self.tokens)
        if b.max_cost_usd is not None and self.cost > b.max_cost_usd:
            return ("max_cost_usd", b.max_cost_usd, self.cost)
        return None


class Reservation:
    """What one call holds on each guard of its chain until it is settled."""

    __slots__ = ("cost", "guards", "tokens")

    def __init__(self, guards: list[Guard], tokens: int, cost: Decimal) -> None:
        self.guards = guards
        self.tokens = tokens
        self.cost = cost


def chain(task: Task) -> list[tuple[Task, Guard]]:
    """The budgeted tasks from ``task`` outwards."""
    found: list[tuple[Task, Guard]] = []
    t: Task | None = task
    while t is not None:
        if t._guard is not None:
            found.append((t, t._guard))
        t = t.parent
    return found


def _breach_of(
    guards: list[tuple[Task, Guard]], estimate: CallEstimate
) -> tuple[Task, Guard, str, Decimal | int, Decimal | int, Decimal | int] | None:
    tokens = estimate.input_tokens + estimate.output_tokens
    cost = estimate.cost_usd
    for task, g in guards:
        b = g.budget
        if b.max_llm_calls is not None and g.calls + g.r_calls + 1 > b.max_llm_calls:
            spent = g.calls + g.r_calls
            return (task, g, "max_llm_calls", b.max_llm_calls, spent, spent + 1)
        if b.max_tokens is not None and g.tokens + g.r_tokens + tokens > b.max_tokens:
            spent = g.tokens + g.r_tokens
            return (task, g, "max_tokens", b.max_tokens, spent, spent + tokens)
        if b.max_cost_usd is not None and cost is not None and g.cost + g.r_cost + cost > b.max_cost_usd:
            spent_cost = g.cost + g.r_cost
            return (task, g, "max_cost_usd", b.max_cost_usd, spent_cost, spent_cost + cost)
    return None


def _reserve(guards: list[tuple[Task, Guard]], estimate: CallEstimate) -> Reservation:
    tokens = estimate.input_tokens + estimate.output_tokens
    cost = estimate.cost_usd or _ZERO
    for _, g in guards:
        g.r_calls += 1
        g.r_tokens += tokens
        g.r_cost += cost
    return Reservation([g for _, g in guards], tokens, cost)


def check(
    task: Task, estimate: CallEstimate, provider: str, model: str, kwargs: Mapping[str, Any]
) -> tuple[Reservation | None, BudgetBreach | None, Budget | None]:
    """Reserve the call on every guard of its chain, or say which limit it would cross.

    Returns (reservation, None, None) when the call fits, else (None, breach, the budget).
    """
    guards = chain(task)
    with _lock:
        found = _breach_of(guards, estimate)
        if found is None:
            return _reserve(guards, estimate), None, None
    owner, guard, limit, value, spent, projected = found
    breach = BudgetBreach(
        task=owner,
        totals=owner.totals,
        limit=limit,  # type: ignore[arg-type]  # one of the three Budget field names
        limit_value=value,
        spent=spent,
        projected=projected,
        estimate=estimate,
        provider=provider,
        model=model,
        budget=guard.budget,
        request_kwargs=MappingProxyType(dict(kwargs)),
    )
    return None, breach, guard.budget


def force(task: Task, estimate: CallEstimate) -> Reservation:
    """Reserve a call that goes ahead although it crosses a limit (``warn``, or a callback's choice)."""
    guards = chain(task)
    with _lock:
        return _reserve(guards, estimate)


def blocked(breach: BudgetBreach) -> None:
    """Count a call that a budget stopped, on the task whose budget it is, with an event."""
    task = breach.task
    assert task is not None  # a budget's breach names its task
    guard = task._guard
    if guard is not None:
        with _lock:
            guard.blocked += 1
    task._span.add_event(sc.EVENT_BUDGET_BLOCKED, _event_attrs(breach))


def warned(breach: BudgetBreach, action: str) -> None:
    """Log and record a call that goes ahead past a limit (``warn`` mode or a callback)."""
    logger.warning("tokentrace budget: %s; the call goes ahead (%s)", breach.describe(), action)
    attrs = _event_attrs(breach)
    attrs[sc.BUDGET_ACTION] = action
    assert breach.task is not None  # a budget's breach names its task
    breach.task._span.add_event(sc.EVENT_BUDGET_WARNING, attrs)


def _event_attrs(breach: BudgetBreach) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        sc.BUDGET_LIMIT: breach.limit,
        sc.BUDGET_LIMIT_VALUE: _number(breach.limit_value),
        sc.BUDGET_SPENT: _number(breach.spent),
        sc.BUDGET_PROJECTED: _number(breach.projected),
        sc.GEN_AI_PROVIDER_NAME: breach.provider,
        sc.GEN_AI_REQUEST_MODEL: breach.model,
        sc.BUDGET_ESTIMATED_INPUT_TOKENS: breach.estimate.input_tokens,
        sc.BUDGET_ESTIMATED_OUTPUT_TOKENS: breach.estimate.output_tokens,
    }
    return attrs


def _number(value: Decimal | int) -> float | int:
    return float(value) if isinstance(value, Decimal) else value


def settle(reservation: Reservation | None, rec: CallRecord | None, task: Task) -> None:
    """Release a call's reservation and charge what it really used (``rec``; ``None``: not sent)."""
    tokens = 0
    cost = _ZERO
    if rec is not None:
        usage = rec.usage
        if usage is not None:
            tokens = usage.input_tokens + usage.output_tokens
        if rec.cost_usd is not None:
            cost = rec.cost_usd
    went_over: list[tuple[Task, tuple[str, Decimal | int, Decimal | int]]] = []
    guards = chain(task)
    with _lock:
        if reservation is not None:
            for g in reservation.guards:
                g.r_calls -= 1
                g.r_tokens -= reservation.tokens
                g.r_cost -= reservation.cost
        if rec is not None:
            for owner, g in guards:
                g.calls += 1
                g.tokens += tokens
                g.cost += cost
                if g.exceeded is None:
                    over = g.over()
                    if over is not None:
                        g.exceeded = over[0]
                        went_over.append((owner, over))
    for owner, (limit, value, spent) in went_over:
        logger.warning(
            "tokentrace budget: task %r (id %s) went over %s=%s: %s after a call (a call's real use "
            "can exceed its estimate)",
            owner.name,
            owner.id,
            limit,
            value,
            spent,
        )
        owner._span.add_event(
            sc.EVENT_BUDGET_EXCEEDED,
            {sc.BUDGET_LIMIT: limit, sc.BUDGET_LIMIT_VALUE: _number(value), sc.BUDGET_SPENT: _number(spent)},
        )
