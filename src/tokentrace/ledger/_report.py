"""What the ``tokentrace`` command computes from a ledger: reports and task trees (re-pricing is
``_whatif.py``).

Money is summed exactly as integer picodollars (``calls.cost_pico``) and returned as
``Decimal``; formatting is the command line's job (``_cli.py``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from tokentrace._pricing.money import PICODOLLAR
from tokentrace.exceptions import ConfigurationError
from tokentrace.ledger import _dialect
from tokentrace.ledger._dialect import Reader
from tokentrace.ledger._schema import CALL_COLUMNS, TASK_COLUMNS

_MAX_NS = 2**63 - 1  # nanosecond timestamps are SQLite integers (until the year 2262)
_SPAN_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

# Report dimensions: name -> column of ``calls``.
DIMENSIONS: dict[str, str] = {
    "task": "task_name",
    "root": "root_name",
    "feature": "feature",
    "user": "user_id",
    "tenant": "tenant",
    "model": "model",
    "provider": "provider",
    "environment": "environment",
    "service": "service",
    "operation": "operation",
    "day": "day",
    "hour": "strftime('%Y-%m-%dT%H:00', start_ns / 1000000000, 'unixepoch')",  # UTC, as day is
}
_UNPRICED = "('unpriced', 'invalid_usage')"


def money(picos: int | None) -> Decimal:
    """An exact USD amount from a sum of picodollars."""
    return (Decimal(picos or 0) * PICODOLLAR).normalize() if picos else Decimal(0)


def text(amount: Decimal) -> str:
    """An exact amount as plain decimal text, without trailing zeros or an exponent."""
    return format(amount.normalize(), "f") if amount else "0"


def parse_time(text: str, *, now: datetime | None = None) -> int:
    """``2026-11-01``, ``2026-11-01T12:00``, or a span back from now (``30m``, ``24h``, ``7d``), as ns."""
    now = now or datetime.now(timezone.utc)
    match = re.fullmatch(r"(\d+)\s*([mhdw])", text.strip())
    if match:
        try:
            moment = now - timedelta(**{_SPAN_UNITS[match.group(2)]: int(match.group(1))})
        except (OverflowError, ValueError):
            # Further back than a datetime reaches (year 1), or more digits than int() reads:
            # from the start of the ledger, as a date before 1970 is.
            return 0
        return max(0, int(moment.timestamp() * 1e9))
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigurationError(
            f"cannot read time {text!r}: use a date (2026-11-01), a date and time (2026-11-01T12:00) "
            "or a span back from now (30m, 24h, 7d, 2w)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0, min(int(moment.timestamp() * 1e9), _MAX_NS))


@dataclass(frozen=True)
class Filters:
    """Which calls a report covers."""

    since_ns: int | None = None
    until_ns: int | None = None
    where: tuple[tuple[str, str], ...] = ()

    def sql(self, prefix: str = "", columns: dict[str, str] | None = None) -> tuple[str, list[Any]]:
        """SQL conditions and parameters; ``columns`` maps dimensions to another table's columns."""
        columns = DIMENSIONS if columns is None else columns
        clauses: list[str] = []
        params: list[Any] = []
        if self.since_ns is not None:
            clauses.append(f"{prefix}start_ns >= ?")
            params.append(self.since_ns)
        if self.until_ns is not None:
            clauses.append(f"{prefix}start_ns < ?")
            params.append(self.until_ns)
        for dim, value in self.where:
            column = columns[dim]
            if value == "-":
                clauses.append(f"{prefix}{column} IS NULL")
            else:
                clauses.append(f"{prefix}{column} = ?")
                params.append(value)
        return (" AND ".join(clauses), params)


