"""Process life: fork after instrumenting, a normal exit, an exit while another process holds the
ledger's write lock, a SIGKILL, and the ledger file's mode."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support.proc import ROOT, run_python
from tokentrace.ledger import _read as _ledger_read
from tokentrace.ledger import _writer as _ledger

CACHED_CHAT = "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_prompt_caching_cache_read.yaml"
SETUP = f"""
import os, sys, time, tokentrace
from tests.support.clients import Repeat, openai_client, recorded, request_kwargs
(interaction,) = recorded({CACHED_CHAT!r})
tokentrace.instrument("openai")
client = openai_client(Repeat(interaction))
kwargs = request_kwargs(interaction, "openai")

def calls(n):
    for _ in range(n):
        client.chat.completions.create(**kwargs)
"""
# One recorded call costs $0.00261: 2,610,000,000 picodollars.
PICO = 2_610_000_000


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork exists on POSIX only")
def test_forked_workers_keep_recording(tmp_path: Path) -> None:
    """Workers forked after instrument() (a pre-fork server) record their own calls and tasks into the
    ledger, each with exact totals, and so does the parent."""
    path = tmp_path / "fork.db"
    out = run_python(
        SETUP
        + """
with tokentrace.task("warm-up"):   # the parent has opened the ledger before forking
    calls(1)
tokentrace._telemetry.providers.state.tracer_provider.force_flush()
children = []
for worker in range(3):
    pid = os.fork()
    if pid == 0:
        with tokentrace.task("request", attributes={"worker": worker}) as task:
            calls(worker + 2)
        # One write per line: the workers share the pipe, and print() may write a line in pieces.
        os.write(1, f"{worker} {task.totals.llm_calls} {task.totals.cost_usd}\\n".encode())
        sys.exit(0)          # a normal worker exit: atexit flushes the worker's spans
    children.append(pid)
assert all(os.waitpid(pid, 0)[1] == 0 for pid in children)
with tokentrace.task("after-fork"):
    calls(1)
""",
        env={"TOKENTRACE_LEDGER": str(path)},
    )
    workers = sorted(
        (int(w), int(n), Decimal(cost)) for w, n, cost in (line.split() for line in out.splitlines())
    )
    assert workers == [(0, 2, Decimal("0.00522")), (1, 3, Decimal("0.00783")), (2, 4, Decimal("0.01044"))]
    # 1 warm-up + (2 + 3 + 4) in the workers + 1 after the fork
    assert _rows(path, "SELECT COUNT(*), COUNT(DISTINCT span_id), SUM(cost_pico) FROM calls") == [
        (11, 11, 11 * PICO)
    ]
    assert _rows(path, "SELECT name, llm_calls FROM tasks ORDER BY llm_calls, name") == [
        ("after-fork", 1),
        ("warm-up", 1),
        ("request", 2),
        ("request", 3),
        ("request", 4),
    ]
    assert _rows(path, "PRAGMA integrity_check") == [("ok",)]


def test_a_normal_exit_flushes_everything(tmp_path: Path) -> None:
    """A program that exits right after its last call, long before the export schedule, loses nothing."""
    path = tmp_path / "exit.db"
    run_python(
        SETUP
        + """
for _ in range(50):
    with tokentrace.task("job"):
        calls(4)
""",
        env={"TOKENTRACE_LEDGER": str(path), "OTEL_BSP_SCHEDULE_DELAY": "60000"},
    )
    assert _rows(path, "SELECT COUNT(*), SUM(cost_pico) FROM calls") == [(200, 200 * PICO)]
    assert _rows(path, "SELECT COUNT(*), SUM(llm_calls) FROM tasks") == [(50, 200)]


# Another process writing the ledger (a long migration, a VACUUM): it holds the write lock from
# before the program starts until it reads a number of seconds on stdin, waits that long, commits.
HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.stdin.readline()))
conn.execute("COMMIT")
"""
# Spans are written when the application flushes and at exit only. The program prints when its
# last call returned and when its exit handlers were done (one registered first runs last).
LOCKED_APP = f"""
import atexit, time
atexit.register(lambda: print("handlers done", time.monotonic(), flush=True))
import tokentrace
from tests.support.clients import Repeat, openai_client, recorded, request_kwargs
(interaction,) = recorded({CACHED_CHAT!r})
tokentrace.instrument("openai")
client = openai_client(Repeat(interaction))
kwargs = request_kwargs(interaction, "openai")
with tokentrace.task("job"):
    for _ in range(100):
        client.chat.completions.create(**kwargs)
if FLUSH:
    start = time.monotonic()
    tokentrace._telemetry.providers.state.tracer_provider.force_flush()
    print("flushed", time.monotonic() - start, tokentrace.dropped_spans(), flush=True)
with tokentrace.task("job"):
    for _ in range(100):
        client.chat.completions.create(**kwargs)
print("calls made", time.monotonic(), flush=True)
"""


