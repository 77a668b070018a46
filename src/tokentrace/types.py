"""Public value types: frozen snapshots of what tokentrace measured."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Union

from tokentrace._tokens.usage import Modalities, Usage
from tokentrace.exceptions import ConfigurationError

if TYPE_CHECKING:
    from tokentrace._accounting.task import Task

__all__ = [
    "Budget",
    "BudgetBreach",
    "CallEstimate",
    "CostBreakdown",
    "Limit",
    "Modalities",
    "ModelTotals",
    "OnExceed",
    "Totals",
    "Usage",
]

_EMPTY: Mapping[str, ModelTotals] = MappingProxyType({})
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """Where a cost went: uncached input, cache reads, cache writes, output (with reasoning), other.

    ``other`` is what cannot be split by token kind: per-request fees, apportioned hourly
    (self-hosted) costs and costs a gateway reported as one number. The five parts add up to
    the cost exactly.
    """

    input_usd: Decimal = _ZERO
    cache_read_usd: Decimal = _ZERO
    cache_write_usd: Decimal = _ZERO
    output_usd: Decimal = _ZERO
    other_usd: Decimal = _ZERO

    @property
    def total_usd(self) -> Decimal:
        return self.input_usd + self.cache_read_usd + self.cache_write_usd + self.output_usd + self.other_usd

    def shares(self) -> dict[str, float]:
        """Each part's share of the total (0.0 each when nothing was spent)."""
        total = self.total_usd
        parts = {
            "input": self.input_usd,
            "cache_read": self.cache_read_usd,
            "cache_write": self.cache_write_usd,
            "output": self.output_usd,
            "other": self.other_usd,
        }
        return {k: float(v / total) if total else 0.0 for k, v in parts.items()}


@dataclass(frozen=True, slots=True)
class _Counts:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    llm_calls: int = 0
    retries: int = 0
    unpriced_calls: int = 0
    estimated_calls: int = 0
    duplicate_calls: int = 0
    """Calls whose request was identical to an earlier successful call of the same task."""
    duplicate_cost_usd: Decimal = Decimal(0)
    retry_waste_tokens: int = 0
    """Input plus output tokens of calls that ended in an error: billed, no answer."""
    retry_waste_cost_usd: Decimal = Decimal(0)
    cost_breakdown: CostBreakdown = field(default_factory=CostBreakdown)


@dataclass(frozen=True, slots=True)
class ModelTotals(_Counts):
    """A task's totals for one model (the same fields as ``Totals``, plus provider and model)."""

    provider: str = ""
    model: str = ""


@dataclass(frozen=True, slots=True)
class Totals(_Counts):
    """A task's rolled-up totals: its own calls and those of every nested task.

    ``input_tokens`` includes cache reads and writes; ``output_tokens`` includes reasoning.
    ``cost_usd`` is the exact sum over priced calls; ``unpriced_calls`` says how many calls it
    leaves out, and ``estimated_calls`` how many of its calls rest on estimated numbers.
    """

    by_model: Mapping[str, ModelTotals] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class CallEstimate:
    """What tokentrace expects an LLM call to use, worked out offline before it is sent.

    ``input_tokens`` is counted with the model's tokenizer family (an estimate: see
    docs/guards.md); ``output_tokens`` is the request's output cap (``max_tokens``,
    ``max_completion_tokens``, ``max_output_tokens``), 0 when it sets none. ``cost_usd`` prices
    both at the model's rates, ``None`` when the model has no price.
    """

    input_tokens: int
    output_tokens: int
    output_capped: bool
    cost_usd: Decimal | None


