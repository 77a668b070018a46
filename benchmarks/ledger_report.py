"""How long ``tokentrace report`` takes on a ledger of 1,000,000 LLM calls.

Builds the ledger once (100,000 root task runs of 10 calls each, over 30 days, 5 task names,
20 features, 1,000 users, 6 models, written through the ledger's own ``write`` in batches), then
times the ``tokentrace`` command end to end (a fresh process, as a user runs it) for several
groupings, best of ``--repeat`` runs.

    python benchmarks/ledger_report.py [--calls 1000000] [--ledger PATH] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tokentrace.ledger import _writer as _ledger
from tokentrace.ledger._schema import TASK_COLUMNS

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


def build(path: Path, calls: int) -> None:
    rng = random.Random(7)
    conn = _ledger.connect(path)
    start = 1_790_000_000 * 10**9
    runs = calls // 10
    call_rows: list[tuple[object, ...]] = []
    task_rows: list[tuple[object, ...]] = []
    for run in range(runs):
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
                    _ledger._day(t0),
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
                    str(_ledger.Decimal(pico).scaleb(-12)) if pico is not None else None,
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
            day=_ledger._day(t0),
            outcome="success" if rng.random() < 0.9 else "failure",
            input_tokens=run_in,
            output_tokens=run_out,
            cost_usd=str(_ledger.Decimal(run_pico).scaleb(-12)),
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
        if len(call_rows) >= 50_000:
            _ledger.write(conn, call_rows, task_rows)
            call_rows, task_rows = [], []
    _ledger.write(conn, call_rows, task_rows)
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--ledger", type=Path, default=Path(tempfile.gettempdir()) / "tokentrace-1m.db")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.ledger.exists():
        began = time.perf_counter()
        build(args.ledger, args.calls)
        print(f"built {args.calls:,} calls in {time.perf_counter() - began:.1f} s: {args.ledger}")
    size = args.ledger.stat().st_size / 1e6
    print(f"ledger: {size:.0f} MB\n")
    for by in ("task", "model,day", "root", "user"):
        best = float("inf")
        for _ in range(args.repeat):
            began = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tokentrace",
                    "report",
                    "--ledger",
                    str(args.ledger),
                    "--by",
                    by,
                    "--format",
                    "json",
                ],
                check=True,
                capture_output=True,
            )
            best = min(best, time.perf_counter() - began)
        print(f"tokentrace report --by {by:10s} {best:6.2f} s (best of {args.repeat}, whole process)")


if __name__ == "__main__":
    main()