def parse_where(items: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``["feature=support", "model=gpt-4o"]`` -> pairs, with a clear error for a bad one."""
    pairs = []
    for item in items:
        dim, sep, value = item.partition("=")
        dim = dim.strip()
        if not sep or dim not in DIMENSIONS:
            raise ConfigurationError(
                f"--where {item!r}: use DIMENSION=VALUE with one of {', '.join(DIMENSIONS)} ('-' for none)"
            )
        pairs.append((dim, value))
    return tuple(pairs)


def check_dimensions(
    by: Sequence[str], dimensions: Mapping[str, str] = DIMENSIONS, subject: str = ""
) -> None:
    """Refuse a grouping by anything but ``dimensions``, naming them (``subject``: what is grouped)."""
    unknown = [d for d in by if d not in dimensions]
    if unknown:
        raise ConfigurationError(
            f"cannot group {subject}by {', '.join(unknown)}: use any of {', '.join(dimensions)}"
        )


@dataclass
class Group:
    """One row of a report."""

    key: dict[str, str | None]
    calls: int = 0
    cost_usd: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    retries: int = 0
    failed_calls: int = 0
    failed_cost_usd: Decimal = Decimal(0)
    unpriced_calls: int = 0
    estimated_calls: int = 0
    runs: int = 0
    per_run: dict[str, Decimal] = field(default_factory=dict)
    """mean, p50, p95, p99 of the group's cost per task run (root task), when it has runs."""

    @property
    def cached_share(self) -> float:
        return self.cache_read_tokens / self.input_tokens if self.input_tokens else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.key,
            "calls": self.calls,
            "cost_usd": text(self.cost_usd),
            "runs": self.runs,
            "cost_per_run_usd": {k: text(v) for k, v in self.per_run.items()},
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cached_share": round(self.cached_share, 4),
            "retries": self.retries,
            "failed_calls": self.failed_calls,
            "failed_cost_usd": text(self.failed_cost_usd),
            "unpriced_calls": self.unpriced_calls,
            "estimated_calls": self.estimated_calls,
        }


