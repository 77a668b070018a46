"""Reading a ledger: the ``tokentrace`` command's reports change nothing, and work where the ledger
may not be written (a read-only file, folder or mount)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.proc import ROOT, run_python
from tests.test_cli import EXE, cli, cli_json
from tests.test_ledger import AGENT
from tokentrace.ledger import _writer as _ledger
from tokentrace.ledger._schema import CALL_COLUMNS, SCHEMA_V1

State = tuple[str, int, int, list[str]]

READING = [
    ("report", "--by", "root"),
    ("outcomes", "--by", "task"),
    ("tasks", "--nested"),
    ("show", "TASK"),
    ("whatif", "--model", "gpt-4o-mini"),
    ("export",),
    ("export", "--table", "tasks"),
]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ledger the demo agent wrote and closed (10 calls, 13 task runs)."""
    path = tmp_path_factory.mktemp("written") / "agent.db"
    run_python(AGENT, env={"TOKENTRACE_LEDGER": str(path)})
    return path


def _state(path: Path) -> State:
    """The file's SHA-256, size and modification time, and the files beside it."""
    data = path.read_bytes()
    return (
        hashlib.sha256(data).hexdigest(),
        len(data),
        path.stat().st_mtime_ns,
        sorted(os.listdir(path.parent)),
    )


def _copy(ledger: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ledger.db"
    shutil.copyfile(ledger, path)
    return path


def _immutable(path: Path) -> sqlite3.Connection:
    """A connection to a file that creates nothing beside it (for the tests' own reads)."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)


def _task_id(path: Path) -> str:
    with closing(_immutable(path)) as conn:
        return str(conn.execute("SELECT task_id FROM tasks ORDER BY start_ns LIMIT 1").fetchone()[0])


@contextmanager
def _live_writer(path: Path) -> Iterator[None]:
    """An open connection (a program writing the ledger) that has committed one more call to the
    WAL and none to the file."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("CREATE TEMP TABLE one AS SELECT * FROM main.calls ORDER BY start_ns LIMIT 1")
    conn.execute("UPDATE temp.one SET span_id = 'live'")
    conn.execute("INSERT INTO main.calls SELECT * FROM temp.one")
    try:
        yield
    finally:
        conn.close()


@pytest.mark.parametrize("command", READING, ids=lambda c: " ".join(c))
def test_reading_commands_leave_the_ledger_as_it_was(
    written: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Each reading command leaves the file's bytes and time as they were and no -wal or -shm file."""
    path = _copy(written, tmp_path)
    args = [_task_id(path) if part == "TASK" else part for part in command]
    before = _state(path)
    cli(*args, "--ledger", str(path))
    assert _state(path) == before
    assert before[3] == ["ledger.db"]


def test_reading_a_ledger_another_process_is_writing_sees_its_last_rows(
    written: Path, tmp_path: Path
) -> None:
    """A call a running program has committed to the WAL is reported, and the file is left alone."""
    path = _copy(written, tmp_path)
    with _live_writer(path):
        before = _state(path)
        rows = cli_json("report", "--ledger", str(path), "--by", "provider")
        assert _state(path) == before
    assert (rows[-1]["provider"], rows[-1]["calls"], rows[-1]["cost_usd"]) == ("TOTAL", 11, "0.016998")


def _newer(path: Path) -> None:
    with sqlite3.connect(path) as conn:  # left in rollback mode: a reader must not switch it to WAL
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    conn.close()


def _foreign(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: path.write_bytes(b""), "{path} is empty, not a ledger: check --ledger"),
        (_foreign, "{path} is not a tokentrace ledger (it has no schema version): check --ledger"),
        (
            _newer,
            "ledger {path} has schema version 99, newer than this tokentrace reads "
            f"({_ledger.SCHEMA_VERSION}): upgrade tokentrace",
        ),
    ],
    ids=["empty", "foreign", "newer"],
)
@pytest.mark.parametrize("command", [("report",), ("tasks",), ("export",)], ids=lambda c: c[0])
def test_a_file_that_is_not_a_ledger_this_version_reads_is_refused_unchanged(
    tmp_path: Path, make: Any, message: str, command: tuple[str, ...]
) -> None:
    """An empty file, another program's database or a newer ledger gets one line, exit code 2,
    and keeps its bytes, its time and its journal mode."""
    path = tmp_path / "file.db"
    make(path)
    before = _state(path)
    proc = cli(*command, "--ledger", str(path), ok=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        2,
        "",
        f"tokentrace: {message.format(path=path)}\n",
    )
    assert _state(path) == before