def _against_a_writer(path: Path, flush: bool, release_after: float | None) -> tuple[dict[str, str], str]:
    """Run LOCKED_APP while another process holds the ledger's write lock: released ``release_after``
    seconds after the program's last call, else after the program has ended. Returns the program's
    printed values by name, and its stderr."""
    _ledger.connect(path).close()  # the schema exists: what is measured is writing rows
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TOKENTRACE_"))} | {
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "TOKENTRACE_LEDGER": str(path),
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
    }
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline() == "locked\n"
        app = subprocess.Popen(
            [sys.executable, "-c", f"FLUSH = {flush}\n{LOCKED_APP}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert app.stdout is not None
        watchdog = threading.Timer(90, app.kill)  # a program stuck on the lock fails the test, soon
        watchdog.start()
        printed: dict[str, str] = {}
        for line in app.stdout:
            name, _, value = line.strip().partition(" ")
            if name == "calls" and release_after is not None:
                holder.stdin.write(f"{release_after}\n")
                holder.stdin.flush()
            printed[name] = value.removeprefix("made ").removeprefix("done ")
            if name == "handlers":
                break
        _, stderr = app.communicate(timeout=90)
        watchdog.cancel()
        if release_after is None:
            holder.stdin.write("0\n")
            holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
    finally:
        holder.kill()
    return printed, stderr


def test_exit_is_bounded_while_another_process_holds_the_ledger_lock(tmp_path: Path) -> None:
    """While another process holds the ledger's write lock throughout, a flush from the application's
    thread and the exit each wait at most LOCK_WAIT (5 s) for it, not minutes; the 202 spans that could
    not be written are counted (dropped_spans) and warned about once, and the summary at exit names them."""
    path = tmp_path / "locked.db"
    printed, stderr = _against_a_writer(path, flush=True, release_after=None)
    flush_seconds, dropped = printed["flushed"].split()
    assert float(flush_seconds) < _ledger.LOCK_WAIT + 2, printed
    assert int(dropped) == 101  # 100 calls and their task
    assert float(printed["handlers"]) - float(printed["calls"]) < _ledger.LOCK_WAIT + 2, printed
    assert stderr.count("tokentrace dropped") == 1, stderr
    assert "database is locked" in stderr, stderr
    assert "tokentrace lost 202 span(s)" in stderr, stderr
    assert _rows(path, "SELECT COUNT(*) FROM calls") == [(0,)]


def test_a_brief_lock_on_the_ledger_loses_nothing(tmp_path: Path) -> None:
    """A lock another process releases a second after the last call only delays the exit's write:
    every call and task is written, and nothing is reported lost."""
    path = tmp_path / "brief.db"
    printed, stderr = _against_a_writer(path, flush=False, release_after=1.0)
    assert float(printed["handlers"]) - float(printed["calls"]) > 0.5, printed  # the write met the lock
    assert "tokentrace" not in stderr, stderr
    assert _rows(path, "SELECT COUNT(*), SUM(cost_pico) FROM calls") == [(200, 200 * PICO)]
    assert _rows(path, "SELECT COUNT(*), SUM(llm_calls) FROM tasks") == [(2, 200)]


def test_sigkill_loses_at_most_the_unflushed_batch_and_corrupts_nothing(tmp_path: Path) -> None:
    """A process killed with SIGKILL while writing leaves a ledger that passes SQLite's integrity check,
    holds every call it had flushed, and is missing at most the spans still queued."""
    path = tmp_path / "killed.db"
    code = (
        SETUP
        + """
made = 0
while True:
    with tokentrace.task("job"):
        calls(5)
    made += 5
    if made == 100:
        tokentrace._telemetry.providers.state.tracer_provider.force_flush()
        print("flushed", made, flush=True)
    elif made > 100:
        print("made", made, flush=True)
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TOKENTRACE_"))} | {
        "PYTHONPATH": str(ROOT),
        "TOKENTRACE_LEDGER": str(path),
        "OTEL_BSP_SCHEDULE_DELAY": "20",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "16",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().split() == ["flushed", "100"]
    made = 100
    deadline = time.monotonic() + 60
    while made < 400 and time.monotonic() < deadline:  # writing goes on in batches meanwhile
        made = int(proc.stdout.readline().split()[1])
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert _rows(path, "PRAGMA integrity_check") == [("ok",)]
    ((written, cost),) = _rows(path, "SELECT COUNT(*), SUM(cost_pico) FROM calls")
    assert isinstance(written, int)
    assert cost == written * PICO
    # Everything flushed is there; what is missing is at most the queue (2,048 spans) and the batch
    # being written when the process died.
    assert written >= 100
    assert made - written <= 2048 + 16
    # A ledger left this way is read as usual (its WAL included).
    conn = _ledger_read.open_read_only(path)
    assert conn.execute("SELECT COUNT(*) FROM calls").fetchone() == (written,)
    conn.close()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_the_ledger_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """A new ledger's folder is created 0700 and its database, WAL and shared-memory files 0600."""
    folder = tmp_path / "data" / "tokentrace"
    path = folder / "ledger.db"
    run_python(
        SETUP
        + """
with tokentrace.task("job"):
    calls(1)
""",
        env={"TOKENTRACE_LEDGER": str(path)},
    )
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The WAL file survives a clean close only while another connection holds it open.
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("INSERT INTO meta VALUES ('probe', '1')")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    conn.close()
    assert modes == {"ledger.db": 0o600, "ledger.db-wal": 0o600, "ledger.db-shm": 0o600}


def test_an_existing_ledger_keeps_the_mode_its_owner_gave_it(tmp_path: Path) -> None:
    """tokentrace never changes the mode of a ledger file that already exists."""
    path = tmp_path / "shared.db"
    path.touch(mode=0o640)
    path.chmod(0o640)
    _ledger.connect(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
