"""How long ``tokentrace report`` and the ``tokentrace ui`` dashboard take on a ledger of
1,000,000 LLM calls.

Builds the ledger once (100,000 root task runs of 10 calls each, over 30 days, 5 task names,
20 features, 1,000 users, 8 tenants, 6 models, written through the ledger's own ``write`` in
batches) and brings a ledger built by an older tokentrace to the current schema (the way a
program that writes to it would). Then:

- times the ``tokentrace`` command end to end (a fresh process, as a user runs it) for several
  groupings, as a table and as JSON, best of ``--repeat`` runs;
- starts ``tokentrace ui`` on it and loads each view the way the page's script does, over HTTP
  on 127.0.0.1: the page, then its sections (as many at a time as the page says), then the
  filters' choices. A view's time is from asking for the page to the last section; the
  totals' time is when the first section (the totals) arrived. The views are visited in the
  order a user would click through them from the first page, in a server started afresh for
  each round, best of ``--repeat`` rounds.

    python benchmarks/ledger_report.py [--calls 1000000] [--ledger PATH] [--repeat 3] [--json]

``--as-is`` measures the ledger without bringing it to the current schema (to measure an older
tokentrace on the ledger it reads: run it with that tokentrace first on PYTHONPATH).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parents[1]

MODELS = (
    ("openai", "gpt-4o-2024-08-06", 2_500_000, 10_000_000),
    ("openai", "gpt-4o-mini-2024-07-18", 150_000, 600_000),
    ("anthropic", "claude-sonnet-4-20250514", 3_000_000, 15_000_000),
    ("anthropic", "claude-3-5-haiku-20241022", 800_000, 4_000_000),
    ("openai", "o3-mini-2025-01-31", 1_100_000, 4_400_000),
    ("openai", "davinci:2023-07-21-v2", 0, 0),  # unpriced
)
TASKS = ("classify", "draft_reply", "summarise", "retrieve", "review")
DAY_NS = 86_400 * 10**9
# The tasks columns without a NOT NULL default.
NULLABLE = {
    "parent_id",
    "outcome",
    "error_type",
    "feature",
    "user_id",
    "tenant",
    "service",
    "environment",
    "attributes",
    "units",
    "budget_exceeded",
}


def batches(
    calls: int, *, batch: int = 50_000, seed: int = 7, first_run: int = 0
) -> Iterator[tuple[list[tuple[object, ...]], list[tuple[object, ...]]]]:
    """The rows of a ledger of ``calls`` calls (runs of 10), as (calls, tasks) batches of about
    ``batch`` calls; ``first_run`` numbers the runs (their ids) from there."""
    sys.path.insert(0, str(ROOT / "src"))
    from tokentrace.ledger import _rows
    from tokentrace.ledger._schema import TASK_COLUMNS

    rng = random.Random(seed)
    start = 1_790_000_000 * 10**9
    runs = calls // 10
    call_rows: list[tuple[object, ...]] = []
    task_rows: list[tuple[object, ...]] = []
    for run in range(first_run, first_run + runs):
        root_id = f"{run:016x}"
        t0 = start + rng.randrange(30 * DAY_NS)
        feature = f"feature-{rng.randrange(20)}"
        user = f"user-{rng.randrange(1000)}"
        tenant = f"tenant-{rng.randrange(8)}"
        run_pico = run_calls = run_unpriced = run_in = run_out = 0
        for i in range(10):
            provider, model, rate_in, rate_out = MODELS[rng.randrange(len(MODELS))]
            inp, out = rng.randrange(100, 20_000), rng.randrange(10, 2_000)
            cached = rng.randrange(inp) if rng.random() < 0.4 else 0
            priced = rate_in > 0
            pico = inp * rate_in + out * rate_out if priced else None
            task = TASKS[i % len(TASKS)]
            call_rows.append(
                (
                    f"{run:08x}{i:08x}",
                    f"{run:032x}",
                    root_id,
                    task,
                    root_id,
                    "resolve_ticket",
                    t0 + i,
                    t0 + i + 1_000_000,
                    _rows._day(t0),
                    "chat",
                    provider,
                    model,
                    model,
                    model,
                    inp,
                    out,
                    cached,
                    0,
                    0,
                    0,
                    str(Decimal(pico).scaleb(-12)) if pico is not None else None,
                    pico,
                    "priced" if priced else "unpriced",
                    "genai-prices" if priced else None,
                    0,
                    1 if rng.random() < 0.03 else 0,
                    None,
                    None,
                    None,
                    feature,
                    user,
                    tenant,
                    "bench",
                    "prod",
                    0,
                    0,
                    0,
                    None,
                    *(None,) * 5,  # base_url, service_tier, iterations, billed input and output tokens
                )
            )
            run_pico += pico or 0
            run_calls += 1
            run_unpriced += not priced
            run_in += inp
            run_out += out
        # The run's root task, with its inclusive totals (those of Task.totals).
        task: dict[str, object] = {
            c: None if c in NULLABLE else "0" if c.endswith("_usd") else 0 for c in TASK_COLUMNS
        }
        task.update(
            task_id=root_id,
            root_id=root_id,
            root_name="resolve_ticket",
            name="resolve_ticket",
            trace_id=f"{run:032x}",
            span_id=root_id,
            start_ns=t0,
            end_ns=t0 + 2_000_000,
            day=_rows._day(t0),
            outcome="success" if rng.random() < 0.9 else "failure",
            input_tokens=run_in,
            output_tokens=run_out,
            cost_usd=str(Decimal(run_pico).scaleb(-12)),
            llm_calls=run_calls,
            unpriced_calls=run_unpriced,
            feature=feature,
            user_id=user,
            tenant=tenant,
            units='{"ticket": 1}',
            service="bench",
            environment="prod",
        )
        task_rows.append(tuple(task[c] for c in TASK_COLUMNS))
        if len(call_rows) >= batch:
            yield call_rows, task_rows
            call_rows, task_rows = [], []
    if call_rows or task_rows:
        yield call_rows, task_rows


def build(path: Path, calls: int) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from tokentrace.ledger import _writer as _ledger

    conn = _ledger.connect(path)
    for call_rows, task_rows in batches(calls):
        _ledger.write(conn, call_rows, task_rows)
    conn.close()


GROUPINGS = ("task", "model,day", "root", "user")
REPORT = (sys.executable, "-m", "tokentrace", "report")


def time_cli(ledger: Path, repeat: int) -> list[dict[str, Any]]:
    """``tokentrace report --by ...`` in a fresh process each time, as a table and as JSON."""
    out = []
    for by in GROUPINGS:
        for fmt in ("table", "json"):
            best = float("inf")
            for _ in range(repeat):
                began = time.perf_counter()
                subprocess.run(
                    [*REPORT, "--ledger", str(ledger), "--by", by, "--format", fmt],
                    check=True,
                    capture_output=True,
                    env={**os.environ, "COLUMNS": "160"},
                )
                best = min(best, time.perf_counter() - began)
            out.append({"by": by, "format": fmt, "seconds": round(best, 3)})
            print(f"tokentrace report --by {by:10s} --format {fmt:5s} {best:6.2f} s", file=sys.stderr)
    return out


def views(ledger: Path) -> list[tuple[str, str]]:
    """The views a user goes through, as (label, URL query): the first page, then each filter."""
    conn = sqlite3.connect(f"{ledger.resolve().as_uri()}?mode=ro", uri=True)
    try:
        (last,) = conn.execute("SELECT MAX(day) FROM calls").fetchone()
    finally:
        conn.close()
    since = (datetime.fromisoformat(last) - timedelta(days=7)).strftime("%Y-%m-%d")
    return [
        ("page load, all calls", ""),
        ("since a date (8 of 30 days)", f"since={since}"),
        ("one feature", "feature=feature-3"),
        ("one user", "user=user-5"),
        ("one tenant", "tenant=tenant-3"),
        ("one model", "model=gpt-4o-2024-08-06"),
        ("cost by hour", "bucket=hour"),
        ("split by feature", "split=feature"),
        ("what if gpt-4o-mini", "whatif=gpt-4o-mini"),
    ]


def _get(url: str) -> bytes:
    with urlopen(url, timeout=600) as response:
        body: bytes = response.read()
        return body


# The sections a 1280x900 window shows at first (tests/test_ui.py checks that these, and only
# these, load before the page is scrolled); the others load as they come into view.
FIRST_SCREEN = {"kpis", "success", "time", "by-task", "waste"}


def load(base: str, query: str) -> dict[str, Any]:
    """One view as the page's script loads it: the page, then its sections by rank, as many at
    a time as the page says: the first screen's, then the others (as if scrolled through at
    once) with the filters' choices."""
    began = time.perf_counter()
    page = _get(f"{base}?{query}")
    shell = time.perf_counter() - began
    html = page.decode()
    ranked = sorted(
        (int(rank), name) for name, rank in re.findall(r'data-section="([a-z-]+)" data-rank="(\d+)"', html)
    )
    sections = [name for _, name in ranked]
    found = re.search(r'data-workers="(\d+)"', html)
    workers = int(found.group(1)) if found else 1
    at = f"at={time.time_ns()}"
    params = f"{query}&{at}" if query else at
    done: dict[str, float] = {}

    def fetch(path: str) -> int:
        body = _get(f"{base}{path}?{params}")
        done[path] = time.perf_counter() - began
        return len(body)

    with ThreadPoolExecutor(workers) as pool:
        size = len(page) + sum(pool.map(fetch, [f"section/{n}" for n in sections if n in FIRST_SCREEN]))
        screen = time.perf_counter() - began
        later = [f"section/{n}" for n in sections if n not in FIRST_SCREEN] + (
            ["choices"] if sections else []
        )
        size += sum(pool.map(fetch, later))
    complete = time.perf_counter() - began
    return {
        "shell_s": shell,
        "first_s": done.get("section/kpis", complete),
        "screen_s": screen if sections else complete,
        "complete_s": complete,
        "kb": size / 1000,
        "workers": workers,
    }


