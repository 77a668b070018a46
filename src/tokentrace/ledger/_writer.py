"""The embedded ledger: tokentrace's spans as rows of a local SQLite file.

``LedgerExporter`` is an OpenTelemetry span exporter; on a ``BatchSpanProcessor`` the
application never waits on disk. It keeps only tokentrace's own spans (one row per LLM call,
one per task run) with the raw token buckets, the price source and the exact cost, so history
can be re-priced. Several processes may write one ledger at once: WAL journaling, a busy
timeout and retries. The schema is versioned (``SCHEMA_VERSION``) and documented in
docs/ledger.md; ``connect`` migrates an older ledger and refuses a newer one. Reading one for
the ``tokentrace`` command is ``_read``'s job: it changes nothing.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tokentrace._foundation import semconv as sc
from tokentrace.exceptions import ConfigurationError
from tokentrace.ledger._postgres import Writer
from tokentrace.ledger._rows import call_row, task_row
from tokentrace.ledger._schema import CALL_COLUMNS, MIGRATIONS, SCHEMA_V1, SCHEMA_VERSION, TASK_COLUMNS
from tokentrace.ledger._target import shown, target_of

logger = logging.getLogger("tokentrace")

LOCK_WAIT = 5.0
"""The longest one write waits, in all, while another connection holds the ledger's write lock."""