@dataclass(frozen=True, slots=True)
class BudgetBreach:
    """A call that would take a task past one of its budget's limits (or one that did), or a
    call that a ``Limit`` across replicas refuses.

    ``spent`` is what the task had used (including calls still in flight) before this call;
    ``projected`` adds this call's estimate. ``limit`` names the ``Budget`` (or ``Limit``) field.

    For a ``Limit``, ``limit_scope`` is that limit, ``scope_value`` the value of its ``per``
    dimension (``None`` for a limit without ``per``), ``spent`` what its window has used
    (calls in flight at their estimates), ``budget`` a ``Budget`` with the limit's maxima, and
    ``task`` the call's task (``None`` for a call outside every task). ``unavailable`` says why
    the limit's store could not be reached, when ``on_error="closed"`` refused the call for it.
    """

    task: Task | None
    totals: Totals
    limit: Literal["max_cost_usd", "max_tokens", "max_llm_calls"]
    limit_value: Decimal | int
    spent: Decimal | int
    projected: Decimal | int
    estimate: CallEstimate
    provider: str
    model: str
    budget: Budget
    request_kwargs: Mapping[str, Any]
    """The call's keyword arguments, read-only (so a callback can pick a cheaper ``model``)."""
    limit_scope: Limit | None = None
    scope_value: str | None = None
    window_start: int | None = None
    """The start of the limit's window the call was counted in, Unix seconds (UTC)."""
    unavailable: str | None = None

    def describe(self) -> str:
        what = {"max_cost_usd": "USD", "max_tokens": "tokens", "max_llm_calls": "calls"}[self.limit]
        scope = self.limit_scope
        if scope is not None:
            holder = _holder(scope, self.scope_value)
            if self.unavailable is not None:
                return (
                    f"{holder} a limit of {_maxima(scope)} per {scope.window} window, and "
                    f"its store cannot be reached ({self.unavailable}); on_error='closed' refuses the call"
                )
            return (
                f"{holder} a limit of {self.limit}={self.limit_value} per {scope.window} window: "
                f"{self.spent} {what} used in this window (calls in flight included), this "
                f"{self.provider} {self.model} call would bring it to {self.projected} (estimated before "
                "sending)"
            )
        assert self.task is not None  # a task's budget
        return (
            f"task {self.task.name!r} (id {self.task.id}) has a budget of {self.limit}={self.limit_value}: "
            f"{self.spent} {what} used so far, this {self.provider} {self.model} call would bring it to "
            f"{self.projected} (estimated before sending)"
        )


OnExceed = Union[Literal["raise", "warn"], Callable[[BudgetBreach], "Mapping[str, Any] | None"]]  # noqa: UP007  # a runtime alias on Python 3.10


def _limit_int(name: str, value: object, owner: str = "Budget") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{owner} {name} must be a non-negative int or None, got {value!r}")
    return value


def _limit_money(value: object, owner: str = "Budget") -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ConfigurationError(f"{owner} max_cost_usd must be a number of US dollars, got {value!r}")
    try:
        amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ConfigurationError(
            f"{owner} max_cost_usd must be a number of US dollars, got {value!r}"
        ) from None
    if not amount.is_finite() or amount < 0:
        raise ConfigurationError(f"{owner} max_cost_usd must be a finite, non-negative amount, got {value!r}")
    return amount


@dataclass(frozen=True, slots=True, init=False)
class Budget:
    """Limits on what one task run (with everything nested in it) may spend.

    Before each LLM call the call's input is estimated offline and its output taken at its cap;
    a call that would cross a limit is handled by ``on_exceed``: ``"raise"`` (the default)
    raises ``tokentrace.BudgetExceeded`` before the request is sent, ``"warn"`` logs and
    records an event and lets the call go, and a callable receives a ``BudgetBreach`` and may
    raise, return ``None`` (the call goes as is) or return keyword arguments that replace the
    call's own (for example ``{"model": "gpt-4o-mini"}``).
    """

    max_cost_usd: Decimal | None = None
    max_tokens: int | None = None
    """Input plus output tokens (the OTel totals: cache and reasoning tokens included)."""
    max_llm_calls: int | None = None
    on_exceed: OnExceed = "raise"

    def __init__(
        self,
        max_cost_usd: Decimal | float | int | str | None = None,
        max_tokens: int | None = None,
        max_llm_calls: int | None = None,
        on_exceed: OnExceed = "raise",
    ) -> None:
        cost = _limit_money(max_cost_usd)
        tokens = _limit_int("max_tokens", max_tokens)
        calls = _limit_int("max_llm_calls", max_llm_calls)
        if cost is None and tokens is None and calls is None:
            raise ConfigurationError("a Budget needs at least one of max_cost_usd, max_tokens, max_llm_calls")
        if on_exceed not in ("raise", "warn") and not callable(on_exceed):
            raise ConfigurationError(
                'Budget on_exceed must be "raise", "warn" or a callable taking a BudgetBreach, '
                f"got {on_exceed!r}"
            )
        object.__setattr__(self, "max_cost_usd", cost)
        object.__setattr__(self, "max_tokens", tokens)
        object.__setattr__(self, "max_llm_calls", calls)
        object.__setattr__(self, "on_exceed", on_exceed)