def time_ui(ledger: Path, repeat: int) -> dict[str, Any]:
    """Each view's best times over ``repeat`` rounds, each round in a server started afresh."""
    shown = views(ledger)
    best: dict[str, dict[str, Any]] = {}
    stamp = float("inf")
    for _ in range(repeat):
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tokentrace",
                "ui",
                "--ledger",
                str(ledger),
                "--port",
                "0",
                "--refresh",
                "0",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            found = re.search(r"http://\S+/", server.stdout.readline())
            assert found, "tokentrace ui printed no URL"
            base = found.group(0)
            for label, query in shown:
                got = load(base, query)
                if label not in best or got["screen_s"] < best[label]["screen_s"]:
                    best[label] = {"view": label, "query": query, **got}
                print(
                    f"{label:28s} totals {got['first_s']:6.2f} s  first screen {got['screen_s']:6.2f} s"
                    f"  all {got['complete_s']:6.2f} s",
                    file=sys.stderr,
                )
            began = time.perf_counter()
            _get(f"{base}stamp")
            stamp = min(stamp, time.perf_counter() - began)
        finally:
            server.terminate()
            server.wait(timeout=30)
    rows = [
        {k: round(v, 3) if isinstance(v, float) else v for k, v in best[label].items()} for label, _ in shown
    ]
    return {"views": rows, "stamp_s": round(stamp, 4)}