def _version_1(written: Path, path: Path) -> None:
    """A schema 1 ledger holding the demo agent's rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(SCHEMA_V1)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.execute(f"ATTACH '{written.resolve().as_uri()}?immutable=1' AS written")
    for table in ("calls", "tasks"):
        columns = ", ".join(row[1] for row in conn.execute(f"PRAGMA main.table_info({table})"))
        conn.execute(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM written.{table}")
    conn.execute("DETACH written")
    conn.close()


def test_an_older_ledger_is_read_as_it_is(written: Path, tmp_path: Path) -> None:
    """A schema 1 ledger is read without being migrated: reports as the current schema gives them,
    its rows with the values a migration would give them, and the file unchanged."""
    old = tmp_path / "old" / "ledger.db"
    old.parent.mkdir()
    _version_1(written, old)
    current = _copy(written, tmp_path / "current")
    before = _state(old)
    for command in (("report", "--by", "root,model"), ("whatif", "--model", "gpt-4o-mini")):
        assert cli_json(*command, "--ledger", str(old)) == cli_json(*command, "--ledger", str(current))
    exported = [json.loads(line) for line in cli("export", "--ledger", str(old)).stdout.splitlines()]
    assert len(exported) == 10
    assert list(exported[0]) == list(CALL_COLUMNS)
    assert {
        (c["duplicate"], c["web_search_requests"], c["file_search_requests"], c["modalities"])
        for c in exported
    } == {(0, 0, 0, None)}
    tasks = [
        json.loads(line)
        for line in cli("export", "--ledger", str(old), "--table", "tasks").stdout.splitlines()
    ]
    assert len(tasks) == 13
    assert {
        (t["units"], t["duplicate_cost_usd"], t["budget_exceeded"], t["budget_blocked_calls"]) for t in tasks
    } == {(None, "0", None, 0)}
    outcomes = cli_json("outcomes", "--ledger", str(old), "--by", "root")
    assert [(r["root"], r["runs"]) for r in outcomes] == [
        ("resolve_ticket", 3),
        ("autocomplete", 1),
        ("TOTAL", 4),
    ]
    assert _state(old) == before
    with closing(_immutable(old)) as conn:
        assert conn.execute("SELECT value FROM meta").fetchall() == [("1",)]


# --- where the ledger may not be written -------------------------------------------------------
# Tests run as root, whom file modes do not stop: there the command runs without the capabilities
# that override them. A read-only mount is made in a mount namespace of its own (root only).


def _unprivileged() -> list[str]:
    """The command prefix that makes file modes apply to the command."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def _command(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TOKENTRACE_"))}
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def _report_total(proc: subprocess.CompletedProcess[str]) -> tuple[int, str]:
    assert (proc.returncode, proc.stderr) == (0, "")
    total = json.loads(proc.stdout)[-1]
    return (total["calls"], total["cost_usd"])


@pytest.mark.skipif(
    sys.platform == "win32" or (os.geteuid() == 0 and shutil.which("setpriv") is None),
    reason="needs POSIX file modes, and setpriv to apply them to root",
)
@pytest.mark.parametrize(
    ("state", "total"),
    [("closed", (10, "0.014388")), ("being-written", (11, "0.016998")), ("crashed", (10, "0.014388"))],
    ids=["closed", "being-written", "crashed"],
)
def test_a_ledger_in_a_folder_the_reader_may_not_write_is_read(
    written: Path, tmp_path: Path, state: str, total: tuple[int, str]
) -> None:
    """A read-only ledger in a read-only folder is reported and left as it was: with the WAL of a
    program writing it, and as the file holds it when a crash left a -wal without its -shm."""
    path = _copy(written, tmp_path / "data")
    if state == "crashed":
        live = path
        with _live_writer(live):
            path = _copy(live, tmp_path / "crashed")
            shutil.copyfile(f"{live}-wal", f"{path}-wal")
    with _live_writer(path) if state == "being-written" else _nothing():
        files = list(path.parent.iterdir())
        try:
            for file in files:
                file.chmod(0o444)
            path.parent.chmod(0o555)
            before = _state(path)
            probe = _command(*_unprivileged(), "touch", str(path.parent / "probe"))
            assert probe.returncode != 0  # the folder is really read-only to the command
            proc = _command(*_unprivileged(), EXE, "report", "--ledger", str(path), "--format", "json")
            assert _report_total(proc) == total
            assert _state(path) == before
        finally:
            path.parent.chmod(0o755)
            for file in files:
                file.chmod(0o644)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _can_mount() -> bool:
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return _command("unshare", "--mount", "true").returncode == 0


@pytest.mark.skipif(not _can_mount(), reason="needs root and unshare to mount a folder read-only")
@pytest.mark.parametrize("live", [False, True], ids=["closed", "being-written"])
def test_a_ledger_on_a_read_only_mount_is_read(written: Path, tmp_path: Path, live: bool) -> None:
    """A ledger on a read-only mount is reported (with the WAL of a program writing it through a
    writable view of the same files) and left as it was."""
    path = _copy(written, tmp_path / "data")
    view = tmp_path / "view"
    view.mkdir()
    script = 'mount --bind -o ro "$1" "$2" && exec "$3" report --ledger "$2/ledger.db" --format json'
    with _live_writer(path) if live else _nothing():
        before = _state(path)
        proc = _command("unshare", "--mount", "sh", "-c", script, "sh", str(path.parent), str(view), EXE)
        assert _report_total(proc) == ((11, "0.016998") if live else (10, "0.014388"))
        assert _state(path) == before
    assert list(view.iterdir()) == []