def _nearest_rank(sorted_values: Sequence[int], q: float) -> int:
    index = max(0, min(len(sorted_values) - 1, -(-int(q * len(sorted_values) * 1000) // 1000) - 1))
    return sorted_values[index]


# A group's sums: the ``Group`` field each fills, and its SQL (money in integer picodollars).
SUMS: dict[str, str] = {
    "calls": "COUNT(*)",
    "cost_usd": "SUM(cost_pico)",
    "input_tokens": "SUM(input_tokens)",
    "output_tokens": "SUM(output_tokens)",
    "cache_read_tokens": "SUM(cache_read_tokens)",
    "cache_write_tokens": "SUM(cache_write_tokens)",
    "reasoning_tokens": "SUM(reasoning_tokens)",
    "retries": "SUM(retries)",
    "failed_calls": "COUNT(error_type)",
    "failed_cost_usd": "SUM(CASE WHEN error_type IS NOT NULL THEN cost_pico END)",
    "unpriced_calls": f"COUNT(CASE WHEN cost_status IN {_UNPRICED} THEN 1 END)",
    "estimated_calls": "COUNT(CASE WHEN cost_status = 'estimated' THEN 1 END)",
}
_MONEY = {"cost_usd", "failed_cost_usd"}
# A group's task runs (root tasks with a call in the group) and their spend within the group.
_RUNS = ", COUNT(DISTINCT root_id), SUM(CASE WHEN root_id IS NOT NULL THEN COALESCE(cost_pico, 0) END)"


def groups(
    conn: Reader,
    by: Sequence[str],
    filters: Filters,
    *,
    runs: bool = True,
    sums: Collection[str] = tuple(SUMS),
) -> list[Group]:
    """Cost and tokens per group of ``by``, in order of cost, in one pass over the calls; with
    ``runs``, each group's task runs and mean cost per run (``report`` adds the percentiles).
    With ``sums``, only those of ``SUMS`` besides the calls and the cost, which a group always
    has (a view that shows a few reads the calls faster): the others are left at zero. With no
    ``by``, one group: every call."""
    check_dimensions(by)
    columns = [DIMENSIONS[d] for d in by]
    names = ["calls", "cost_usd", *(n for n in SUMS if n in sums and n not in ("calls", "cost_usd"))]
    where, params = filters.sql()
    select = "".join(f"{c}, " for c in columns) + ", ".join(SUMS[n] for n in names)
    where_sql = f"WHERE {where}" if where else ""
    # Under a time range alone, SQLite would walk a grouped column's index (feature, user_id,
    # tenant) and so read every call; grouping by the values (+column) lets it read the range.
    ranged = (filters.since_ns, filters.until_ns) != (None, None) and not filters.where
    unindexed = _dialect.of(conn).unindexed
    group_sql = f"GROUP BY {', '.join(unindexed(c) if ranged else c for c in columns)}" if columns else ""
    sql = f"SELECT {select}{_RUNS if runs else ''} FROM calls {where_sql} {group_sql}"
    found = []
    width = len(columns)
    for row in conn.execute(sql, params):
        group = Group(key=dict(zip(by, row[:width], strict=True)))
        for name, value in zip(names, row[width : width + len(names)], strict=True):
            setattr(group, name, money(value) if name in _MONEY else value or 0)
        if runs and row[-2]:
            group.runs = row[-2]
            group.per_run = {"mean": _mean(row[-1] or 0, row[-2])}
        found.append(group)
    return sorted(found, key=lambda g: (-g.cost_usd, -g.calls, [str(v) for v in g.key.values()]))


def values(conn: Reader, dim: str, filters: Filters) -> list[str]:
    """The values ``dim`` takes among the calls ``filters`` take, in order (none left out)."""
    check_dimensions([dim])
    column = DIMENSIONS[dim]
    where, params = filters.sql()
    chosen = f"({where}) AND " if where else ""
    sql = f"SELECT DISTINCT {column} FROM calls WHERE {chosen}{column} IS NOT NULL"
    return sorted(str(value) for (value,) in conn.execute(sql, params))


def report(
    conn: Reader, by: Sequence[str], filters: Filters, *, percentiles: bool = True
) -> tuple[list[Group], Group]:
    """Cost and tokens per group of ``by`` (in order of cost), and the total over all calls, each
    with its task runs and mean cost per run; with ``percentiles``, their p50, p95 and p99 too
    (a second pass, over each group's runs). Without them, a store that counts runs in one pass
    faster than in two (``_dialect``) does so."""
    if not percentiles and _dialect.of(conn).runs_in_one_pass:
        found = groups(conn, by, filters)
        total = replace(found[0] if not by else groups(conn, [], filters)[0], key={})
        return found, total
    found = groups(conn, by, filters, runs=False)
    total = Group(key={})
    for group in found:
        _accumulate(total, group)
    # Each root task run's spend within each group, then within all of them.
    check_dimensions(by)
    columns = [DIMENSIONS[d] for d in by]
    where, params = filters.sql()
    select = "".join(f"{c}, " for c in columns)
    run_sql = (
        f"SELECT {select}root_id, SUM(COALESCE(cost_pico, 0)) FROM calls "
        f"WHERE {f'{where} AND ' if where else ''}root_id IS NOT NULL GROUP BY {select}root_id"
    )
    per_group: dict[tuple[Any, ...], list[int]] = {}
    all_runs: dict[str, int] = {}
    width = len(columns)
    for row in conn.execute(run_sql, params):
        spend, root = row[-1], row[-2]
        per_group.setdefault(row[:width], []).append(spend)
        all_runs[root] = all_runs.get(root, 0) + spend
    for group in found:
        _runs(group, per_group.get(tuple(group.key.values()), []), percentiles)
    _runs(total, list(all_runs.values()), percentiles)
    return found, total


def _accumulate(total: Group, group: Group) -> None:
    for name in (
        "calls",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "retries",
        "failed_calls",
        "unpriced_calls",
        "estimated_calls",
    ):
        setattr(total, name, getattr(total, name) + getattr(group, name))
    total.cost_usd += group.cost_usd
    total.failed_cost_usd += group.failed_cost_usd


def _mean(picos: int, runs: int) -> Decimal:
    """The mean cost per run, to the picodollar (the ledger's unit)."""
    return (money(picos) / runs).quantize(PICODOLLAR).normalize()


def _runs(group: Group, spends: list[int], percentiles: bool = True) -> None:
    if not spends:
        return
    group.runs = len(spends)
    group.per_run = {"mean": _mean(sum(spends), len(spends))}
    if percentiles:
        spends.sort()
        group.per_run |= {
            "p50": money(_nearest_rank(spends, 0.50)),
            "p95": money(_nearest_rank(spends, 0.95)),
            "p99": money(_nearest_rank(spends, 0.99)),
        }


# --- task runs -------------------------------------------------------------------------------


def task_runs(
    conn: Reader,
    filters: Filters,
    *,
    name: str | None,
    nested: bool,
    limit: int,
    columns: dict[str, str] | None = None,
    costliest: bool = False,
) -> list[dict[str, Any]]:
    """Recent task runs (root tasks unless ``nested``), newest first (the costliest first with
    ``costliest``), with inclusive totals; ``columns`` maps ``filters``' dimensions to columns
    of ``tasks``."""
    clauses: list[str] = []
    params: list[Any] = []
    if not nested:
        clauses.append("parent_id IS NULL")
    if name is not None:
        clauses.append("name = ?")
        params.append(name)
    chosen, values = filters.sql(columns=columns or {})
    if chosen:
        clauses.append(chosen)
        params.extend(values)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    # cost_usd is exact decimal text: as a number it orders runs (the amounts shown stay exact).
    order = "CAST(cost_usd AS REAL) DESC, start_ns DESC" if costliest else "start_ns DESC"
    cursor = conn.execute(
        f"SELECT task_id, name, start_ns, end_ns, llm_calls, retries, cost_usd, input_tokens, output_tokens, "
        f"unpriced_calls, outcome, feature, user_id FROM tasks {where} ORDER BY {order} LIMIT ?",
        [*params, limit],
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


@dataclass
class Node:
    """A task in a run's tree, with its calls, nested tasks and the exact cost of the branch."""

    task: dict[str, Any]
    calls: list[dict[str, Any]] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)
    branch_cost_usd: Decimal = Decimal(0)
    branch_calls: int = 0


def resolve_task_id(conn: Reader, prefix: str) -> str:
    # An id's characters are matched as themselves: a '%' or '_' in it is no wildcard.
    pattern = re.sub(r"([\\%_])", r"\\\1", prefix) + "%"
    rows = conn.execute(
        "SELECT task_id FROM tasks WHERE task_id LIKE ? ESCAPE '\\' ORDER BY start_ns DESC LIMIT 2",
        (pattern,),
    ).fetchall()
    if not rows:
        raise ConfigurationError(f"no task run with id {prefix!r} in this ledger (see: tokentrace tasks)")
    if len(rows) > 1 and rows[0][0] != prefix:
        raise ConfigurationError(f"task id {prefix!r} is ambiguous: give more of it")
    return str(rows[0][0])


def task_tree(conn: Reader, task_id: str) -> Node:
    """The run of ``task_id``: its nested tasks and calls, each branch with its exact cost."""
    # Named columns, not *: a ledger missing one is refused by SQLite, not by a KeyError below.
    cursor = conn.execute(
        f"""WITH RECURSIVE sub(task_id) AS (
               SELECT task_id FROM tasks WHERE task_id = ?
               UNION ALL SELECT t.task_id FROM tasks t JOIN sub ON t.parent_id = sub.task_id)
           SELECT {", ".join(TASK_COLUMNS)} FROM tasks WHERE task_id IN (SELECT task_id FROM sub)
           ORDER BY start_ns""",
        (task_id,),
    )
    names = [d[0] for d in cursor.description]
    nodes = {row[0]: Node(dict(zip(names, row, strict=True))) for row in cursor}
    if task_id not in nodes:
        raise ConfigurationError(f"no task run with id {task_id!r} in this ledger")
    marks = ",".join("?" * len(nodes))
    cursor = conn.execute(
        f"SELECT {', '.join(CALL_COLUMNS)} FROM calls WHERE task_id IN ({marks}) ORDER BY start_ns",
        list(nodes),
    )
    call_names = [d[0] for d in cursor.description]
    for row in cursor:
        call = dict(zip(call_names, row, strict=True))
        nodes[call["task_id"]].calls.append(call)
    for node in nodes.values():
        parent = node.task["parent_id"]
        if node.task["task_id"] != task_id and parent in nodes:
            nodes[parent].children.append(node)
    root = nodes[task_id]
    _branch(root)
    return root


def _branch(node: Node) -> None:
    picos = sum(c["cost_pico"] or 0 for c in node.calls)
    node.branch_calls = len(node.calls)
    node.branch_cost_usd = money(picos)
    for child in node.children:
        _branch(child)
        node.branch_cost_usd += child.branch_cost_usd
        node.branch_calls += child.branch_calls


# --- what if ---------------------------------------------------------------------------------
