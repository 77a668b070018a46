"""A fleet's shared ledger on PostgreSQL: how fast replicas write it, and how long a report over
10,000,000 calls takes while they do.

    python benchmarks/fleet.py --url postgresql://user:password@127.0.0.1:5432/bench [--calls 10000000] [--json]

The database named by ``--url`` is the benchmark's own: its ledger tables are dropped first.

1. **Write throughput.** 1, 4 and 16 writer processes, started together, each write call rows
   (with their runs' task rows) through the ledger writer's own statement, in batches of 512
   calls (the span processor's largest export). Rows per second is every process's calls over
   the time from the start to the last process's end.
2. **A 10,000,000-call ledger** (the rows ``benchmarks/ledger_report.py`` makes, loaded with
   COPY to build it quickly; the ledger's own indexes in place, statistics gathered).
3. **Report time.** ``tokentrace report --ledger URL --by tenant`` (and by day, by task; as a
   table and as JSON), a fresh process each time as a user runs it, best of ``--repeat``.
4. **Writes during a report.** 4 writer processes write for as long as three reports by tenant
   take, one after another; their rows per second then, against the same 4 writers alone.

The figures go to ``benchmarks/results/fleet.json`` with ``--json``; ``benchmarks/report.py
--render`` puts them in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ledger_report import batches

BATCH = 512
REPORT = (sys.executable, "-m", "tokentrace", "report")


def _masked(url: str) -> str:
    from tokentrace.ledger._postgres import masked

    return masked(url)


def reset(url: str) -> None:
    """Drop the ledger's tables and create them again, empty, at the current schema."""
    from tokentrace.ledger import _postgres

    conn = _postgres.connect(url)
    try:
        conn.raw.execute("DROP TABLE IF EXISTS calls, tasks, meta, limit_usage")
        _postgres.migrate(conn)
    finally:
        conn.close()


def _writer(url: str, calls: int, first_run: int, start: Any, seconds: float | None, out: Any) -> None:
    """One replica: write ``calls`` call rows once, or again and again for ``seconds`` after the
    start; put how many it wrote on ``out``."""
    from tokentrace.ledger import _postgres

    conn = _postgres.connect(url)
    made = list(batches(calls, batch=BATCH, seed=first_run + 1, first_run=first_run))
    start.wait()
    until = time.time() + seconds if seconds is not None else None
    written = 0
    round_ = 0
    while True:
        for call_rows, task_rows in made:
            if round_:  # the same rows again would be ignored: give them new ids
                call_rows = [(f"{round_:04x}{r[0][4:]}", *r[1:]) for r in call_rows]
                task_rows = [(f"{round_:04x}{r[0][4:]}", *r[1:]) for r in task_rows]
            _postgres.write(conn, call_rows, task_rows)
            written += len(call_rows)
            if until is not None and time.time() >= until:
                break
        round_ += 1
        if until is None or time.time() >= until:
            break
    conn.close()
    out.put(written)


