"""What the dashboard shows, taken from the functions the ``tokentrace`` command reports with.

Nothing here sums money: every amount is a ``_report.Group``, an ``_economics.Economics``, a
``_whatif.WhatIfGroup`` or a task tree's branch cost, exactly as ``tokentrace report``,
``outcomes``, ``tasks``, ``show`` and ``whatif`` compute them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tokentrace.exceptions import ConfigurationError
from tokentrace.ledger import _economics, _report, _whatif

# The breakdowns the page shows, each a ``tokentrace report --by DIM``.
BREAKDOWNS = ("task", "feature", "user", "tenant", "model")
# What the cost over time is split by, and its buckets (report dimensions).
SPLITS = ("model", "feature", "task")
BUCKETS = ("day", "hour")
# The dimensions a page can filter on.
FILTERS = ("task", "feature", "user", "tenant", "model")
RUNS = 10  # the most expensive runs shown, each with its tree


@dataclass(frozen=True)
class Query:
    """A page's filters and choices, as its URL gives them."""

    since: str | None = None
    until: str | None = None
    where: tuple[tuple[str, str], ...] = ()
    bucket: str = "day"
    split: str = "model"
    whatif: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Query:
        def value(name: str) -> str | None:
            text = (params.get(name) or "").strip()
            return text or None

        where = tuple((dim, text) for dim in FILTERS if (text := value(dim)) is not None)
        bucket = value("bucket") or "day"
        split = value("split") or "model"
        if bucket not in BUCKETS:
            raise ConfigurationError(f"bucket {bucket!r}: use one of {', '.join(BUCKETS)}")
        if split not in SPLITS:
            raise ConfigurationError(f"split {split!r}: use one of {', '.join(SPLITS)}")
        return cls(value("since"), value("until"), where, bucket, split, value("whatif"))

    def filters(self) -> _report.Filters:
        """The same filters as ``--since``, ``--until`` and ``--where`` give the command."""
        return _report.Filters(
            since_ns=_report.parse_time(self.since) if self.since is not None else None,
            until_ns=_report.parse_time(self.until) if self.until is not None else None,
            where=self.where,
        )

    def params(self) -> dict[str, str]:
        """The query as URL parameters (only those set)."""
        out = {"since": self.since, "until": self.until, **dict(self.where)}
        if self.bucket != "day":
            out["bucket"] = self.bucket
        if self.split != "model":
            out["split"] = self.split
        out["whatif"] = self.whatif
        return {k: v for k, v in out.items() if v}


@dataclass
class View:
    """Everything one page shows."""

    query: Query
    total: _report.Group
    breakdowns: dict[str, list[_report.Group]]
    series: list[_report.Group]
    """``report --by BUCKET,SPLIT``: each bucket's cost per split value."""
    runs: list[dict[str, Any]]
    trees: dict[str, _report.Node]
    outcomes: list[_economics.Economics]
    outcomes_total: _economics.Economics | None
    whatif: tuple[list[_whatif.WhatIfGroup], _whatif.WhatIfGroup] | None
    notes: list[str] = field(default_factory=list)


def build(conn: sqlite3.Connection, query: Query) -> View:
    filters = query.filters()
    breakdowns: dict[str, list[_report.Group]] = {}
    total = _report.Group(key={})
    for dim in BREAKDOWNS:
        breakdowns[dim], total = _report.report(conn, [dim], filters)
    series, _ = _report.report(conn, [query.bucket, query.split], filters)
    notes: list[str] = []
    # Task runs and outcomes are read from the tasks table, which has no model column.
    task_where = [dim for dim, _ in filters.where if dim not in _economics.DIMENSIONS]
    runs: list[dict[str, Any]] = []
    trees: dict[str, _report.Node] = {}
    outcomes: list[_economics.Economics] = []
    outcomes_total: _economics.Economics | None = None
    if task_where:
        notes.append(
            f"Runs and outcomes are per task run, which has no {task_where[0]}: "
            f"remove the {task_where[0]} filter to see them."
        )
    else:
        # The tasks table files a run under its task's name: a task filter shows its nested runs.
        runs = _report.task_runs(
            conn,
            filters,
            name=None,
            nested="task" in dict(filters.where),
            limit=RUNS,
            columns=_economics.DIMENSIONS,
            costliest=True,
        )
        trees = {run["task_id"]: _report.task_tree(conn, run["task_id"]) for run in runs}
        outcomes, outcomes_total = _economics.outcomes(conn, ["task"], filters)
    whatif = None
    if query.whatif:
        from tokentrace._cli.pricing import _check_target

        _check_target(conn, query.whatif, None)  # a model with no price: the command's one line
        whatif = _whatif.whatif(conn, ["model"], filters, model=query.whatif, provider=None)
    return View(query, total, breakdowns, series, runs, trees, outcomes, outcomes_total, whatif, notes)


def choices(view: View) -> dict[str, list[str]]:
    """Each filter's values to pick from: those of its breakdown, and the one chosen."""
    out: dict[str, list[str]] = {}
    chosen = dict(view.query.where)
    for dim in FILTERS:
        values = [str(g.key[dim]) for g in view.breakdowns.get(dim, []) if g.key[dim] is not None]
        if dim in chosen and chosen[dim] not in values:
            values.insert(0, chosen[dim])
        out[dim] = values
    return out
