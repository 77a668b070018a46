"""Python bytecode instructions executed per call: a deterministic overhead measure that tracks wall clock.

Wall-clock figures on a shared machine need minutes of interleaved rounds to say anything
(``overhead.py``). callgrind's machine instructions (``instructions.py``) are deterministic but
weigh C code (pickle, the SDK's C parts, wrapt) the same as the interpreter's work, and put
tokentrace's ratio to the floor well below what the wall clock measures. The number of bytecode
instructions the interpreter runs, counted with ``sys.settrace`` opcode events, tracks the
wall-clock ratio closely (see docs/performance.md), takes seconds and does not depend on the
machine. It does not see C code at all, so it is a guide for work on the hot path, next to the
other two, not a replacement for them.

Each configuration of ``overhead.py`` runs in a process of its own, warmed, and one call is
counted (the count is the same for every call of a configuration; a second one checks that).
Bytecodes are grouped by where they run: tokentrace, OpenTelemetry, and the rest (the SDK, the
standard library). ``--top N`` lists tokentrace's N costliest functions.

    python benchmarks/bytecodes.py [--provider openai|anthropic|all] [--top 20] [--json]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import subprocess
import sys
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

HERE = Path(__file__).resolve().parent
CONFIGS = ("bare", "otel-span", "otel-span-0", "otel-span-16", "tokentrace", "tokentrace-nodup")
GROUPS = ("tokentrace", "opentelemetry", "other")


def _group(filename: str) -> str:
    if "/tokentrace/" in filename:
        return "tokentrace"
    return "opentelemetry" if "/opentelemetry/" in filename else "other"


def child(provider: str, config: str) -> dict[str, Any]:
    """Count the bytecodes of one warm call of ``config``, twice: by group and by function."""
    warnings.simplefilter("ignore", DeprecationWarning)
    sys.path.insert(0, str(HERE))
    import overhead

    import tokentrace

    fn = overhead.prepare(provider, "sync", config)
    in_task = tokentrace.task("bench") if config.startswith("tokentrace") else contextlib.nullcontext()
    runs = []
    with in_task:
        for _ in range(50):
            fn()
        for _ in range(2):
            by_function: collections.Counter[tuple[str, str]] = collections.Counter()

            def trace(frame: FrameType, event: str, arg: object) -> Any:
                if event == "opcode":
                    code = frame.f_code
                    by_function[code.co_filename, code.co_name] += 1  # noqa: B023  # this run's counter
                elif event == "call":
                    frame.f_trace_opcodes = True
                return trace

            sys.settrace(trace)
            fn()
            sys.settrace(None)
            runs.append(by_function)
    first, second = runs
    groups = dict.fromkeys(GROUPS, 0)
    functions: dict[str, int] = {}
    for (filename, name), n in first.items():
        group = _group(filename)
        groups[group] += n
        if group == "tokentrace":
            where = filename.split("/tokentrace/", 1)[1]
            functions[f"{where}:{name}"] = functions.get(f"{where}:{name}", 0) + n
    return {
        "total": sum(first.values()),
        "repeatable": first == second,
        "groups": groups,
        "functions": dict(sorted(functions.items(), key=lambda item: -item[1])),
    }


def count(provider: str) -> dict[str, dict[str, Any]]:
    """Every configuration's counts, each in a fresh process."""
    results = {}
    for config in CONFIGS:
        out = subprocess.run(
            [sys.executable, __file__, "--child", provider, config],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results[config] = json.loads(out)
    return results


def summary(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Added bytecodes per configuration and tokentrace's ratios to the floor and its 16-attribute twin."""
    bare = results["bare"]["total"]
    added = {config: r["total"] - bare for config, r in results.items() if config != "bare"}
    return {
        "bare": bare,
        "added": added,
        "x_floor": added["tokentrace"] / added["otel-span"],
        "x_floor_nodup": added["tokentrace-nodup"] / added["otel-span"],
        "x_16_attributes": added["tokentrace"] / added["otel-span-16"],
        "tokentrace_groups": results["tokentrace"]["groups"],
        "tokentrace_functions": results["tokentrace"]["functions"],
        "repeatable": all(r["repeatable"] for r in results.values()),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3])))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--provider", choices=["openai", "anthropic", "all"], default="all")
    parser.add_argument("--top", type=int, default=0, help="list tokentrace's N costliest functions")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    providers = ["openai", "anthropic"] if args.provider == "all" else [args.provider]
    results = {provider: summary(count(provider)) for provider in providers}
    if args.json:
        print(json.dumps({"results": results}, indent=2))
        return
    for provider, s in results.items():
        note = "" if s["repeatable"] else " (a second call counted differently!)"
        print(f"{provider} sync: bytecodes per call, bare {s['bare']:,}{note}")
        for config, n in s["added"].items():
            print(f"  {config:18s} added {n:7,}")
        groups = ", ".join(f"{name} {n:,}" for name, n in s["tokentrace_groups"].items())
        print(
            f"  tokentrace = {s['x_floor']:.2f}x the floor, {s['x_16_attributes']:.2f}x the 16-attribute span"
        )
        print(f"  tokentrace's call, by where it runs: {groups}")
        for name, n in list(s["tokentrace_functions"].items())[: args.top]:
            print(f"    {n:6,}  {name}")


if __name__ == "__main__":
    main()