def render(result: dict[str, Any]) -> list[str]:
    """The performance page's section on this benchmark's results (``benchmarks/report.py``)."""
    calls, ui = result["calls"], result["ui"]
    lines = [
        f"## Reports and the dashboard on {calls:,} calls",
        "",
        f"`benchmarks/ledger_report.py` on a ledger of {calls:,} LLM calls ({calls // 10:,} task runs of 10"
        f" calls over 30 days, 1,000 users, 20 features, 8 tenants, 6 models; {result['ledger_mb']} MB,"
        f" schema {result['schema']}), {result['cpus']} CPUs, Python {result['python']}, SQLite"
        f" {result['sqlite']}; best of {result['repeat']}; measured at {result.get('commit', 'unrecorded')},"
        f" {result.get('measured', '')}"
        + (
            f", the machine's load average {result['load'][0]} before and {result['load'][1]} after."
            if "load" in result
            else "."
        ),
        "",
    ]
    if result["cli"]:
        lines += [
            "The command, a fresh process each time (start-up included). The table leaves out the",
            "percentiles of cost per run unless they are asked for (`--columns`, `--wide`), and so reads the",
            "calls once; JSON has them, which takes a second pass over each group's runs.",
            "",
            "| `tokentrace report` | table | `--format json` |",
            "|---|---:|---:|",
        ]
        for by in dict.fromkeys(row["by"] for row in result["cli"]):
            cell = {row["format"]: f"{row['seconds']:.2f} s" for row in result["cli"] if row["by"] == by}
            lines.append(f"| `--by {by}` | {cell.get('table', '')} | {cell.get('json', '')} |")
        lines.append("")
    workers = {row["workers"] for row in ui["views"]}
    lines += [
        "The dashboard (`tokentrace ui`), over HTTP on 127.0.0.1: a view's page, then its sections the way",
        f"the page's script asks for them ({', '.join(map(str, sorted(workers)))} at a time, the most telling"
        " first): those a 1280x900 window shows at first (the totals, the cost per successful run, the chart,"
        " cost by task and the waste), then the others, which the page asks for as they come into view,"
        " as if scrolled through at once, with the filters' choices. *Totals* is when the totals have"
        " arrived, *first screen* when the window is full, *whole page* when the last section has"
        " arrived. The views are visited in this order, as a user clicks through them from the first"
        " page, in a server started afresh for each round: a change of bucket, split or what-if model"
        " computes only its own section, the rest is the first page's, kept while the ledger is unchanged.",
        "",
        "| view | page | totals | first screen | whole page | size |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in ui["views"]:
        lines.append(
            f"| {row['view']} | {row['shell_s']:.2f} s | {row['first_s']:.2f} s | {row['screen_s']:.2f} s"
            f" | {row['complete_s']:.2f} s | {row['kb']:,.0f} KB |"
        )
    lines += [
        f"| refresh check (`/stamp`) | {ui['stamp_s'] * 1000:.1f} ms | | | | |",
        "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--ledger", type=Path, default=Path(tempfile.gettempdir()) / "tokentrace-1m.db")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    parser.add_argument("--as-is", action="store_true", help="leave the ledger at its schema")
    parser.add_argument("--skip-cli", action="store_true", help="time the dashboard only")
    args = parser.parse_args()
    if not args.ledger.exists():
        began = time.perf_counter()
        build(args.ledger, args.calls)
        print(
            f"built {args.calls:,} calls in {time.perf_counter() - began:.1f} s: {args.ledger}",
            file=sys.stderr,
        )
    elif not args.as_is:
        sys.path.insert(0, str(ROOT / "src"))
        from tokentrace.ledger import _writer as _ledger

        began = time.perf_counter()
        _ledger.connect(args.ledger).close()  # an older ledger is migrated, as a writer would
        print(f"opened to write (migrated if older) in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    conn = sqlite3.connect(f"{args.ledger.resolve().as_uri()}?mode=ro", uri=True)
    try:
        (calls,) = conn.execute("SELECT COUNT(*) FROM calls").fetchone()
        (schema,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    finally:
        conn.close()
    print(
        f"ledger: {args.ledger.stat().st_size / 1e6:.0f} MB, {calls:,} calls, schema {schema}\n",
        file=sys.stderr,
    )
    load = os.getloadavg()[0]
    result = {
        "calls": calls,
        "ledger_mb": round(args.ledger.stat().st_size / 1e6),
        "schema": int(schema),
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cli": [] if args.skip_cli else time_cli(args.ledger, args.repeat),
        "ui": time_ui(args.ledger, args.repeat),
    }
    # The machine may be shared: the load average (1 minute) before and after, said with the figures.
    result["load"] = [round(load, 1), round(os.getloadavg()[0], 1)]
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
