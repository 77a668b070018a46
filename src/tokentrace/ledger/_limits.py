"""The counters of limits across replicas, in the ledger's store: a SQLite file (the processes of
one machine) or PostgreSQL (a fleet). The rules (which calls a limit applies to, its windows)
are ``_accounting/limits``'s; this module only reads and writes ``limit_usage`` rows.

One row per limit, value of its dimension and window (the schema's migration 5). A reservation
is one transaction: the rows it needs are created when missing, then locked in a fixed order
(sorted by limit, value and window, so replicas locking the same rows never deadlock), checked,
and updated only when every one has room for the call: exact under any concurrency, one row's
update per limit whatever the traffic. SQLite takes its database's write lock for it
(``BEGIN IMMEDIATE``); PostgreSQL locks the rows (``SELECT ... FOR UPDATE``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from tokentrace.exceptions import ConfigurationError
from tokentrace.ledger import _postgres
from tokentrace.ledger import _writer as _sqlite
from tokentrace.ledger._dialect import POSTGRES, SQLITE, Dialect
from tokentrace.ledger._target import shown

RETRY_AFTER = 5.0
"""Seconds after the store failed before it is tried again (meanwhile it counts as unreachable,
so that calls do not each wait for a server that does not answer)."""

T = TypeVar("T")

_CREATE = "INSERT INTO limit_usage (limit_key, value, window_start) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
_READ = (
    "SELECT calls, tokens, cost_pico, reserved_tokens, reserved_pico FROM limit_usage "
    "WHERE limit_key = ? AND value = ? AND window_start = ?"
)
_RESERVE = (
    "UPDATE limit_usage SET calls = calls + 1, reserved_tokens = reserved_tokens + ?, "
    "reserved_pico = reserved_pico + ? WHERE limit_key = ? AND value = ? AND window_start = ?"
)
_SETTLE = (
    "UPDATE limit_usage SET calls = calls - ?, tokens = tokens + ?, cost_pico = cost_pico + ?, "
    "reserved_tokens = reserved_tokens - ?, reserved_pico = reserved_pico - ? "
    "WHERE limit_key = ? AND value = ? AND window_start = ?"
)

Row = tuple[str, str, int]
"""A counter: (limit key, value, window start)."""

_inherited: list[Any] = []  # a parent's connections, never used or closed in a forked child


class Usage(NamedTuple):
    """One counter row: what its window has used, and the estimates of calls in flight."""

    calls: int
    tokens: int
    cost_pico: int
    reserved_tokens: int
    reserved_pico: int


class Ask(NamedTuple):
    """One limit's maxima on one counter (several limits may share a counter)."""

    row: Row
    max_calls: int | None
    max_tokens: int | None
    max_pico: int | None


class Refused(NamedTuple):
    """The ask (its index) that had no room, the maximum it would cross, and its row's usage."""

    ask: int
    limit: str
    usage: Usage


class Unreachable(Exception):
    """The store could not be reached or written; the message says why (a password masked)."""