# A call span carries its task's id and its root's id, and its root's name only when it continues
# a task of another process: the name comes from the task's row when that is already written (a
# stream read after its task ended), else from _SET_ROOT when the row lands.
_CALL_VALUES = [f"?{i}" for i in range(1, len(CALL_COLUMNS) + 1)]
_CALL_VALUES[CALL_COLUMNS.index("root_name")] = (
    f"COALESCE(?{CALL_COLUMNS.index('root_name') + 1}, "
    f"(SELECT root_name FROM tasks WHERE task_id = ?{CALL_COLUMNS.index('task_id') + 1}))"
)
_INSERT_CALL = f"INSERT OR IGNORE INTO calls ({', '.join(CALL_COLUMNS)}) VALUES ({', '.join(_CALL_VALUES)})"
_INSERT_TASK = (
    f"INSERT OR REPLACE INTO tasks ({', '.join(TASK_COLUMNS)}) VALUES ({', '.join('?' * len(TASK_COLUMNS))})"
)
# A task's calls are usually exported before the task itself (they end first): give them its root.
_SET_ROOT = "UPDATE calls SET root_id = ?, root_name = ? WHERE task_id = ?"


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open a ledger to write it, creating or migrating it as needed (``_read`` opens one to
    read it only, changing nothing). Raises ``ConfigurationError`` when it cannot."""
    file = Path(path)
    try:
        _create_private(file)
        conn = sqlite3.connect(file, timeout=30.0, isolation_level=None, check_same_thread=False)
        # Switching a new file to WAL needs a lock the busy timeout does not wait for: several
        # processes (pool workers) opening one new ledger at once would fail without the retries.
        _retry_busy(lambda: conn.execute("PRAGMA journal_mode=WAL"))
        conn.execute("PRAGMA synchronous=NORMAL")
        _retry_busy(lambda: _migrate(conn, file))
    except sqlite3.DatabaseError as exc:
        raise ConfigurationError(f"cannot open ledger {file}: {exc}") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot create ledger {file}: {exc.strerror}") from None
    return conn


def _create_private(file: Path) -> None:
    """Create the ledger's folder (0700) and file (0600) readable by their owner only, before
    SQLite opens it; SQLite gives its -wal and -shm files the database file's mode. An existing
    file or folder keeps the mode its owner gave it."""
    if not file.parent.exists():
        file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _version(conn: sqlite3.Connection) -> int:
    has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
    if not has_meta:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    try:
        version = int(row[0]) if row else 0
    except (TypeError, ValueError):
        version = -1
    if version < 0:  # connect() reports it as a ledger it cannot open
        raise sqlite3.DatabaseError(
            f"its meta table gives schema_version {row[0]!r}, not a version number: restore the file "
            "from a backup, or point --ledger at another one"
        )
    return version


def _migrate(conn: sqlite3.Connection, file: Path) -> None:
    version = _version(conn)
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise ConfigurationError(
            f"ledger {file} has schema version {version}, newer than this tokentrace reads "
            f"({SCHEMA_VERSION}): upgrade tokentrace"
        )
    _retry_busy(lambda: _apply_migrations(conn))


def _apply_migrations(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _version(conn)  # another process may have just done it
        if version == 0:
            _run_script(conn, SCHEMA_V1)
            version = 1
        while version < SCHEMA_VERSION:
            _run_script(conn, MIGRATIONS[version])
            version += 1
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(version),))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    # Statement by statement: executescript() would commit the enclosing transaction.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _retry_busy(fn: Any, within: float = LOCK_WAIT) -> Any:
    """Run ``fn``, again while SQLite says the database is locked or busy, for at most ``within``
    seconds in all (then its last error is raised)."""
    deadline = time.monotonic() + within
    delay = 0.05
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            left = deadline - time.monotonic()
            if ("locked" not in str(exc) and "busy" not in str(exc)) or left <= 0:
                raise
            time.sleep(min(delay, left))
            delay = min(delay * 2, 1.0)


def write(
    conn: sqlite3.Connection,
    calls: Sequence[tuple[Any, ...]],
    tasks: Sequence[tuple[Any, ...]],
    within: float = LOCK_WAIT,
) -> None:
    """Write rows in one transaction, waiting at most ``within`` seconds in all while another
    process holds the write lock (then ``sqlite3.OperationalError`` is raised, nothing written)."""
    deadline = time.monotonic() + within
    (previous,) = conn.execute("PRAGMA busy_timeout").fetchone()

    def transaction() -> None:
        # SQLite's own busy handler does the waiting (it takes the lock as soon as it is free),
        # for no longer than the time left.
        left_ms = max(int((deadline - time.monotonic()) * 1000), 0)
        conn.execute(f"PRAGMA busy_timeout = {left_ms}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            if calls:
                conn.executemany(_INSERT_CALL, calls)
            if tasks:
                conn.executemany(_INSERT_TASK, tasks)
                conn.executemany(_SET_ROOT, [(row[2], row[3], row[0]) for row in tasks])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    try:
        _retry_busy(transaction, within)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(previous)}")


class LedgerExporter(SpanExporter):
    """Writes tokentrace's call and task spans to a ledger (other spans are ignored).

    Use it on a ``BatchSpanProcessor``. ``path`` is a file, a ``postgresql://`` URL, or by
    default ``TOKENTRACE_LEDGER`` or the file in the user's data directory (``default_target``).

    - A file is created on first export. An export waits at most ``LOCK_WAIT`` seconds for
      another process's write lock; one that cannot write returns FAILURE and says why in
      ``error`` (tokentrace's own processor counts those spans as lost and warns once).
    - A PostgreSQL ledger is created or migrated on first export. While the database cannot be
      reached, rows are held in memory (at most ``_postgres.MAX_HELD_ROWS``, the oldest dropped
      past it and counted in ``dropped``), written with the next export that gets through, and
      the application is never stopped; ``error`` says why, and a warning is logged once.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.target = target_of(path)
        self.path = self.target if isinstance(self.target, Path) else None
        """The ledger's file (``None`` for a PostgreSQL ledger: see ``target``)."""
        self.error: str | None = None
        """Why the last export failed (``None`` after one that succeeded)."""
        self._conn: sqlite3.Connection | None = None
        self._writer = Writer(self.target) if isinstance(self.target, str) else None
        self._lock = threading.Lock()
        self._closed = False
        if hasattr(os, "register_at_fork"):
            reopen = weakref.WeakMethod(self._after_fork)
            os.register_at_fork(after_in_child=lambda: (method := reopen()) and method())

    @property
    def dropped(self) -> int:
        """Rows dropped because a PostgreSQL ledger was unreachable for too long (always 0 for a file)."""
        return self._writer.dropped if self._writer is not None else 0

    def _after_fork(self) -> None:
        # Connections must not cross a fork: the child opens its own on its first export (the
        # parent's is left to the parent, never closed or used here).
        self._conn = None
        self._lock = threading.Lock()
        if self._writer is not None:
            self._writer.after_fork()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        calls: list[tuple[Any, ...]] = []
        tasks: list[tuple[Any, ...]] = []
        for span in spans:
            scope = span.instrumentation_scope
            if scope is None or scope.name != sc.INSTRUMENTATION_SCOPE:
                continue
            attrs = span.attributes or {}
            # Task spans carry an operation name too (invoke_agent, invoke_workflow); a span of
            # an older tokentrace may have a task id and none.
            operation = attrs.get(sc.GEN_AI_OPERATION_NAME)
            if operation is not None and operation not in sc.TASK_OPERATIONS:
                calls.append(call_row(span))
            elif sc.TASK_ID in attrs:
                tasks.append(task_row(span))
        if not calls and not tasks:
            return SpanExportResult.SUCCESS
        with self._lock:
            if self._closed:
                self.error = f"the ledger exporter for {shown(self.target)} is shut down"
                return SpanExportResult.FAILURE
            if self._writer is not None:
                # Held rows are not lost: they go with a later export, or are counted as dropped.
                self._writer.write(calls, tasks)
                self.error = self._writer.error
                return SpanExportResult.SUCCESS
            assert self.path is not None
            try:
                if self._conn is None:
                    self._conn = connect(self.path)
                write(self._conn, calls, tasks)
            except (sqlite3.Error, ConfigurationError, OSError) as exc:
                self.error = f"cannot write to the ledger {self.path}: {exc}"
                logger.debug("tokentrace: %s", self.error)
                return SpanExportResult.FAILURE
            self.error = None
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            if self._writer is not None:
                self._writer.close()
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        with self._lock:
            if self._writer is not None and self._writer.held and not self._closed:
                written = self._writer.write((), (), now=True)
                self.error = self._writer.error
                return written
        return True


def iter_rows(
    conn: sqlite3.Connection, table: str, where: str = "", params: Iterable[Any] = ()
) -> Iterable[dict[str, Any]]:
    """Rows of ``calls`` or ``tasks`` as dicts (for the JSONL export)."""
    if table not in {"calls", "tasks"}:
        raise ValueError(table)
    cursor = conn.execute(f"SELECT * FROM {table} {where} ORDER BY start_ns", tuple(params))
    names = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))
