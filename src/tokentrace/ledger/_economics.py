"""Unit economics from the ledger's task runs: cost per successful outcome, per unit of work,
and where the money was wasted or went (duplicates, failed calls, context vs output).

Grouped by task name, every run of that task counts (a nested task's cost is its own branch).
Grouped by anything else, only root runs count, so each run's money is counted once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from tokentrace._pricing.money import PICODOLLAR
from tokentrace.exceptions import ConfigurationError
from tokentrace.ledger._dialect import Reader
from tokentrace.ledger._report import Filters, check_dimensions, text

# Outcome dimensions: name -> column of ``tasks``.
DIMENSIONS: dict[str, str] = {
    "task": "name",
    "root": "root_name",
    "feature": "feature",
    "user": "user_id",
    "tenant": "tenant",
    "environment": "environment",
    "service": "service",
    "day": "day",
}
_PARTS = ("input", "cache_read", "cache_write", "output", "other")
_ZERO = Decimal(0)


@dataclass
class Economics:
    """One row of the outcomes report."""

    key: dict[str, str | None]
    runs: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    cost_usd: Decimal = Decimal(0)
    units: dict[str, Decimal] = field(default_factory=dict)
    duplicate_calls: int = 0
    duplicate_cost_usd: Decimal = Decimal(0)
    retry_waste_cost_usd: Decimal = Decimal(0)
    parts: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(_PARTS, Decimal(0)))
    budget_exceeded_runs: int = 0
    budget_blocked_calls: int = 0
    unpriced_runs: int = 0

    @property
    def successes(self) -> int:
        return self.outcomes.get("success", 0)

    @property
    def cost_per_success(self) -> Decimal | None:
        """All the money spent (failures included) over the runs that succeeded."""
        return self.cost_usd / self.successes if self.successes else None

    def cost_per_unit(self) -> dict[str, Decimal | None]:
        return {u: (self.cost_usd / n if n else None) for u, n in self.units.items()}

    def shares(self) -> dict[str, float]:
        total = sum(self.parts.values(), Decimal(0))
        return {k: round(float(v / total), 4) if total else 0.0 for k, v in self.parts.items()}

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.key,
            "runs": self.runs,
            "outcomes": dict(sorted(self.outcomes.items())),
            "success_rate": round(self.successes / self.runs, 4) if self.runs else None,
            "cost_usd": text(self.cost_usd),
            "cost_per_run_usd": text(_round(self.cost_usd / self.runs)) if self.runs else None,
            "cost_per_success_usd": _text_or_none(self.cost_per_success),
            "units": {u: _number(n) for u, n in sorted(self.units.items())},
            "cost_per_unit_usd": {u: _text_or_none(c) for u, c in sorted(self.cost_per_unit().items())},
            "duplicate_calls": self.duplicate_calls,
            "duplicate_cost_usd": text(self.duplicate_cost_usd),
            "retry_waste_cost_usd": text(self.retry_waste_cost_usd),
            "cost_share": self.shares(),
            "budget_exceeded_runs": self.budget_exceeded_runs,
            "budget_blocked_calls": self.budget_blocked_calls,
            "unpriced_runs": self.unpriced_runs,
        }


def _round(value: Decimal) -> Decimal:
    # A quotient can have endless digits: 12 decimal places is a picodollar, the ledger's unit.
    return value.quantize(PICODOLLAR).normalize()


def _text_or_none(value: Decimal | None) -> str | None:
    return None if value is None else text(_round(value))


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _where(by: Sequence[str], filters: Filters) -> tuple[str, list[Any]]:
    unknown = [dim for dim, _ in filters.where if dim not in DIMENSIONS]
    if unknown:
        raise ConfigurationError(f"--where {unknown[0]}=...: outcomes filter on {', '.join(DIMENSIONS)}")
    where, params = filters.sql(columns=DIMENSIONS)
    if "task" not in by:  # root runs only, so nested work is counted once
        where = f"parent_id IS NULL AND ({where})" if where else "parent_id IS NULL"
    return (f"WHERE {where}" if where else "", params)


def outcomes(conn: Reader, by: Sequence[str], filters: Filters) -> tuple[list[Economics], Economics]:
    """Runs, outcomes, cost per success and per unit, waste and cost shares per group (by cost),
    and the total over root runs."""
    check_dimensions(by, DIMENSIONS, subject="outcomes ")
    columns = [DIMENSIONS[d] for d in by]
    where, params = _where(by, filters)
    select = ", ".join(
        [
            *columns,
            "parent_id IS NULL",
            "outcome",
            "cost_usd",
            "units",
            "duplicate_calls",
            "duplicate_cost_usd",
            "retry_waste_cost_usd",
            *(f"cost_{p}_usd" for p in _PARTS),
            "budget_exceeded",
            "budget_blocked_calls",
            "unpriced_calls",
        ]
    )
    groups: dict[tuple[Any, ...], Economics] = {}
    total = Economics(key={})
    for row in conn.execute(f"SELECT {select} FROM tasks {where}", params):
        key = tuple(row[: len(columns)])
        group = groups.get(key)
        if group is None:
            group = groups[key] = Economics(key=dict(zip(by, key, strict=True)))
        is_root, values = row[len(columns)], row[len(columns) + 1 :]
        _add(group, values)
        if is_root:  # the total counts each run's money once, nested tasks included
            _add(total, values)
    ordered = sorted(groups.values(), key=lambda g: (-g.cost_usd, str(list(g.key.values()))))
    return ordered, total


def _usd(text: str) -> Decimal:
    """An amount of the tasks table (exact decimal text); most are "0", which needs no parsing."""
    return _ZERO if text == "0" else Decimal(text)


@lru_cache(maxsize=1024)
def _units(text: str) -> tuple[tuple[str, Decimal], ...]:
    """A run's units of work (JSON): runs of a task mostly repeat the same few."""
    return tuple((unit, Decimal(str(n))) for unit, n in json.loads(text).items())


def _add(g: Economics, row: Sequence[Any]) -> None:
    outcome, cost, units, dup_calls, dup_cost, waste, *rest = row
    parts, (exceeded, blocked, unpriced) = rest[: len(_PARTS)], rest[len(_PARTS) :]
    g.runs += 1
    name = outcome or "success"
    g.outcomes[name] = g.outcomes.get(name, 0) + 1
    g.cost_usd += _usd(cost)
    for unit, n in _units(units) if units else ():
        g.units[unit] = g.units.get(unit, _ZERO) + n
    g.duplicate_calls += dup_calls
    if dup_cost != "0":
        g.duplicate_cost_usd += Decimal(dup_cost)
    if waste != "0":
        g.retry_waste_cost_usd += Decimal(waste)
    for part, value in zip(_PARTS, parts, strict=True):
        if value != "0":
            g.parts[part] += Decimal(value)
    g.budget_exceeded_runs += 1 if exceeded else 0
    g.budget_blocked_calls += blocked
    g.unpriced_runs += 1 if unpriced else 0
