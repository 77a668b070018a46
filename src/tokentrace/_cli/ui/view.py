"""What the dashboard shows, taken from the functions the ``tokentrace`` command reports with.

Nothing here sums money: every amount is a ``_report.Group``, an ``_economics.Economics``, a
``_whatif.WhatIfGroup`` or a task tree's branch cost, exactly as ``tokentrace report``,
``outcomes``, ``tasks``, ``show`` and ``whatif`` compute them. A page's sections are computed
apart (the dashboard loads each on its own request), and what several of them show (the
total, the outcomes) is computed once per page through a ``Memo``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from tokentrace.exceptions import ConfigurationError
from tokentrace.ledger import _economics, _report, _whatif
from tokentrace.ledger._dialect import Reader

# The breakdowns the page shows, each a ``tokentrace report --by DIM``.
BREAKDOWNS = ("task", "feature", "user", "tenant", "model")
# What the cost over time is split by, and its buckets (report dimensions).
SPLITS = ("model", "feature", "task")
BUCKETS = ("day", "hour")
# The dimensions a page can filter on.
FILTERS = ("task", "feature", "user", "tenant", "model")
RUNS = 10  # the most expensive runs shown, each with its tree

T = TypeVar("T")


@dataclass(frozen=True)
class Query:
    """A page's filters and choices, as its URL gives them; ``at`` is the moment a span back
    from now (``since=7d``) is counted from, the same for every section of one page."""

    since: str | None = None
    until: str | None = None
    where: tuple[tuple[str, str], ...] = ()
    bucket: str = "day"
    split: str = "model"
    whatif: str | None = None
    at: int | None = None

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
        at = value("at")
        if at is not None and not (at.isascii() and at.isdigit() and len(at) <= 19):
            raise ConfigurationError(f"at {at!r}: a time in nanoseconds since 1970")
        return cls(
            value("since"), value("until"), where, bucket, split, value("whatif"), int(at) if at else None
        )

    def filters(self) -> _report.Filters:
        """The same filters as ``--since``, ``--until`` and ``--where`` give the command."""
        now = datetime.fromtimestamp(self.at / 1e9, timezone.utc) if self.at is not None else None
        return _report.Filters(
            since_ns=_report.parse_time(self.since, now=now) if self.since is not None else None,
            until_ns=_report.parse_time(self.until, now=now) if self.until is not None else None,
            where=self.where,
        )

    def params(self) -> dict[str, str]:
        """The query as URL parameters (only those set; ``at`` is the page's, not the URL's)."""
        out = {"since": self.since, "until": self.until, **dict(self.where)}
        if self.bucket != "day":
            out["bucket"] = self.bucket
        if self.split != "model":
            out["split"] = self.split
        out["whatif"] = self.whatif
        return {k: v for k, v in out.items() if v}


class Memo:
    """Results by key, the most recent ``size`` kept; a key asked for while it is being computed
    waits for that computation instead of starting another."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, Future[Any]] = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            future = self._items.get(key)
            owner = future is None
            if future is None:
                future = self._items[key] = Future()
                while len(self._items) > self._size:
                    self._items.popitem(last=False)
            else:
                self._items.move_to_end(key)
        if owner:
            try:
                future.set_result(compute())
            except BaseException as exc:  # those waiting get it too (an interrupt included)
                future.set_exception(exc)
                with self._lock:  # asked again, it is computed again
                    if self._items.get(key) is future:
                        del self._items[key]
                raise
        result: T = future.result()
        return result


