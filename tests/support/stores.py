"""The ledger's two stores for tests that must give the same answers over either: a SQLite file
and a database on the test PostgreSQL server, holding the same rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tokentrace.ledger import _postgres
from tokentrace.ledger._schema import CALL_COLUMNS, TASK_COLUMNS

STORES = ("sqlite", "postgresql")


def copy_to_postgres(ledger: Path, url: str) -> str:
    """Write every row of the SQLite ``ledger`` to the PostgreSQL ledger at ``url`` (created and
    migrated as a replica's writer does it), through the writer's own statements; return ``url``."""
    source = sqlite3.connect(ledger)
    try:
        calls = source.execute(f"SELECT {', '.join(CALL_COLUMNS)} FROM calls").fetchall()
        tasks = source.execute(f"SELECT {', '.join(TASK_COLUMNS)} FROM tasks").fetchall()
    finally:
        source.close()
    conn = _postgres.connect(url)
    try:
        _postgres.migrate(conn)
        _postgres.write(conn, calls, tasks)
    finally:
        conn.close()
    return url
