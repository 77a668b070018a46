"""Limits across replicas, under concurrency: how many requests leave when replica processes
started together race for one tenant's allowance, and what a limit adds to a call.

    python benchmarks/limits.py --url postgresql://user:password@127.0.0.1:5432/bench [--json]

For each store (a SQLite ledger file: the processes of one machine; the PostgreSQL database
``--url``: a fleet) and each setting (replica processes x calls each, against a limit of N calls
an hour for one tenant, and one cost limit), the replicas wait for each other, then call a local
replay server as fast as they can. It counts the requests the server received and the calls
refused with ``BudgetExceeded``: exact means exactly N requests left. The cost setting's calls
each cost exactly their estimate, so at most the limit's worth may leave.

Then, in one process, the time per call with one limit and without, over the same local server
(the median of 300 calls): what a limit's reservation and settlement add.

Figures go to ``benchmarks/results/limits.json`` with ``--json``; ``benchmarks/report.py
--render`` puts them in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# gpt-4o-mini at $0.15 / $0.60 per million tokens: the request is estimated at 13 input tokens
# and its max_tokens=10, and the response reports exactly those: each call costs its estimate.
BODY = {
    "id": "c1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 13, "completion_tokens": 10, "total_tokens": 23},
}
CALL_COST = Decimal("0.00000795")
SETTINGS = (  # (replicas, calls each, limit)
    (3, 8, {"max_llm_calls": 10}),
    (8, 40, {"max_llm_calls": 100}),
    (16, 25, {"max_llm_calls": 200}),
    (8, 40, {"max_cost_usd": str(CALL_COST * 100 + CALL_COST / 2)}),
)

REPLICA = """
import json, os, time
from decimal import Decimal
from pathlib import Path

import openai
import tokentrace

limit = json.loads(os.environ["LIMITS_LIMIT"])
if "max_cost_usd" in limit:
    limit["max_cost_usd"] = Decimal(limit["max_cost_usd"])
tokentrace.configure(exporter="none", limits=[tokentrace.Limit(per="tenant", window="1h", **limit)])
tokentrace.instrument("openai")
client = openai.OpenAI(api_key="sk-bench", base_url=os.environ["LIMITS_SERVER"], max_retries=0)
ready = Path(os.environ["LIMITS_READY"])
(ready / os.environ["LIMITS_INDEX"]).touch()
while len(list(ready.iterdir())) < int(os.environ["LIMITS_REPLICAS"]):
    time.sleep(0.002)
sent = refused = 0
for _ in range(int(os.environ["LIMITS_CALLS"])):
    try:
        with tokentrace.task("replica", tenant=os.environ["LIMITS_TENANT"]):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello to the fleet."}], max_tokens=10
            )
        sent += 1
    except tokentrace.BudgetExceeded:
        refused += 1
print(json.dumps({"sent": sent, "refused": refused}))
"""

LATENCY = """
import json, os, statistics, time
import openai
import tokentrace

if os.environ["LIMITS_WITH"] == "1":
    tokentrace.configure(
        exporter="none", limits=[tokentrace.Limit(per="tenant", window="1h", max_llm_calls=10**9)]
    )
else:
    tokentrace.configure(exporter="none")
tokentrace.instrument("openai")
client = openai.OpenAI(api_key="sk-bench", base_url=os.environ["LIMITS_SERVER"], max_retries=0)
times = []
for i in range(330):
    began = time.perf_counter()
    with tokentrace.task("latency", tenant=os.environ["LIMITS_TENANT"]):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello to the fleet."}], max_tokens=10
        )
    if i >= 30:  # the first calls warm up connections and caches
        times.append(time.perf_counter() - began)
