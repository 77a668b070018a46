"""The rest of tokentrace's cost: import time, price computation, memory, throughput.

- ``import tokentrace``: a fresh interpreter each time (``-X importtime`` is not used: it adds its
  own cost), the median of ``--imports`` runs, minus the interpreter's own start-up.
- Price computation per call: ``lookup`` + ``cost`` for a model seen before (cached), and for a
  model never seen (cold: the price database is searched and the result cached).
- Memory per open task: tracemalloc's count of the bytes that 10,000 open, nested tasks hold.
- RSS over ``--calls`` instrumented calls (default 1,000,000) inside tasks: the resident set
  size sampled every tenth of the run; flat means the last sample is within a few MB of the
  second (the first includes warm-up). The call is the OpenAI SDK over an in-process transport.
- Throughput: calls per second with 8 threads, and with 1,000 asyncio tasks, each in its own
  task, bare and instrumented, to show what tokentrace takes from a saturated process.

    python benchmarks/micro.py [--calls 1000000] [--imports 15] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import overhead
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import tokentrace


def import_time(runs: int) -> dict[str, float]:
    """Median wall time of ``import tokentrace`` in a fresh interpreter, start-up subtracted; and of
    the first use (``tokentrace.task``), which loads OpenTelemetry's API and the engine, with and
    without OpenTelemetry already imported by the application."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}

    def timed(code: str) -> float:
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env=env)
            samples.append((time.perf_counter() - start) * 1000)
        return statistics.median(samples)

    empty = timed("pass")
    otel = timed("import opentelemetry.trace, opentelemetry.metrics")
    modules = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; before = set(sys.modules); import tokentrace; print(len(set(sys.modules) - before))",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout.strip()
    return {
        "import_ms": timed("import tokentrace") - empty,
        "first_use_ms": timed("import tokentrace; tokentrace.task") - empty,
        "first_use_after_otel_ms": timed(
            "import opentelemetry.trace, opentelemetry.metrics, tokentrace; tokentrace.task"
        )
        - otel,
        "interpreter_ms": empty,
        "modules_loaded": int(modules),
    }


def price_computation() -> dict[str, float]:
    """Microseconds per ``lookup`` + ``cost``: cached model, and a model looked up for the first time."""
    from tokentrace._pricing import prices as _pricing
    from tokentrace._tokens.usage import Usage

    usage = Usage(input_tokens=1220, output_tokens=100, cache_read_tokens=1152)
    _pricing.lookup("gpt-4o-2024-08-06", "openai")  # loads the database once
    n = 100_000
    start = time.perf_counter_ns()
    for _ in range(n):
        info = _pricing.lookup("gpt-4o-2024-08-06", "openai")
        assert info is not None
        info.cost(usage)
    cached = (time.perf_counter_ns() - start) / n / 1000
    cold_models = [
        "gpt-4o-mini-2024-07-18",
        "gpt-4.1-2025-04-14",
        "gpt-4.1-mini-2025-04-14",
        "o3-mini-2025-01-31",
        "gpt-5-mini-2025-08-07",
        "claude-sonnet-4-20250514",
        "claude-3-5-haiku-20241022",
        "claude-opus-4-1-20250805",
    ]
    cold = []
    for model in cold_models:
        provider = "anthropic" if model.startswith("claude") else "openai"
        start = time.perf_counter_ns()
        info = _pricing.lookup(model, provider)
        if info is not None:
            info.cost(usage)
        cold.append((time.perf_counter_ns() - start) / 1000)
    return {"cached_us": cached, "cold_us": statistics.median(cold)}


def memory_per_task(n: int = 10_000) -> dict[str, float]:
    """Bytes held per open task (nested ``n`` deep, as long-running agents nest)."""
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    scopes = []
    for i in range(n):
        scope = tokentrace.task(f"t{i % 10}")
        scope.__enter__()
        scopes.append(scope)
    held = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(base, "filename"))
    for scope in reversed(scopes):
        scope.__exit__(None, None, None)
    tracemalloc.stop()
    return {"bytes_per_open_task": held / n}


