"""The ledger on PostgreSQL: one set of tables that every replica of an application writes and the
``tokentrace`` command reads, through psycopg 3 (``pip install 'tokentrace[postgres]'``).

A ledger is named by a ``postgresql://user@host:port/db`` URL (``postgres://`` too) wherever a
file path is accepted. The tables, their columns and the queries are the SQLite ledger's
(``_schema``, ``_report``); ``_dialect`` holds what differs. The schema is created and migrated
by the first writer, under an advisory lock, so replicas starting together agree. A password,
in the URL or in ``PGPASSWORD``, is never shown: every URL and every driver message that leaves
this module is ``masked``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import deque
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from tokentrace.exceptions import ConfigurationError
from tokentrace.ledger._dialect import POSTGRES
from tokentrace.ledger._schema import CALL_COLUMNS, MIGRATIONS, SCHEMA_V1, SCHEMA_VERSION, TASK_COLUMNS

CONNECT_TIMEOUT = 5
"""Seconds to wait for the server to answer a connection (libpq's ``connect_timeout``)."""

logger = logging.getLogger("tokentrace")

_SCHEMES = ("postgresql://", "postgres://")
_USERINFO = re.compile(r"(postgres(?:ql)?://[^:/@\s]*):([^@\s]*)@")
_PASSWORD_PARAM = re.compile(r"(password=)([^&\s]*)", re.I)
_MIGRATION_LOCK = 0x746F6B656E  # any fixed 64-bit key: the writers' advisory lock for migrating


def is_url(target: object) -> bool:
    """Whether a ledger target names a PostgreSQL database rather than a file."""
    return isinstance(target, str) and target.strip().lower().startswith(_SCHEMES)


def masked(text: str) -> str:
    """``text`` (a URL, or a message that may quote one) with every password replaced by ``***``."""
    secrets = {m.group(2) for m in _USERINFO.finditer(text)} | {
        m.group(2) for m in _PASSWORD_PARAM.finditer(text)
    }
    env = os.environ.get("PGPASSWORD")
    if env:
        secrets.add(env)
    text = _PASSWORD_PARAM.sub(r"\1***", _USERINFO.sub(r"\1:***@", text))
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and secret != "***":
            text = text.replace(secret, "***")
    return text


def _driver() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigurationError(
            "a PostgreSQL ledger needs psycopg, which is not installed: pip install 'tokentrace[postgres]'"
        ) from None
    return psycopg


def check_url(url: str) -> None:
    """Refuse a URL libpq cannot read, or psycopg missing, before anything runs (``configure``)."""
    psycopg = _driver()
    try:
        psycopg.conninfo.conninfo_to_dict(url.strip())
    except psycopg.Error as exc:
        raise ConfigurationError(f"cannot read ledger URL {masked(url)}: {masked(_reason(exc))}") from None


def _reason(exc: BaseException) -> str:
    """A driver error's message on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


class Connection:
    """A ledger connection to PostgreSQL that takes the queries' SQLite SQL (``_dialect``), and
    reads sums of integer columns (NUMERIC in PostgreSQL) back as ``int``."""

    dialect = POSTGRES

    def __init__(self, raw: Any, url: str) -> None:
        self.raw = raw
        self.url = url

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return _Rows(self.raw, POSTGRES.translate(sql), list(params))

    def close(self) -> None:
        self.raw.close()


class _Rows:
    """A query's rows: streamed from the server when only iterated (a report may read millions
    of calls), else fetched as a ``sqlite3.Cursor`` would be."""

    def __init__(self, raw: Any, sql: str, params: list[Any]) -> None:
        self._raw = raw
        self._sql = sql
        self._params = params
        self._cursor: Any = None

    def _run(self) -> Any:
        if self._cursor is None:
            self._cursor = self._raw.cursor()
            self._cursor.execute(self._sql, self._params)
        return self._cursor

    @property
    def description(self) -> Any:
        return self._run().description

    def fetchone(self) -> Any:
        return self._run().fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._run().fetchall())

    def __iter__(self) -> Iterator[Any]:
        if self._cursor is not None:
            return iter(self._cursor)
        return self._raw.cursor().stream(self._sql, self._params, size=2000)  # type: ignore[no-any-return]


def _loaders(raw: Any) -> None:
    """Read NUMERIC values with no fraction (the sums of integer columns) as ``int``."""
    from psycopg.types.numeric import NumericLoader

    class WholeNumbers(NumericLoader):
        def load(self, data: Any) -> Any:
            value: Decimal = super().load(data)
            return int(value) if value == value.to_integral_value() else value

    raw.adapters.register_loader("numeric", WholeNumbers)


def connect(url: str) -> Connection:
    """Connect to the ledger's database. Raises ``ConfigurationError`` (URL masked) when it cannot."""
    psycopg = _driver()
    try:
        raw = psycopg.connect(
            url.strip(), autocommit=True, connect_timeout=CONNECT_TIMEOUT, application_name="tokentrace"
        )
    except psycopg.Error as exc:
        raise ConfigurationError(f"cannot reach ledger {masked(url)}: {masked(_reason(exc))}") from None
    _loaders(raw)
    return Connection(raw, url)