print(json.dumps({"median_ms": statistics.median(times) * 1000}))
"""


def _python(code: str, env: dict[str, str]) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TOKENTRACE_"))}
    full["PYTHONPATH"] = str(ROOT / "src")
    full.update(env)
    return subprocess.Popen([sys.executable, "-c", code], env=full, stdout=subprocess.PIPE, text=True)


def race(ledger: str, replicas: int, calls: int, limit: dict[str, Any], tenant: str) -> dict[str, Any]:
    from tokentrace.testing import Recorded, ReplayServer

    with (
        tempfile.TemporaryDirectory() as ready,
        ReplayServer({"/v1/chat/completions": [Recorded(json.dumps(BODY).encode())]}) as replay,
    ):
        env = {
            "TOKENTRACE_LEDGER": ledger,
            "LIMITS_SERVER": replay.url + "/v1",
            "LIMITS_READY": ready,
            "LIMITS_REPLICAS": str(replicas),
            "LIMITS_CALLS": str(calls),
            "LIMITS_LIMIT": json.dumps(limit),
            "LIMITS_TENANT": tenant,
        }
        began = time.perf_counter()
        procs = [_python(REPLICA, {**env, "LIMITS_INDEX": str(i)}) for i in range(replicas)]
        reports = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
        took = time.perf_counter() - began
        received = len(replay.requests)
    sent = sum(r["sent"] for r in reports)
    refused = sum(r["refused"] for r in reports)
    if "max_llm_calls" in limit:
        allowed = limit["max_llm_calls"]
        exact = received == allowed
    else:
        allowed = int(Decimal(limit["max_cost_usd"]) // CALL_COST)
        exact = received * CALL_COST <= Decimal(limit["max_cost_usd"]) and received == allowed
    return {
        "replicas": replicas,
        "calls_each": calls,
        "limit": limit,
        "allowed": allowed,
        "requests_received": received,
        "sent": sent,
        "refused": refused,
        "exact": exact,
        "seconds": round(took, 2),
    }


def latency(ledger: str, tenant: str) -> dict[str, float]:
    from tokentrace.testing import Recorded, ReplayServer

    found = {}
    with ReplayServer({"/v1/chat/completions": [Recorded(json.dumps(BODY).encode())]}) as replay:
        for name, with_limit in (("without", "0"), ("with", "1")):
            env = {
                "TOKENTRACE_LEDGER": ledger,
                "LIMITS_SERVER": replay.url + "/v1",
                "LIMITS_WITH": with_limit,
                "LIMITS_TENANT": tenant,
            }
            out = _python(LATENCY, env).communicate(timeout=600)[0]
            found[name] = round(json.loads(out)["median_ms"], 2)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a PostgreSQL database of the benchmark's own")
    parser.add_argument("--json", action="store_true", help="write benchmarks/results/limits.json")
    args = parser.parse_args()
    stamp = f"{os.getpid()}-{int(time.time())}"  # a tenant of each run's own: a fresh allowance
    result: dict[str, Any] = {"stores": {}}
    with tempfile.TemporaryDirectory() as folder:
        stores = {"sqlite": str(Path(folder) / "ledger.db"), "postgresql": args.url}
        for store, ledger in stores.items():
            rows = []
            for n, (replicas, calls, limit) in enumerate(SETTINGS):
                row = race(ledger, replicas, calls, limit, f"tenant-{stamp}-{n}")
                print(store, row, flush=True)
                rows.append(row)
            timing = latency(ledger, f"tenant-{stamp}-latency")
            print(store, "per call (ms)", timing, flush=True)
            result["stores"][store] = {"races": rows, "call_ms": timing}
    result["machine"] = f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
    result["load_average"] = round(os.getloadavg()[0], 1)
    result["commit"] = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    result["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.json:
        out = ROOT / "benchmarks" / "results" / "limits.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out.relative_to(ROOT)}")


def render(result: dict[str, Any]) -> list[str]:
    """The performance page's section on this benchmark (``benchmarks/report.py --render``)."""
    lines = [
        "### Limits across replicas under concurrency",
        "",
        f"`benchmarks/limits.py`, {result['machine']}, measured at {result['commit']}, {result['measured']}"
        f" (load average {result['load_average']} at the end). Replica processes started together"
        ' race for one tenant\'s allowance (`Limit(per="tenant", window="1h", ...)`), calling a local'
        " replay server as fast as they can; requests counted at the server:",
        "",
        "| store | replicas x calls | limit | requests that left | refused | exact |",
        "|---|---|---|---:|---:|---|",
    ]
    for store, found in result["stores"].items():
        for row in found["races"]:
            limit = row["limit"]
            shown = (
                f"{limit['max_llm_calls']} calls"
                if "max_llm_calls" in limit
                else f"${Decimal(limit['max_cost_usd']).normalize():f} (100.5 calls' cost)"
            )
            lines.append(
                f"| {store} | {row['replicas']} x {row['calls_each']} | {shown} | {row['requests_received']}"
                f" | {row['refused']} | {'yes' if row['exact'] else 'NO'} |"
            )
    lines += [
        "",
        "What one limit adds to a call: the median of 300 calls to the local replay server from one"
        " process, with a limit and without (the server's own round trip is most of a call here);"
        " the reservation before the call and the settlement after it are one transaction each in"
        " the store, PostgreSQL's committed to disk (fsync on):",
        "",
        "| store | a call without a limit | with one | added |",
        "|---|---:|---:|---:|",
    ]
    for store, found in result["stores"].items():
        ms = found["call_ms"]
        added = round(ms["with"] - ms["without"], 2)
        lines.append(f"| {store} | {ms['without']} ms | {ms['with']} ms | {added} ms |")
    lines.append("")
    return lines


if __name__ == "__main__":
    main()