class Parts:
    """The numbers of one page, each computed on first use through ``memo``, under a key made of
    ``stamp`` (the ledger's state) and the filters it depends on."""

    def __init__(self, conn: Reader, query: Query, *, memo: Memo | None = None, stamp: str = "") -> None:
        self.conn = conn
        self.query = query
        self.filters = query.filters()
        self._memo = memo or Memo()
        self._stamp = stamp
        # Task runs and outcomes are read from the tasks table, which has no model column.
        self.task_where = [dim for dim, _ in self.filters.where if dim not in _economics.DIMENSIONS]

    def _get(self, name: str, compute: Callable[[], T], *extra: Hashable) -> T:
        return self._memo.get((self._stamp, self.filters, name, *extra), compute)

    def total(self) -> _report.Group:
        """``report`` over every call the filters take."""
        return self._get("total", lambda: _report.report(self.conn, [], self.filters, percentiles=False)[1])

    def breakdown(self, dim: str) -> list[_report.Group]:
        """``report --by DIM``'s rows, with what a breakdown shows: calls, cost, runs, cost per
        run, cached share and whether every call is unpriced."""
        sums = ("input_tokens", "cache_read_tokens", "unpriced_calls")
        return self._get("by", lambda: _report.groups(self.conn, [dim], self.filters, sums=sums), dim)

    def series(self) -> list[_report.Group]:
        """``report --by BUCKET,SPLIT``'s calls and cost: each bucket's cost per split value."""
        by = [self.query.bucket, self.query.split]
        return self._get(
            "series", lambda: _report.groups(self.conn, by, self.filters, runs=False, sums=()), *by
        )

    def runs(self) -> tuple[list[dict[str, Any]], dict[str, _report.Node]]:
        """The costliest task runs, each with its tree (none under a filter runs do not have)."""
        if self.task_where:
            return [], {}
        return self._get("runs", self._runs)

    def _runs(self) -> tuple[list[dict[str, Any]], dict[str, _report.Node]]:
        # The tasks table files a run under its task's name: a task filter shows its nested runs.
        runs = _report.task_runs(
            self.conn,
            self.filters,
            name=None,
            nested="task" in dict(self.filters.where),
            limit=RUNS,
            columns=_economics.DIMENSIONS,
            costliest=True,
        )
        return runs, {run["task_id"]: _report.task_tree(self.conn, run["task_id"]) for run in runs}

    def outcomes(self) -> tuple[list[_economics.Economics], _economics.Economics] | None:
        """``outcomes --by task`` (none under a filter runs do not have)."""
        if self.task_where:
            return None
        return self._get("outcomes", lambda: _economics.outcomes(self.conn, ["task"], self.filters))

    def whatif(self) -> tuple[list[_whatif.WhatIfGroup], _whatif.WhatIfGroup] | None:
        """``whatif --model WHATIF --by model``, when the page asks for one."""
        model = self.query.whatif
        if not model:
            return None
        return self._get(
            "whatif",
            lambda: _whatif.whatif(self.conn, ["model"], self.filters, model=model, provider=None),
            model,
        )

    def values(self, dim: str) -> list[str]:
        """The values ``dim`` takes under the filters, for a filter's choices."""
        return self._get("values", lambda: _report.values(self.conn, dim, self.filters), dim)

    def notes(self) -> list[str]:
        if not self.task_where:
            return []
        dim = self.task_where[0]
        return [
            f"Runs and outcomes are per task run, which has no {dim}: remove the {dim} filter to see them."
        ]


def check(conn: Reader, query: Query) -> None:
    """Refuse what the command refuses, before a page is served: a time it cannot read, a
    what-if model with no price."""
    query.filters()
    if query.whatif:
        from tokentrace._cli.pricing import _check_target

        _check_target(conn, query.whatif, None)


def choices(parts: Parts) -> dict[str, list[str]]:
    """Each filter's values to pick from: those its dimension takes under the page's filters
    (``_report.values``; one index read for feature, user and tenant), and the one chosen."""
    out: dict[str, list[str]] = {}
    chosen = dict(parts.query.where)
    for dim in FILTERS:
        values = parts.values(dim)
        if dim in chosen and chosen[dim] not in values:
            values = [chosen[dim], *values]
        out[dim] = values
    return out
