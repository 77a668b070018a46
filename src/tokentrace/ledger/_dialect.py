"""Where the ledger's two stores speak different SQL: SQLite (a local file) and PostgreSQL (a
fleet's shared ledger). Everything else, every report and the task trees included, is one query
text run on either.

The queries are written in SQLite's SQL. A PostgreSQL connection rewrites each one once
(``POSTGRES.translate``, cached): ``?`` parameters become psycopg's ``%s``, and the few SQLite
expressions in ``_REWRITES`` become PostgreSQL's. The schema's types are mapped the same way
(``POSTGRES.ddl``). What cannot be rewritten as text, a query asks of ``of(conn)``.
"""

from __future__ import annotations

import re
import sqlite3
from functools import lru_cache
from typing import Any, Protocol


class Dialect:
    """The SQL of one store."""

    name = "sqlite"

    runs_in_one_pass = True
    """Whether a report without percentiles counts each group's runs in the same pass as its
    sums (COUNT(DISTINCT root_id), and a second such pass for the total), rather than in the
    report's two passes (the sums, then each run's spend per group, which give the total too).
    SQLite is faster in one pass; PostgreSQL counts distinct values by sorting every row, and is
    faster in two (a report by tenant over 10,000,000 calls: 28 s against 14 s; by task, 33 s
    against 32 s; benchmarks/fleet.py)."""

    def translate(self, sql: str) -> str:
        """The query ``sql`` (SQLite's SQL, ``?`` parameters) in this store's SQL."""
        return sql

    def ddl(self, script: str) -> str:
        """Schema statements (SQLite's types) in this store's SQL."""
        return script

    def unindexed(self, column: str) -> str:
        """``column`` in a GROUP BY that must not make the planner walk the column's index (SQLite
        would walk ``calls_feature`` to group a time range by feature, and so read every call)."""
        return f"+{column}"

    def set_meta(self) -> str:
        """The statement that sets one ``meta`` key (parameters: key, value)."""
        return "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"

    def for_update(self) -> str:
        """What ends a SELECT of rows the transaction goes on to update, so that no other
        transaction changes them meanwhile (SQLite: nothing, its write lock is the database's)."""
        return ""


class _Postgres(Dialect):
    name = "postgresql"
    runs_in_one_pass = False

    def translate(self, sql: str) -> str:
        return _translate(sql)

    def ddl(self, script: str) -> str:
        # Nanosecond times and picodollar amounts need 64 bits; PostgreSQL's INTEGER has 32.
        return re.sub(r"\bINTEGER\b", "BIGINT", script)

    def unindexed(self, column: str) -> str:
        return column  # PostgreSQL's planner reads a time range by its own index

    def set_meta(self) -> str:
        return (
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        )

    def for_update(self) -> str:
        return " FOR UPDATE"


# SQLite expressions of the queries, and the same in PostgreSQL.
_REWRITES = {
    # An hour, in UTC, as the ``hour`` dimension shows it.
    "strftime('%Y-%m-%dT%H:00', start_ns / 1000000000, 'unixepoch')": (
        "to_char(to_timestamp(start_ns / 1000000000) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:00')"
    ),
    # Exact decimal text as a number, to order by (PostgreSQL's NUMERIC is exact).
    "AS REAL)": "AS NUMERIC)",
}


@lru_cache(maxsize=512)
def _translate(sql: str) -> str:
    for sqlite_sql, postgres_sql in _REWRITES.items():
        sql = sql.replace(sqlite_sql, postgres_sql)
    # psycopg's parameters are %s, so a literal % is written %%; no query has a ? in a literal.
    return sql.replace("%", "%%").replace("?", "%s")


SQLITE = Dialect()
POSTGRES = _Postgres()


def of(conn: Any) -> Dialect:
    """The dialect of a ledger connection (a ``sqlite3.Connection``, or the PostgreSQL store's)."""
    return SQLITE if isinstance(conn, sqlite3.Connection) else getattr(conn, "dialect", SQLITE)


class Reader(Protocol):
    """An open ledger, as the reports query it: a ``sqlite3.Connection``, or the PostgreSQL
    store's ``Connection`` (which takes the same SQL)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def close(self) -> None: ...