_DIMENSIONS = ("tenant", "user", "feature", "task")
_WINDOW = re.compile(r"([1-9][0-9]*)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _window_seconds(window: object) -> int:
    if not isinstance(window, str) or (match := _WINDOW.fullmatch(window.strip())) is None:
        raise ConfigurationError(
            f'Limit window must be a number and a unit s, m, h or d ("30m", "1h", "1d", "7d"), got {window!r}'
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _filter(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"Limit {name} must be a non-empty string or None, got {value!r}")
    return value


@dataclass(frozen=True, slots=True, init=False)
class Limit:
    """A limit on what calls may spend in each window, held across processes and replicas.

    ``configure(limits=[...])`` installs limits; the ledger's store (a file: the processes of
    one machine; PostgreSQL: a fleet) keeps one counter per limit, value of its ``per``
    dimension and window. Before each call that a limit applies to, the call's estimate is
    reserved on that counter, or the call is refused with ``tokentrace.BudgetExceeded`` before
    the request leaves; after the call its real tokens and cost are charged (docs/guards.md).

    - ``per``: ``"tenant"``, ``"user"``, ``"feature"`` or ``"task"`` (the task's name): each value
      of that dimension of the call's task has an allowance of its own; ``None``: one allowance
      for every call the limit applies to. A call whose task has no value for ``per`` is not
      limited by it.
    - ``feature``, ``tenant``, ``user``, ``task``: the limit applies only to calls whose task has
      these values (a call outside every task: only to a limit with neither ``per`` nor filters).
    - ``window``: ``"30m"``, ``"1h"``, ``"1d"``, ``"7d"``...: fixed windows aligned to the Unix
      epoch in UTC (``"1h"``: clock hours, ``"1d"``: UTC days); the allowance resets at once at
      each window's end.
    - ``on_error``: when the store cannot be reached, ``"open"`` (the default) lets the call go
      (counted, and warned of once), ``"closed"`` refuses it with ``BudgetExceeded``.
    """

    per: Literal["tenant", "user", "feature", "task"] | None
    max_cost_usd: Decimal | None
    max_tokens: int | None
    """Input plus output tokens (the OTel totals: cache and reasoning tokens included)."""
    max_llm_calls: int | None
    window: str
    on_error: Literal["open", "closed"]
    feature: str | None
    tenant: str | None
    user: str | None
    task: str | None

    def __init__(
        self,
        per: Literal["tenant", "user", "feature", "task"] | None = None,
        *,
        max_cost_usd: Decimal | float | int | str | None = None,
        max_tokens: int | None = None,
        max_llm_calls: int | None = None,
        window: str,
        on_error: Literal["open", "closed"] = "open",
        feature: str | None = None,
        tenant: str | None = None,
        user: str | None = None,
        task: str | None = None,
    ) -> None:
        if per is not None and per not in _DIMENSIONS:
            raise ConfigurationError(
                f'Limit per must be "tenant", "user", "feature", "task" or None, got {per!r}'
            )
        cost = _limit_money(max_cost_usd, "Limit")
        tokens = _limit_int("max_tokens", max_tokens, "Limit")
        calls = _limit_int("max_llm_calls", max_llm_calls, "Limit")
        if cost is None and tokens is None and calls is None:
            raise ConfigurationError("a Limit needs at least one of max_cost_usd, max_tokens, max_llm_calls")
        _window_seconds(window)
        if on_error not in ("open", "closed"):
            raise ConfigurationError(f'Limit on_error must be "open" or "closed", got {on_error!r}')
        object.__setattr__(self, "per", per)
        object.__setattr__(self, "max_cost_usd", cost)
        object.__setattr__(self, "max_tokens", tokens)
        object.__setattr__(self, "max_llm_calls", calls)
        object.__setattr__(self, "window", window.strip())
        object.__setattr__(self, "on_error", on_error)
        for name, value in (("feature", feature), ("tenant", tenant), ("user", user), ("task", task)):
            object.__setattr__(self, name, _filter(name, value))

    @property
    def window_seconds(self) -> int:
        """The window's length in seconds."""
        return _window_seconds(self.window)

    @property
    def filters(self) -> dict[str, str]:
        """The dimensions a call's task must have, with their values (only those set)."""
        pairs = (("feature", self.feature), ("tenant", self.tenant), ("user", self.user), ("task", self.task))
        return {name: value for name, value in pairs if value is not None}

    @property
    def key(self) -> str:
        """The limit's counters' name in the store: its ``per``, window and filters (not its
        maxima, so a raised limit keeps what its window has used): ``"per=tenant window=1h"``."""
        parts = [f"per={self.per or '*'}", f"window={self.window}"]
        parts += [f"{name}={value}" for name, value in sorted(self.filters.items())]
        return " ".join(parts)


def _maxima(limit: Limit) -> str:
    """A limit's maxima as ``max_cost_usd=2, max_llm_calls=10``."""
    pairs = (
        ("max_cost_usd", limit.max_cost_usd),
        ("max_tokens", limit.max_tokens),
        ("max_llm_calls", limit.max_llm_calls),
    )
    return ", ".join(f"{name}={value}" for name, value in pairs if value is not None)


def _holder(limit: Limit, value: str | None) -> str:
    """Who an allowance is for, and its verb: ``tenant 'acme' has``, ``all calls have``."""
    filters = ", ".join(f"{name}={v!r}" for name, v in limit.filters.items())
    if limit.per is not None:
        return f"{limit.per} {value!r}" + (f" ({filters})" if filters else "") + " has"
    return (f"calls with {filters}" if filters else "all calls") + " have"