def rss_over_calls(calls: int) -> dict[str, Any]:
    """Resident set size (MB, from /proc) sampled every tenth of ``calls`` instrumented calls."""
    call = overhead.make_call("openai")
    tokentrace.instrument("openai")
    samples = []
    step = max(calls // 10, 1)
    start = time.perf_counter()
    done = 0
    while done < calls:
        with tokentrace.task("rss"):
            for _ in range(min(1000, calls - done)):
                call()
        done += min(1000, calls - done)
        if done % step == 0 or done == calls:
            samples.append(round(_rss_mb(), 1))
    tokentrace.uninstrument("openai")
    return {"calls": calls, "rss_mb": samples, "seconds": time.perf_counter() - start}


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def throughput(seconds: float = 3.0) -> dict[str, float]:
    """Calls per second: 8 threads, and 1,000 asyncio tasks, bare and instrumented."""
    out: dict[str, float] = {}
    for label, instrumented in (("bare", False), ("tokentrace", True)):
        if instrumented:
            tokentrace.instrument("openai")
        call = overhead.make_call("openai")
        stop = time.perf_counter() + seconds
        counts = [0] * 8

        def worker(i: int, call: Any = call, stop: float = stop, counts: list[int] = counts) -> None:
            with tokentrace.task("worker"):
                while time.perf_counter() < stop:
                    call()
                    counts[i] += 1

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(worker, range(8)))
        out[f"threads8_{label}_per_s"] = sum(counts) / seconds
        out[f"asyncio1000_{label}_per_s"] = asyncio.run(_async_throughput())
        if instrumented:
            tokentrace.uninstrument("openai")
    return out


async def _async_throughput(total: int = 5000) -> float:
    import httpx2
    import openai
    from tests.support.cassettes import load

    (interaction,) = load(overhead.CASSETTES / overhead.RECORDINGS["openai"])

    async def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(interaction.status, headers=interaction.headers, content=interaction.body)

    client = openai.AsyncOpenAI(
        api_key="sk-bench",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
        max_retries=0,
    )
    kwargs = {"model": "gpt-4o-2024-08-06", "messages": overhead.MESSAGES}
    semaphore = asyncio.Semaphore(1000)

    async def one() -> None:
        async with semaphore, tokentrace.task("job"):
            await client.chat.completions.create(**kwargs)

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(total)))
    return total / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls for the RSS run")
    parser.add_argument("--imports", type=int, default=15, help="fresh interpreters for the import time")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--only-rss", action="store_true", help="only the RSS run (it needs no quiet machine)"
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(overhead.DropExporter()))
    trace.set_tracer_provider(provider)
    tokentrace.uninstrument()
    if args.only_rss:
        print(json.dumps({"rss": rss_over_calls(args.calls)}))
        return
    report = {
        "import": import_time(args.imports),
        "price": price_computation(),
        "memory": memory_per_task(),
        "throughput": throughput(),
        "rss": rss_over_calls(args.calls) if args.calls else {"calls": 0, "rss_mb": [], "seconds": 0.0},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    imp, price, mem, thr, rss = (report[k] for k in ("import", "price", "memory", "throughput", "rss"))
    print(f"import tokentrace        {imp['import_ms']:.1f} ms ({imp['modules_loaded']} modules)")
    print(
        f"  + first use            {imp['first_use_ms']:.1f} ms ({imp['first_use_after_otel_ms']:.1f} ms with OTel loaded)"
    )
    print(f"price, cached model      {price['cached_us']:.2f} us per call")
    print(f"price, first lookup      {price['cold_us']:.1f} us")
    print(f"memory per open task     {mem['bytes_per_open_task']:.0f} bytes")
    for key, value in thr.items():
        print(f"{key:24s} {value:,.0f} calls/s")
    if rss["calls"]:
        print(f"RSS over {rss['calls']:,} calls  {rss['rss_mb']} MB ({rss['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
