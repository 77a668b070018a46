"""Instructions executed per call, counted by valgrind's callgrind: a noise-free overhead measure.

Wall-clock medians on a shared 2-core machine swing by +-40% from run to run, far more than the
tens of microseconds being measured. Instruction counts are deterministic for the same binary
and inputs, so this script gives the overhead as a repeatable number. It runs each
configuration of ``overhead.py`` (bare, otel-span, tokentrace, tokentrace+metrics) in its own
process under callgrind, collecting only inside the timed loop, and prints instructions per
call and the ratio of tokentrace's added instructions to the hand-written span's.

    python benchmarks/instructions.py [--calls 50] [--repeat 3] [--provider openai|anthropic|all]
                                      [--mode sync|stream|all] [--json]

With ``--mode stream`` it counts streams of 2 and 202 content chunks (see ``overhead.py``) and
gives the instructions tokentrace adds per chunk: the difference between the two lengths / 200.

Needs valgrind (``apt-get install valgrind``). Start-up (imports) runs with callgrind's
instrumentation off, which is switched on (``callgrind_control -i on``) once the child is
warm, so a run takes well under a minute per provider.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIGS = ("bare", "otel-span", "tokentrace", "tokentrace+metrics")
# Where tokentrace's instructions go (sync calls only): a span with no attributes, the floor's
# span with as many attributes as a tokentrace call span (16), tokentrace without duplicate
# detection, and tokentrace when every call repeats the same request (each one after the first
# is flagged a duplicate), and tokentrace with every integration instrumented (the HTTP
# clients' too, which an SDK's own request passes through unrecorded).
ABLATIONS = ("otel-span-0", "otel-span-16", "tokentrace-nodup", "tokentrace-dup", "tokentrace-all")


def child(config: str, provider: str, mode: str, calls: int, ready: str) -> None:
    """Run ``calls`` calls of one configuration inside ``functools.reduce`` (the collection window)."""
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)
    sys.argv = [sys.argv[0]]
    sys.path.insert(0, str(HERE))
    import overhead
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    import tokentrace

    # The export thread must not wake inside the collection window (its work is not the caller's and
    # would make counts depend on timing): a 10-minute schedule and a queue larger than the run.
    processor = BatchSpanProcessor(
        overhead.DropExporter(),
        max_queue_size=1_000_000,
        max_export_batch_size=1_000_000,
        schedule_delay_millis=600_000,
    )
    fn = overhead.prepare(provider, mode, config, processor)
    if config.startswith("tokentrace"):
        tokentrace.task("bench").__enter__()
    window(fn, calls, ready)


def window(call: Callable[[], object], calls: int, ready: str, warm: int = 20) -> None:
    """In a child: ``call`` ``warm`` times (caches warmed outside the collection window), then
    ``calls`` times inside ``functools.reduce``, the window ``collected`` counts, once the parent
    has switched instrumentation on."""
    import functools

    for _ in range(warm):
        call()
    # A garbage collection inside the window would cost millions of instructions or none,
    # depending on allocation counts since start-up; overhead.py pauses it too.
    gc.collect()
    gc.disable()
    Path(ready).touch()  # the parent switches instrumentation on, then removes the file
    while Path(ready).exists():
        time.sleep(0.05)
    functools.reduce(lambda acc, _: call(), range(calls), None)


def drop_spans() -> None:
    """In a child: spans go to a processor whose export never runs inside the window (its work
    is not the caller's, and would make counts depend on timing)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(Drop(), max_queue_size=1_000_000, schedule_delay_millis=600_000)
    )
    trace.set_tracer_provider(provider)


def collected(script: str, child_args: list[str], label: str) -> int:
    """Run ``script --child *child_args READY`` under callgrind, switch collection on once the child
    has touched READY (warm, imports done), and return the instructions collected inside
    ``functools.reduce`` (the child's measured loop)."""
    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "ready"
        proc = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                "--collect-atstart=no",
                "--toggle-collect=functools_reduce",
                f"--callgrind-out-file={tmp}/cg.out",
                sys.executable,
                script,
                "--child",
                *child_args,
                str(ready),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        while not ready.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"the {label} child exited early:\n{proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
            time.sleep(0.1)
        subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True)
        ready.unlink()
        _, err = proc.communicate()
    match = re.search(r"Collected : (\d+)", err)
    if match is None:
        raise RuntimeError(f"callgrind gave no count for {label}:\n{err[-2000:]}")
    return int(match.group(1))


def measure(config: str, provider: str, calls: int, mode: str = "sync") -> float:
    return collected(__file__, [config, provider, mode, str(calls)], config) / calls


def count(provider: str, mode: str, calls: int, repeat: int = 3) -> dict[str, float]:
    """Each configuration's instructions per call: for sync calls, the median of ``repeat`` processes.

    The same code and inputs still vary by a few thousand instructions per call from one
    process to the next (memory layout, random span ids), which the median of three evens out.
    Streams are counted once: their per-chunk figure is a difference divided by 200.
    """
    configs = (*CONFIGS, *ABLATIONS) if mode == "sync" else CONFIGS[:3]
    repeat = repeat if mode == "sync" else 1
    runs = [config for config in configs for _ in range(repeat)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        values = list(
            pool.map(measure, runs, [provider] * len(runs), [calls] * len(runs), [mode] * len(runs))
        )
    return {
        config: statistics.median(values[i * repeat : (i + 1) * repeat]) for i, config in enumerate(configs)
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--provider", choices=["openai", "anthropic", "all"], default="all")
    parser.add_argument("--mode", choices=["sync", "stream", "all"], default="all")
    parser.add_argument("--repeat", type=int, default=3, help="processes per sync configuration (median)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    providers = ["openai", "anthropic"] if args.provider == "all" else [args.provider]
    modes = {"all": ("sync", "stream-2", "stream-202"), "stream": ("stream-2", "stream-202")}.get(
        args.mode, (args.mode,)
    )
    results: dict[str, dict[str, dict[str, float]]] = {}
    for provider in providers:
        results[provider] = {mode: count(provider, mode, args.calls, args.repeat) for mode in modes}
        if "stream-202" in results[provider]:
            short, long = results[provider]["stream-2"], results[provider]["stream-202"]
            results[provider]["per-chunk"] = {
                config: ((long[config] - long["bare"]) - (short[config] - short["bare"])) / 200
                for config in ("otel-span", "tokentrace")
            }
    if args.json:
        print(json.dumps({"calls": args.calls, "repeat": args.repeat, "results": results}, indent=2))
        return
    for provider, by_mode in results.items():
        for mode, counts in by_mode.items():
            if mode == "per-chunk":
                print(
                    f"{provider}: instructions added per stream chunk (202-chunk minus 2-chunk stream, / 200)"
                )
                for config, value in counts.items():
                    print(f"  {config:20s} {value:12,.0f}")
                continue
            bare = counts["bare"]
            floor = counts["otel-span"] - bare
            runs = args.repeat if mode == "sync" else 1
            print(
                f"{provider} {mode}: instructions per call ({args.calls} calls, median of {runs} processes, callgrind)"
            )
            for config, value in counts.items():
                line = f"  {config:20s} {value:12,.0f}"
                if config != "bare":
                    line += f"  added {value - bare:10,.0f}"
                if config.startswith("tokentrace"):
                    line += f"  = {(value - bare) / floor:.2f}x the floor"
                print(line)


if __name__ == "__main__":
    main()
