"""Opening a ledger to read it only, for the ``tokentrace`` command's reports (a PostgreSQL
ledger is opened by ``_postgres.open_read``; this module opens a file).

Reading never changes the file: nothing is created, migrated or switched to WAL, and no ``-wal``
or ``-shm`` file is left beside it that was not there. It works where the ledger may not be
written (a read-only file, folder or mount). An older ledger is read through temporary views
that give it the current columns, with the values its migrations would give its rows.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from tokentrace.exceptions import ConfigurationError
from tokentrace.ledger import _postgres
from tokentrace.ledger._dialect import Reader
from tokentrace.ledger._postgres import is_url
from tokentrace.ledger._schema import ADDED_DEFAULTS, CALL_COLUMNS, SCHEMA_VERSION, TASK_COLUMNS
from tokentrace.ledger._writer import _version

_HEADER = b"SQLite format 3\x00"


# What to do about a ledger SQLite cannot read, by SQLite's error name (its primary code).
_REMEDIES = {
    "SQLITE_CORRUPT": "the file is damaged: restore it from a backup, or rescue its rows with the "
    "sqlite3 shell's .recover",
    "SQLITE_NOTADB": "it is not a SQLite database: check --ledger",
    "SQLITE_ERROR": "it lacks tables or columns of a tokentrace ledger (another program's file, or "
    "changed by hand): check --ledger",
    "SQLITE_BUSY": "another program holds it locked: try again when it is done",
    "SQLITE_LOCKED": "another program holds it locked: try again when it is done",
}


def remedy(exc: sqlite3.DatabaseError) -> str:
    """What to do about a ledger SQLite could not open or read, from SQLite's error name."""
    name = (getattr(exc, "sqlite_errorname", None) or "").split("_")[:2]
    return _REMEDIES.get("_".join(name), "check the file, its folder and the disk")


def open_read_only(path: str | os.PathLike[str]) -> Reader:
    """Open an existing ledger, a file or a PostgreSQL URL, to read it. Raises
    ``ConfigurationError`` when it cannot."""
    if is_url(path):
        return _postgres.open_read(str(path))
    file = Path(path)
    if not file.exists():
        raise ConfigurationError(f"no ledger at {file}: run an instrumented program first, or pass --ledger")
    if not file.is_file():
        raise ConfigurationError(f"{file} is not a file: pass --ledger with the path of a ledger")
    try:
        conn = _connect(file)
        try:
            _check(conn, file)
        except BaseException:
            conn.close()
            raise
    except sqlite3.DatabaseError as exc:
        # SQLite's own errors get what to do; tokentrace's (a bad schema_version) say it already.
        hint = f"; {remedy(exc)}" if getattr(exc, "sqlite_errorname", None) else ""
        raise ConfigurationError(f"cannot open ledger {file}: {exc}{hint}") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read ledger {file}: {exc.strerror}") from None
    return conn


def _connect(file: Path) -> sqlite3.Connection:
    base = file.resolve().as_uri()
    if _is_wal(file) and not Path(f"{file}-wal").exists():
        # No process has the ledger open (the last one to close it checkpoints its WAL and
        # removes the -wal file), so the file holds everything. Read-only mode would create a
        # -wal and a -shm file, and leave them; immutable mode creates nothing.
        return _sqlite(f"{base}?immutable=1")
    try:
        conn = _sqlite(f"{base}?mode=ro")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens the WAL's index now
    except sqlite3.OperationalError as exc:
        if not _cannot_open(exc):
            raise
        # A -wal file without its -shm in a folder or mount SQLite may not write: the -shm, which
        # reading a WAL needs, cannot be created. The file is read as it is.
        return _sqlite(f"{base}?immutable=1")
    return conn


def _cannot_open(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite could not open (or would have had to write) a file to read the database."""
    name = getattr(exc, "sqlite_errorname", "")  # Python 3.11+
    return name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY")) or any(
        words in str(exc) for words in ("unable to open", "readonly")
    )


def _sqlite(uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA temp_store = MEMORY")  # the views an older ledger needs stay in memory
    return conn


def _is_wal(file: Path) -> bool:
    """Whether the file is a SQLite database in WAL mode (its header's format bytes are 2)."""
    with file.open("rb") as handle:
        header = handle.read(20)
    return header.startswith(_HEADER) and header[18:20] == b"\x02\x02"


def _check(conn: sqlite3.Connection, file: Path) -> None:
    version = _version(conn)
    if version == 0:
        if file.stat().st_size == 0:
            raise ConfigurationError(f"{file} is empty, not a ledger: check --ledger")
        raise ConfigurationError(
            f"{file} is not a tokentrace ledger (it has no schema version): check --ledger"
        )
    if version > SCHEMA_VERSION:
        raise ConfigurationError(
            f"ledger {file} has schema version {version}, newer than this tokentrace reads "
            f"({SCHEMA_VERSION}): upgrade tokentrace"
        )
    if version < SCHEMA_VERSION:
        _with_current_columns(conn)


def _with_current_columns(conn: sqlite3.Connection) -> None:
    """Give an older ledger's tables the current columns, through temporary views of the same
    names (they hide the file's tables from unqualified queries); the file is left as it is."""
    for table, columns in (("calls", CALL_COLUMNS), ("tasks", TASK_COLUMNS)):
        present = {row[1] for row in conn.execute(f"PRAGMA main.table_info({table})")}
        defaults = ADDED_DEFAULTS[table]
        missing = [c for c in columns if c not in present]
        if not present or any(c not in defaults for c in missing):
            raise sqlite3.DatabaseError(f"its {table} table lacks columns of every tokentrace ledger")
        if missing:
            select = ", ".join(c if c in present else f"{defaults[c]} AS {c}" for c in columns)
            conn.execute(f"CREATE TEMP VIEW {table} AS SELECT {select} FROM main.{table}")