class Counters:
    """The limit counters in one ledger, with this process's own connection to it (one at a
    time: calls of several threads take turns; a forked child opens its own)."""

    def __init__(self, target: Path | str) -> None:
        self.target = target
        self._conn: Any = None
        self._lock = threading.Lock()
        self._next_try = 0.0
        self.error: str | None = None
        """Why the store last failed (``None`` once it answers)."""
        if hasattr(os, "register_at_fork"):
            reopen = weakref.WeakMethod(self._after_fork)
            os.register_at_fork(after_in_child=lambda: (method := reopen()) and method())

    def _after_fork(self) -> None:
        if self._conn is not None:
            _inherited.append(self._conn)
            self._conn = None
        self._lock = threading.Lock()
        self._next_try = 0.0

    def reserve(self, asks: Sequence[Ask], tokens: int, pico: int | None) -> Refused | None:
        """Count one call and reserve ``tokens`` and ``pico`` (``None``: unpriced, checked against
        no cost limit) on every ask's row, or change nothing and say which ask had no room."""
        return self._transaction(lambda run, dialect: _reserve(run, dialect, asks, tokens, pico))

    def settle(self, rows: Sequence[Row], tokens: int, pico: int, used: tuple[int, int] | None) -> None:
        """Release a call's reservation (``tokens``, ``pico``) on its rows, and charge what it used
        (``used``: tokens and picodollars), or give its call back when it was never sent (``None``)."""
        calls_back, real_tokens, real_pico = (1, 0, 0) if used is None else (0, *used)

        def settle(run: Callable[[str, Sequence[Any]], Any], dialect: Dialect) -> None:
            for row in sorted(rows):
                run(_SETTLE, (calls_back, real_tokens, real_pico, tokens, pico, *row))

        self._transaction(settle)

    def usage(self, row: Row) -> Usage | None:
        """A counter's row as it is now (``None`` when it has none)."""

        def read(run: Callable[[str, Sequence[Any]], Any], dialect: Dialect) -> Usage | None:
            found = run(_READ, row).fetchone()
            return Usage(*found) if found is not None else None

        return self._transaction(read)

    def _transaction(self, body: Callable[[Callable[[str, Sequence[Any]], Any], Dialect], T]) -> T:
        with self._lock:
            if self._conn is None and time.monotonic() < self._next_try:
                raise Unreachable(self.error or f"the ledger {shown(self.target)} did not answer")
            errors = self._errors()
            try:
                if self._conn is None:
                    self._conn = self._open()
                result = self._run(body)
            except errors as exc:
                self._failed(exc)
                raise Unreachable(self.error) from None
            self.error = None
            return result

    def _errors(self) -> tuple[type[BaseException], ...]:
        if isinstance(self.target, Path):
            return (sqlite3.Error, ConfigurationError, OSError)
        try:
            return (_postgres._driver().Error, ConfigurationError, OSError)
        except ConfigurationError as exc:  # psycopg is not installed
            self.error = str(exc)
            raise Unreachable(self.error) from None

    def _open(self) -> Any:
        if isinstance(self.target, Path):
            file = _sqlite.connect(self.target)
            file.execute(f"PRAGMA busy_timeout = {int(_sqlite.LOCK_WAIT * 1000)}")
            return file
        conn = _postgres.connect(self.target)
        try:
            _postgres.migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _run(self, body: Callable[[Callable[[str, Sequence[Any]], Any], Dialect], T]) -> T:
        conn = self._conn
        if isinstance(conn, sqlite3.Connection):

            def transaction() -> T:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = body(conn.execute, SQLITE)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                return result

            return _sqlite._retry_busy(transaction)  # type: ignore[no-any-return]
        raw = conn.raw

        def run(sql: str, params: Sequence[Any]) -> Any:
            return raw.execute(POSTGRES.translate(sql), list(params))

        with raw.transaction():
            return body(run, POSTGRES)

    def _failed(self, exc: BaseException) -> None:
        reason = str(exc) if isinstance(exc, ConfigurationError) else " ".join(str(exc).split())
        reason = reason or type(exc).__name__
        self.error = f"cannot use the limits in the ledger {shown(self.target)}: {_postgres.masked(reason)}"
        self._next_try = time.monotonic() + RETRY_AFTER
        conn, self._conn = self._conn, None
        if conn is not None:
            # A broken connection may fail to close; it is dropped either way.
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()


def _reserve(
    run: Callable[[str, Sequence[Any]], Any],
    dialect: Dialect,
    asks: Sequence[Ask],
    tokens: int,
    pico: int | None,
) -> Refused | None:
    rows = sorted({ask.row for ask in asks})
    for row in rows:
        run(_CREATE, row)
    usage: dict[Row, Usage] = {}
    for row in rows:
        usage[row] = Usage(*run(_READ + dialect.for_update(), row).fetchone())
    for index, ask in enumerate(asks):
        u = usage[ask.row]
        if ask.max_calls is not None and u.calls + 1 > ask.max_calls:
            return Refused(index, "max_llm_calls", u)
        if ask.max_tokens is not None and u.tokens + u.reserved_tokens + tokens > ask.max_tokens:
            return Refused(index, "max_tokens", u)
        if (
            ask.max_pico is not None
            and pico is not None
            and u.cost_pico + u.reserved_pico + pico > ask.max_pico
        ):
            return Refused(index, "max_cost_usd", u)
    for row in rows:
        run(_RESERVE, (tokens, pico or 0, *row))
    return None