def version(conn: Connection) -> int:
    """The ledger's schema version: 0 when the database holds no ledger."""
    # From the catalog's rows, not to_regclass: its cache is not refreshed by the advisory lock
    # migrate() waits for, so a replica that waited for another to create the tables would not see them.
    found = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
        "ON n.oid = c.relnamespace WHERE c.relname = 'meta' AND n.nspname = current_schema())"
    ).fetchone()
    if not found or not found[0]:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        return int(row[0]) if row else 0
    except ValueError:
        return -1


def migrate(conn: Connection) -> None:
    """Create the ledger's tables, or bring them to ``SCHEMA_VERSION``, in one transaction under
    an advisory lock (replicas starting together wait for the first)."""
    if version(conn) == SCHEMA_VERSION:
        return
    with conn.raw.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(?)", [_MIGRATION_LOCK]).fetchone()
        current = version(conn)
        if current > SCHEMA_VERSION or current < 0:
            raise ConfigurationError(_newer(conn.url, current))
        if current == 0:
            _run_script(conn, SCHEMA_V1)
            current = 1
        while current < SCHEMA_VERSION:
            _run_script(conn, MIGRATIONS[current])
            current += 1
        conn.raw.execute(POSTGRES.translate(POSTGRES.set_meta()), ["schema_version", str(current)])


def _newer(url: str, found: int) -> str:
    if found < 0:
        return f"ledger {masked(url)} has a meta table whose schema_version is not a number: check --ledger"
    return (
        f"ledger {masked(url)} has schema version {found}, newer than this tokentrace reads "
        f"({SCHEMA_VERSION}): upgrade tokentrace"
    )


def _run_script(conn: Connection, script: str) -> None:
    for statement in POSTGRES.ddl(script).split(";"):
        if statement.strip():
            conn.raw.execute(statement)


READ_WORK_MEM = "256MB"
"""The memory a report's query may use per sort or hash table before it spills to disk (the
server's ``work_mem``, for the command's own session): a report by tenant over 10,000,000
calls groups a million runs, 14 s in memory against 24 s spilled (benchmarks/fleet.py)."""


def open_read(url: str) -> Connection:
    """Open a PostgreSQL ledger to read it (nothing is created or migrated)."""
    conn = connect(url)
    try:
        conn.raw.execute(f"SET work_mem = '{READ_WORK_MEM}'")
        found = version(conn)
        if found == 0:
            raise ConfigurationError(
                f"no tokentrace ledger in {masked(url)}: run an instrumented program with this "
                "ledger first, or check --ledger"
            )
        if found > SCHEMA_VERSION or found < 0:
            raise ConfigurationError(_newer(url, found))
        if found < SCHEMA_VERSION and _lacks_columns(conn):
            raise ConfigurationError(
                f"ledger {masked(url)} has schema version {found}: start an application with this "
                f"tokentrace to migrate it to {SCHEMA_VERSION}"
            )
    except BaseException:
        conn.close()
        raise
    return conn


def _lacks_columns(conn: Connection) -> bool:
    """Whether the calls or tasks table lacks a column the reports read (an older ledger whose
    migrations added only other tables or indexes is read as it is)."""
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name IN ('calls', 'tasks')"
    ).fetchall()
    present = {(table, column) for table, column in rows}
    wanted = {("calls", c) for c in CALL_COLUMNS} | {("tasks", c) for c in TASK_COLUMNS}
    return not wanted <= present


# --- writing ----------------------------------------------------------------------------------

_ROOT_NAME = CALL_COLUMNS.index("root_name")
_TASK_ID = CALL_COLUMNS.index("task_id")
_CALL_VALUES = ["%s"] * len(CALL_COLUMNS)
_CALL_VALUES[_ROOT_NAME] = "COALESCE(%s, (SELECT root_name FROM tasks WHERE task_id = %s))"
_INSERT_CALL = (
    f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) VALUES ({', '.join(_CALL_VALUES)}) "
    "ON CONFLICT DO NOTHING"  # no target: a calls table partitioned by time keys (span_id, start_ns)
)
_INSERT_TASK = (
    f"INSERT INTO tasks ({', '.join(TASK_COLUMNS)}) VALUES ({', '.join(['%s'] * len(TASK_COLUMNS))}) "
    f"ON CONFLICT (task_id) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in TASK_COLUMNS[1:])}"
)
_SET_ROOT = "UPDATE calls SET root_id = %s, root_name = %s WHERE task_id = %s"