def write_throughput(
    url: str, writers: int, calls_each: int, *, seconds: float | None = None, started: Any = None
) -> dict[str, Any]:
    """``writers`` processes writing at once (each ``calls_each`` calls, or for ``seconds``):
    call rows per second. ``started`` (an event) is set when they start writing."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(writers + 1)
    out = ctx.Queue()
    run_base = 10_000_000 + int(time.time()) % 1000 * 1_000_000
    procs = [
        ctx.Process(
            target=_writer,
            args=(url, calls_each, run_base + i * (calls_each // 10 + 1), start, seconds, out),
        )
        for i in range(writers)
    ]
    for p in procs:
        p.start()
    start.wait()
    began = time.time()
    if started is not None:
        started.set()
    total = sum(out.get() for _ in procs)
    elapsed = time.time() - began
    for p in procs:
        p.join()
    return {
        "writers": writers,
        "calls": total,
        "seconds": round(elapsed, 2),
        "rows_per_s": round(total / elapsed),
    }


def build(url: str, calls: int) -> float:
    """Load ``calls`` calls (and their runs) with COPY; return the seconds it took."""
    from tokentrace.ledger import _postgres
    from tokentrace.ledger._schema import CALL_COLUMNS, TASK_COLUMNS

    reset(url)
    began = time.time()
    conn = _postgres.connect(url)
    try:
        for call_rows, task_rows in batches(calls, batch=100_000):
            with conn.raw.cursor() as cursor:
                with cursor.copy(f"COPY calls ({', '.join(CALL_COLUMNS)}) FROM STDIN") as copy:
                    for row in call_rows:
                        copy.write_row(row)
                with cursor.copy(f"COPY tasks ({', '.join(TASK_COLUMNS)}) FROM STDIN") as copy:
                    for row in task_rows:
                        copy.write_row(row)
        conn.raw.execute("VACUUM ANALYZE calls")
        conn.raw.execute("VACUUM ANALYZE tasks")
    finally:
        conn.close()
    return time.time() - began


def time_report(url: str, args: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        subprocess.run([*REPORT, "--ledger", url, *args], check=True, capture_output=True, cwd=ROOT)
        best = min(best, time.perf_counter() - began)
    return round(best, 2)


def reports(url: str, repeat: int) -> list[dict[str, Any]]:
    found = []
    for by in ("tenant", "day", "task"):
        for form in ("table", "json"):
            extra = ["--format", "json"] if form == "json" else []
            found.append(
                {"by": by, "format": form, "seconds": time_report(url, ["--by", by, *extra], repeat)}
            )
    return found


def during_reports(url: str, writers: int) -> dict[str, Any]:
    """``writers`` writing while three reports by tenant run one after another, against the
    same writers alone for as long."""
    took = time_report(url, ["--by", "tenant"], 1) * 3
    alone = write_throughput(url, writers, 20_000, seconds=took)
    started = threading.Event()
    result: dict[str, Any] = {}
    writing = threading.Thread(
        target=lambda: result.update(write_throughput(url, writers, 20_000, seconds=took, started=started))
    )
    writing.start()
    started.wait()
    began = time.perf_counter()
    for _ in range(3):
        subprocess.run(
            [*REPORT, "--ledger", url, "--by", "tenant"], check=True, capture_output=True, cwd=ROOT
        )
    report_seconds = time.perf_counter() - began
    writing.join()
    return {
        "writers": writers,
        "alone_rows_per_s": alone["rows_per_s"],
        "during_rows_per_s": result["rows_per_s"],
        "three_reports_seconds": round(report_seconds, 2),
        "three_reports_alone_seconds": round(took, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a PostgreSQL database of the benchmark's own")
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--writers", default="1,4,16")
    parser.add_argument("--write-calls", type=int, default=200_000, help="calls written in all per setting")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="write benchmarks/results/fleet.json")
    parser.add_argument(
        "--reports-only",
        action="store_true",
        help="time the reports (and the writes during them) again on the ledger already loaded, "
        "keeping the other figures of benchmarks/results/fleet.json",
    )
    args = parser.parse_args()
    url = args.url
    if args.reports_only:
        reports_again(url, args)
        return
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "server": _server_version(url),
        "writes": [],
    }
    for n in (int(w) for w in args.writers.split(",")):
        reset(url)
        row = write_throughput(url, n, args.write_calls // n)
        print(
            f"{n:>2} writer(s): {row['rows_per_s']:,} call rows/s ({row['calls']:,} in {row['seconds']} s)",
            flush=True,
        )
        result["writes"].append(row)
    loaded = build(url, args.calls)
    result["ledger_calls"] = args.calls
    result["load_seconds"] = round(loaded, 1)
    print(f"loaded {args.calls:,} calls in {loaded:.0f} s", flush=True)
    result["reports"] = reports(url, args.repeat)
    for r in result["reports"]:
        print(f"report --by {r['by']} ({r['format']}): {r['seconds']} s", flush=True)
    result["during_reports"] = during_reports(url, 4)
    print(f"writes during reports: {result['during_reports']}", flush=True)
    result["size"] = _sizes(url)
    print(f"sizes: {result['size']}", flush=True)
    result["load_average"] = round(os.getloadavg()[0], 1)
    result["commit"] = _commit()
    result["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.json:
        out = ROOT / "benchmarks" / "results" / "fleet.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out.relative_to(ROOT)}")


def reports_again(url: str, args: argparse.Namespace) -> None:
    out = ROOT / "benchmarks" / "results" / "fleet.json"
    result = json.loads(out.read_text())
    result["reports"] = reports(url, args.repeat)
    for r in result["reports"]:
        print(f"report --by {r['by']} ({r['format']}): {r['seconds']} s", flush=True)
    result["during_reports"] = during_reports(url, 4)
    print(f"writes during reports: {result['during_reports']}", flush=True)
    result["reports_commit"] = _commit()
    result["reports_measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    result["load_average"] = round(os.getloadavg()[0], 1)
    if args.json:
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out.relative_to(ROOT)}")


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def render(result: dict[str, Any]) -> list[str]:
    """The performance page's section on this benchmark (``benchmarks/report.py --render``)."""
    calls = result["ledger_calls"]
    during = result["during_reports"]
    lines = [
        "## A fleet's ledger on PostgreSQL",
        "",
        f"`benchmarks/fleet.py` against {result['server']} on 127.0.0.1 (fsync on, the server's"
        f" defaults but `shared_buffers=1GB`), on the same machine as the writers: {result['machine']};"
        f" measured at {result.get('commit', 'unrecorded')}, {result.get('measured', '')}, the machine's"
        f" load average {result.get('load_average', '?')} at the end.",
        "",
        "**Writes.** Writer processes started together, each writing call rows and their runs' task"
        " rows through the ledger writer's own statements, in batches of 512 calls (the span"
        " processor's largest export), one transaction a batch:",
        "",
        "| writer processes | call rows written | seconds | call rows per second |",
        "|---:|---:|---:|---:|",
    ]
    for row in result["writes"]:
        lines.append(f"| {row['writers']} | {row['calls']:,} | {row['seconds']} | {row['rows_per_s']:,} |")
    lines += [
        "",
        "On 2 cores the writers and the server share the CPU, so more writers add little past 4;"
        " a replica writes its batch in the span processor's thread, never in the application's.",
        "",
        f"**Reports on {calls:,} calls** ({calls // 10:,} runs; `calls` {result['size']['calls']},"
        f" `tasks` {result['size']['tasks']}; loaded in {result['load_seconds']} s with COPY), a fresh"
        " `tokentrace` process each time, best of the runs"
        + (
            f" (measured again at {result['reports_commit']}, {result['reports_measured']})"
            if "reports_commit" in result
            else ""
        )
        + ":",
        "",
        "| command | table | JSON |",
        "|---|---:|---:|",
    ]
    by: dict[str, dict[str, float]] = {}
    for r in result["reports"]:
        by.setdefault(r["by"], {})[r["format"]] = r["seconds"]
    for name, times in by.items():
        lines.append(f"| `report --by {name}` | {times['table']} s | {times['json']} s |")
    lines += [
        "",
        f"**Writes during reports.** {during['writers']} writers, alone: {during['alone_rows_per_s']:,}"
        f" call rows per second; while three `report --by tenant` ran one after another:"
        f" {during['during_rows_per_s']:,}. The three reports took {during['three_reports_seconds']} s"
        f" with the writers, {during['three_reports_alone_seconds']} s without.",
        "",
    ]
    return lines


def _server_version(url: str) -> str:
    from tokentrace.ledger import _postgres

    conn = _postgres.connect(url)
    try:
        row = conn.execute("SHOW server_version").fetchone()
    finally:
        conn.close()
    return f"PostgreSQL {row[0]}" if row else "PostgreSQL"


def _sizes(url: str) -> dict[str, str]:
    from tokentrace.ledger import _postgres

    conn = _postgres.connect(url)
    try:
        return {
            table: str(
                conn.execute(f"SELECT pg_size_pretty(pg_total_relation_size('{table}'))").fetchone()[0]
            )
            for table in ("calls", "tasks")
        }
    finally:
        conn.close()


if __name__ == "__main__":
    main()