def write(conn: Connection, calls: Sequence[tuple[Any, ...]], tasks: Sequence[tuple[Any, ...]]) -> None:
    """Write rows in one transaction (psycopg pipelines the statements: one round trip a batch).
    Raises psycopg's error when it cannot; nothing is written then."""
    with conn.raw.transaction(), conn.raw.cursor() as cursor:
        if calls:
            cursor.executemany(
                _INSERT_CALL,
                [(*row[: _ROOT_NAME + 1], row[_TASK_ID], *row[_ROOT_NAME + 1 :]) for row in calls],
            )
        if tasks:
            cursor.executemany(_INSERT_TASK, tasks)
            cursor.executemany(_SET_ROOT, [(row[2], row[3], row[0]) for row in tasks])


MAX_HELD_ROWS = 50_000
"""The most rows a replica holds in memory while the database is unreachable (about 1 KB each);
past it the oldest are dropped, counted (``Writer.dropped``) and warned of once."""

RETRY_AFTER = 5.0
"""Seconds after a failed connection or write before the next one is tried."""

_inherited: list[Any] = []  # a parent's connections, never used or closed in a forked child


class Writer:
    """Writes a replica's rows to a PostgreSQL ledger, holding them while it cannot.

    ``write`` never raises for the database: a batch that cannot be written is held, within
    ``MAX_HELD_ROWS``, and sent with the next batch once the database answers (a call's row is
    written once whatever the retries: rows are keyed by span and task id)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.error: str | None = None
        """Why the last write failed (``None`` once one succeeds)."""
        self.dropped = 0
        """Rows dropped because the database was unreachable for longer than the buffer holds."""
        self._conn: Connection | None = None
        self._calls: deque[tuple[Any, ...]] = deque()
        self._tasks: deque[tuple[Any, ...]] = deque()
        self._next_try = 0.0
        self._warned_down = self._warned_drop = False

    @property
    def held(self) -> int:
        """Rows waiting for the database."""
        return len(self._calls) + len(self._tasks)

    def write(
        self, calls: Sequence[tuple[Any, ...]], tasks: Sequence[tuple[Any, ...]], *, now: bool = False
    ) -> bool:
        """Write these rows and any held ones; ``False`` when they are held instead (``now``: try
        even within ``RETRY_AFTER`` of a failure)."""
        self._calls.extend(calls)
        self._tasks.extend(tasks)
        self._bound()
        if not now and time.monotonic() < self._next_try:
            return False
        psycopg = _driver()
        try:
            if self._conn is None:
                self._conn = connect(self.url)
                migrate(self._conn)
            write(self._conn, list(self._calls), list(self._tasks))
        except (psycopg.Error, ConfigurationError) as exc:
            self._failed(exc)
            return False
        if self.error is not None:
            logger.warning("tokentrace: the ledger %s answers again; held rows written", masked(self.url))
        self._calls.clear()
        self._tasks.clear()
        self.error = None
        return True

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, ConfigurationError):  # it names the ledger and says why
            self.error = str(exc)
        else:
            self.error = f"cannot write to the ledger {masked(self.url)}: {masked(_reason(exc))}"
        self._next_try = time.monotonic() + RETRY_AFTER
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if not self._warned_down:
            self._warned_down = True
            logger.warning(
                "tokentrace: %s; the application goes on, and up to %d rows are held in memory "
                "until it answers (this is logged once)",
                self.error,
                MAX_HELD_ROWS,
            )

    def _bound(self) -> None:
        over = self.held - MAX_HELD_ROWS
        if over <= 0:
            return
        self.dropped += over
        for _ in range(over):
            (self._calls or self._tasks).popleft()
        if not self._warned_drop:
            self._warned_drop = True
            logger.warning(
                "tokentrace: the ledger %s has been unreachable for longer than %d rows: the oldest "
                "are dropped (counted in LedgerExporter.dropped; this is logged once)",
                masked(self.url),
                MAX_HELD_ROWS,
            )

    def after_fork(self) -> None:
        """In a forked child: the parent's connection and held rows stay the parent's."""
        if self._conn is not None:
            _inherited.append(self._conn)
            self._conn = None
        self._calls.clear()
        self._tasks.clear()

    def close(self) -> None:
        """Write what is held (one last try, unless the last one failed within ``RETRY_AFTER``:
        an exit waits for one connection timeout at most), then close; rows that still cannot
        be written are counted as dropped, with a warning."""
        if self.held:
            self.write((), ())
        if self.held:
            self.dropped += self.held
            logger.warning("tokentrace: %d ledger rows were not written: %s", self.held, self.error)
            self._calls.clear()
            self._tasks.clear()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
