"""Regenerate docs/performance.md from a benchmark run (no figure in it is typed by hand).

Runs, one after the other so that they do not disturb each other:

1. ``overhead.py --json --ablations`` (wall clock per call: sync, async, streams), with
   ``--peers`` under ``--peers-python`` (the environment ``benchmarks/peers.sh`` builds) when given;
2. ``instructions.py --json`` (callgrind instruction counts, when valgrind is installed);
3. ``bytecodes.py --json`` (Python bytecodes per call: deterministic, seconds to run);
4. ``micro.py --json`` (import time, price computation, memory per task, RSS over many calls,
   throughput);

saves their JSON under ``benchmarks/results/`` and writes docs/performance.md from it.
``--render`` only rewrites the page from the saved JSON; ``--ledger`` times the reports and the
dashboard on 1,000,000 calls (``ledger_report.py``, which builds that ledger once, then keeps it in
the temp directory) and keeps the other results; ``--instructions-only`` re-counts the
instructions and the bytecodes (deterministic: they need no quiet machine) and keeps the other results;
``--keep-micro`` measures the wall clock and the instructions and keeps micro.py's results (its
RSS run alone takes about 40 minutes). Each result file records the commit and time it was
measured at, and the page says so.

    python benchmarks/report.py [--peers-python .bench-peers/bin/python] [--calls 1000000]
    python benchmarks/report.py --peers-python .bench-peers/bin/python --keep-micro
    python benchmarks/report.py --instructions-only
    python benchmarks/report.py --ledger
    python benchmarks/report.py --render
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
PAGE = ROOT / "docs" / "performance.md"
PEER_NAMES = {
    "otel-contrib": "OTel contrib openai-v2",
    "openllmetry": "OpenLLMetry",
    "openinference": "OpenInference",
    "logfire": "Logfire",
}


def _run(python: str, script: str, *args: str) -> dict[str, Any]:
    print(f"running {script} {' '.join(args)}", file=sys.stderr)
    out = subprocess.run(
        [python, str(HERE / script), "--json", *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def _stamp(result: dict[str, Any]) -> dict[str, Any]:
    """Record when, and at which commit, ``result`` was measured."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=HERE, capture_output=True, text=True
        )
        if dirty.stdout.strip():
            commit += " with uncommitted changes"
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {**result, "commit": commit, "measured": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def collect_instructions() -> None:
    """The deterministic counts: callgrind's instructions (when valgrind is installed) and bytecodes."""
    if shutil.which("valgrind"):
        (RESULTS / "instructions.json").write_text(
            json.dumps(_stamp(_run(sys.executable, "instructions.py")), indent=2)
        )
    if shutil.which("valgrind"):
        (RESULTS / "wire.json").write_text(json.dumps(_stamp(_run(sys.executable, "wire.py")), indent=2))
    (RESULTS / "bytecodes.json").write_text(
        json.dumps(_stamp(_run(sys.executable, "bytecodes.py")), indent=2)
    )


def collect(args: argparse.Namespace) -> None:
    RESULTS.mkdir(exist_ok=True)
    python = args.peers_python or sys.executable
    overhead_args = ["--seconds", str(args.seconds), "--ablations"] + (
        ["--peers"] if args.peers_python else []
    )
    overhead = _stamp(_run(python, "overhead.py", *overhead_args))
    (RESULTS / "overhead.json").write_text(json.dumps(overhead, indent=2))
    if args.keep_micro:
        collect_instructions()
        return
    # The timed parts run alone; the RSS run and the instruction counts (neither depends on
    # timing) then run side by side.
    micro = _run(sys.executable, "micro.py", "--calls", "0")
    rss = subprocess.Popen(
        [sys.executable, str(HERE / "micro.py"), "--json", "--only-rss", "--calls", str(args.calls)],
        stdout=subprocess.PIPE,
        text=True,
    )
    collect_instructions()
    out, _ = rss.communicate()
    micro["rss"] = json.loads(out)["rss"]
    micro["when"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    micro["cpu"] = _cpu_model()
    (RESULTS / "micro.json").write_text(json.dumps(_stamp(micro), indent=2))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _us(value: float) -> str:
    return f"{value:,.1f} us"


def _check(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _verdict(low: float, high: float, target: float) -> str:
    """A target judged on a measurement's 95% interval: met only when all of it is within."""
    if high <= target:
        return "met"
    if low > target:
        return "**missed**"
    return "**not shown** (the interval spans the target)"


def render() -> str:
    overhead = json.loads((RESULTS / "overhead.json").read_text())
    micro = json.loads((RESULTS / "micro.json").read_text())
    instr_path = RESULTS / "instructions.json"
    instructions = json.loads(instr_path.read_text()) if instr_path.exists() else None
    bytecodes_path = RESULTS / "bytecodes.json"
    bytecodes = json.loads(bytecodes_path.read_text()) if bytecodes_path.exists() else None
    m = overhead["machine"]
    lines = [
        "# Performance",
        "",
        "<!-- Generated by benchmarks/report.py from benchmarks/results/*.json. Do not edit by hand. -->",
        "",
        f"Measured {micro['when']} on {micro['cpu']}, {m['cpus']} CPUs, Python {m['python']}, {m['platform']}.",
        *_runs(overhead, micro, instructions, bytecodes),
        "Versions: " + ", ".join(f"{k} {v}" for k, v in overhead["versions"].items()) + ".",
        "",
        "Every configuration uses the OpenTelemetry SDK TracerProvider with a BatchSpanProcessor and an",
        "exporter that drops spans; SDK calls go over an in-process transport that serves a recorded real",
        "response, so no network time is measured. *Added* is what a configuration adds to the bare SDK call.",
        "The *floor* is the same call inside one hand-written span with 10 attributes: what any",
        "instrumentation pays at least.",
        "",
        "## Targets",
        "",
        "| Target | Measured | |",
        "|---|---|---|",
    ]
    rows = []
    for provider, by_mode in overhead["results"].items():
        sync = by_mode.get("sync")
        if sync:
            tt = sync["tokentrace"]
            ratio, (low, high) = tt["ratio_to_floor"], tt.get("ratio_ci", (tt["ratio_to_floor"],) * 2)
            rows.append(
                (
                    f"{provider} sync call: at most 1.5x the floor (wall clock)",
                    f"{ratio:.2f}x, 95% interval {low:.2f}x to {high:.2f}x"
                    f" ({_us(tt['added_us'])} vs {_us(sync['otel-span']['added_us'])})",
                    _verdict(low, high, 1.5),
                )
            )
    if instructions:
        for provider, by_mode in instructions["results"].items():
            counts = by_mode["sync"]
            floor = counts["otel-span"] - counts["bare"]
            ratio = (counts["tokentrace"] - counts["bare"]) / floor
            rows.append(
                (
                    f"{provider} sync call: at most 1.5x the floor (instructions)",
                    f"{ratio:.2f}x ({counts['tokentrace'] - counts['bare']:,.0f} vs {floor:,.0f})",
                    _check(ratio <= 1.5),
                )
            )
            if "per-chunk" in by_mode and "sync" in overhead["results"].get(provider, {}):
                per_chunk = by_mode["per-chunk"]["tokentrace"]
                # Convert with the bare call's own speed on this machine: instructions per microsecond.
                speed = counts["bare"] / overhead["results"][provider]["sync"]["bare"]["median_us"]
                rows.append(
                    (
                        f"{provider} stream: at most 1 us per chunk beyond the per-call cost",
                        f"{per_chunk:,.0f} instructions = {per_chunk / speed:.2f} us at this machine's {speed:,.0f} instructions/us",
                        _check(per_chunk / speed <= 1.0),
                    )
                )
    if bytecodes:
        for provider, b in bytecodes["results"].items():
            rows.append(
                (
                    f"{provider} sync call: at most 1.5x the floor (bytecodes)",
                    f"{b['x_floor']:.2f}x ({b['added']['tokentrace']:,} vs {b['added']['otel-span']:,})",
                    _check(b["x_floor"] <= 1.5),
                )
            )
    price = micro["price"]
    rows.append(
        (
            "price computation, cached model: at most 2 us",
            _us(price["cached_us"]),
            _check(price["cached_us"] <= 2),
        )
    )
    imp = micro["import"]
    rows.append(
        ("`import tokentrace`: at most 50 ms", f"{imp['import_ms']:.1f} ms", _check(imp["import_ms"] <= 50))
    )
    rss = micro["rss"]["rss_mb"]
    # Flat means no growth once warm: a leak of 2 bytes per call would add 1 MB over the second
    # half of the run. The first half holds the warm-up (caches, allocator arenas, the batch span
    # processor's queue filling up to its bound of 2,048 spans), reported beside it.
    half = len(rss) // 2
    growth = rss[-1] - rss[half - 1] if len(rss) > 2 else 0.0
    rows.append(
        (
            f"flat memory over {micro['rss']['calls']:,} calls",
            f"{growth:+.1f} MB over the second half of the run"
            + (f" (warm-up: {rss[0]} MB to {rss[half - 1]} MB in the first half)" if len(rss) > 2 else ""),
            _check(growth <= 1),
        )
    )
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += ["", "## Per call, side by side (wall clock)", ""]
    lines += [
        "Each configuration runs in worker processes of its own, set up once and warmed; the workers",
        "take turns on one CPU, a short batch of calls each per round, the order reversed every other",
        "round (`benchmarks/overhead.py` says why). *Added* is the median over rounds of a",
        "configuration's mean batch median minus the bare call's in the same round; the intervals",
        "(95%) come from a bootstrap over rounds and over each configuration's processes. Peers are",
        "measured in the same rounds, each switched on once in its own processes. *Median* and",
        "*p25-p75* pool every timed call.",
        "",
    ]
    for provider, by_mode in overhead["results"].items():
        for mode, summary in by_mode.items():
            shape = overhead.get("rounds", {}).get(provider, {}).get(mode)
            lines += [f"### {provider}, {mode}", ""]
            if shape:
                lines += [
                    f"{shape['processes']} processes per configuration, {shape['rounds']} rounds of"
                    f" {shape['batch']} timed calls.",
                    "",
                ]
            lines += [
                "| configuration | median | p25-p75 | added (95% interval) | x floor (95% interval) |",
                "|---|---|---|---|---|",
            ]
            floor_ci = summary.get("otel-span", {}).get("added_ci_us")
            # A floor whose interval reaches zero gives ratios without bounds: say so instead.
            floor_resolved = floor_ci is None or floor_ci[0] > 0
            for config, s in summary.items():
                name = PEER_NAMES.get(config, config)
                added = ratio = ""
                if "added_us" in s:
                    added = _us(s["added_us"])
                    if "added_ci_us" in s:
                        low, high = s["added_ci_us"]
                        added += f" ({low:,.1f} to {high:,.1f})"
                if "ratio_to_floor" in s:
                    ratio = f"{s['ratio_to_floor']:.2f}x"
                    if "ratio_ci" in s:
                        low, high = s["ratio_ci"]
                        ratio += (
                            f" ({low:.2f} to {high:.2f})"
                            if floor_resolved
                            else " (the floor is within the noise)"
                        )
                lines.append(
                    f"| {name} | {_us(s['median_us'])} | {s['p25_us']:,.0f}-{s['p75_us']:,.0f} us | {added} | {ratio} |"
                )
            lines.append("")
        streams = by_mode.get("stream-2"), by_mode.get("stream-202")
        if all(streams):
            short, long = streams
            lines += [
                f"Per stream chunk ({provider}, 202-chunk minus 2-chunk stream, / 200; see the instruction"
                " counts for a noise-free figure):",
                "",
            ]
            for config in long:
                if config == "bare" or config not in short:
                    continue
                per_chunk = (long[config]["added_us"] - short[config]["added_us"]) / 200
                lines.append(f"- {PEER_NAMES.get(config, config)}: {per_chunk:+.2f} us per chunk")
            lines.append("")
    if instructions:
        lines += [
            "## Instructions per call (callgrind)",
            "",
            "Counts of the instructions executed per call (`benchmarks/instructions.py`). A sync figure is",
            f"the median of {instructions.get('repeat', 1)} processes, since the same code varies by a few thousand",
            "instructions per call from one process to the next (memory layout, random span ids); streams",
            "are counted once. Each call sends a request of its own.",
            "",
            "| provider | mode | bare | floor added | tokentrace added | x floor |",
            "|---|---|---|---|---|---|",
        ]
        for provider, by_mode in instructions["results"].items():
            for mode, counts in by_mode.items():
                if mode == "per-chunk":
                    continue
                bare = counts["bare"]
                floor = counts["otel-span"] - bare
                added = counts["tokentrace"] - bare
                ratio = f"{added / floor:.2f}x" if floor > 0 else ""
                lines.append(f"| {provider} | {mode} | {bare:,.0f} | {floor:,.0f} | {added:,.0f} | {ratio} |")
        lines.append("")
        lines += _where_it_goes(instructions)
    lines += _wire(instructions)
    if bytecodes:
        lines += _bytecodes(bytecodes, overhead, instructions)
    thr = micro["throughput"]
    mem = micro["memory"]
    lines += [
        "## Import, prices, memory, throughput",
        "",
        f"- `import tokentrace`: {imp['import_ms']:.1f} ms over the interpreter's own start-up"
        f" ({imp['interpreter_ms']:.0f} ms), {imp['modules_loaded']} modules: the public names load on first use."
        f" The first use (`tokentrace.task`) then takes {imp['first_use_ms']:.1f} ms, most of it OpenTelemetry's"
        f" API; {imp['first_use_after_otel_ms']:.1f} ms in an application that has already imported"
        " OpenTelemetry. The price database and the tokenizers load on the first call that needs them.",
        f"- Price computation: {_us(price['cached_us'])} per call for a model seen before; {_us(price['cold_us'])}"
        " for the first call of a model (database search, then cached).",
        f"- Memory per open task: {mem['bytes_per_open_task']:,.0f} bytes.",
        f"- RSS over {micro['rss']['calls']:,} instrumented calls, sampled every tenth: {rss} MB"
        f" ({micro['rss']['seconds']:.0f} s).",
        f"- Throughput, 8 threads: {thr['threads8_bare_per_s']:,.0f} calls/s bare,"
        f" {thr['threads8_tokentrace_per_s']:,.0f} instrumented.",
        f"- Throughput, 1,000 asyncio tasks: {thr['asyncio1000_bare_per_s']:,.0f} calls/s bare,"
        f" {thr['asyncio1000_tokentrace_per_s']:,.0f} instrumented.",
        "",
        "## Reproduce",
        "",
        "```bash",
        "bash benchmarks/peers.sh .bench-peers          # the peers, in their own environment",
        "python benchmarks/report.py --peers-python .bench-peers/bin/python",
        "python benchmarks/report.py --ledger    # the reports and the dashboard on 1,000,000 calls",
        "python benchmarks/fleet.py --url postgresql://USER:PASSWORD@127.0.0.1/bench --json  # then --render",
        "python benchmarks/limits.py --url postgresql://USER:PASSWORD@127.0.0.1/bench --json  # then --render",
        "```",
        "",
    ]
    ledger_path = RESULTS / "ledger.json"
    if ledger_path.exists():
        from ledger_report import render as render_ledger

        lines += render_ledger(json.loads(ledger_path.read_text()))
    fleet_path = RESULTS / "fleet.json"
    if fleet_path.exists():
        from fleet import render as render_fleet

        lines += render_fleet(json.loads(fleet_path.read_text()))
    limits_path = RESULTS / "limits.json"
    if limits_path.exists():
        from limits import render as render_limits

        lines += render_limits(json.loads(limits_path.read_text()))
    notes = RESULTS / "notes.md"
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    return "\n".join(lines)


def _runs(
    overhead: dict[str, Any],
    micro: dict[str, Any],
    instructions: dict[str, Any] | None,
    bytecodes: dict[str, Any] | None,
) -> list[str]:
    """Which commit each part was measured at, when the parts come from different runs."""
    parts = [("wall clock", overhead), ("import, prices, memory, throughput", micro)]
    if instructions:
        parts.append(("instruction counts", instructions))
    if bytecodes:
        parts.append(("bytecode counts", bytecodes))
    stamps = {(r.get("commit"), r.get("measured")) for _, r in parts}
    if stamps == {(None, None)}:
        return []
    return [
        "Runs: "
        + "; ".join(
            f"{name} at commit {r.get('commit', 'unrecorded')} ({r.get('measured', micro['when'])})"
            for name, r in parts
        )
        + "."
    ]


def _wire(instructions: dict[str, Any] | None) -> list[str]:
    """What the HTTP client integrations cost: on an SDK call (``tokentrace-all`` in
    instructions.json), on other traffic and on a call recorded on the wire (wire.json)."""
    path = RESULTS / "wire.json"
    wire = json.loads(path.read_text()) if path.exists() else None
    if wire is None:
        return []
    counts = wire["instructions"]
    lines = [
        "## The HTTP client layer (callgrind)",
        "",
        "`instrument()` with no names also patches httpx's and httpx2's `send`, requests'"
        " `Session.send`, aiohttp's `ClientSession._request`, botocore's `URLLib3Session.send` and"
        " lm15's `StdlibTransport.stream` (`benchmarks/wire.py`,"
        f" {wire['calls']} requests to a server on 127.0.0.1, median of {wire['repeat']} processes;"
        f" measured at {wire['commit']}, {wire['measured']}).",
        "",
        "| request | bare | with tokentrace | added | share of the request |",
        "|---|---|---|---|---|",
    ]
    for kind, label in (
        ("other", "`POST /api/orders`, no LLM call"),
        ("llm", "LLM call via the SDK client's `post()`"),
        ("requests", "`POST /api/orders` with requests, no LLM call"),
        ("aiohttp", "`POST /api/orders` with aiohttp, no LLM call"),
        ("botocore", "a signed DynamoDB `GetItem` (`POST /`) through botocore's `URLLib3Session.send`"),
        ("lm15", "`POST /api/orders` with lm15 (DSPy's default engine), no LLM call"),
    ):
        if f"{kind}-bare" not in counts:
            continue
        bare, instrumented = counts[f"{kind}-bare"], counts[f"{kind}-tokentrace"]
        added = instrumented - bare
        lines.append(f"| {label} | {bare:,.0f} | {instrumented:,.0f} | {added:+,.0f} | {added / bare:.2%} |")
    sdk = []
    for provider, by_mode in (instructions or {}).get("results", {}).items():
        counts_sync = by_mode.get("sync", {})
        if "tokentrace-all" in counts_sync:
            bare = counts_sync["bare"]
            own, every = counts_sync["tokentrace"] - bare, counts_sync["tokentrace-all"] - bare
            sdk.append(
                f"- {provider} SDK call with every integration instrumented (its request passes the HTTP"
                f" client's check unrecorded): {every:,.0f} instructions added against {own:,.0f} with"
                f" the {provider} integration alone ({(every - own) / own:+.1%})."
            )
    return [*lines, "", *sdk, *([""] if sdk else [])]


def _where_it_goes(instructions: dict[str, Any]) -> list[str]:
    """The sync call's added instructions split by two ablations measured in the same run."""
    lines: list[str] = []
    for provider, by_mode in instructions["results"].items():
        counts = by_mode.get("sync", {})
        if "otel-span-16" not in counts or "tokentrace-nodup" not in counts:
            continue
        bare = counts["bare"]
        floor, floor16 = counts["otel-span"] - bare, counts["otel-span-16"] - bare
        added, nodup = counts["tokentrace"] - bare, counts["tokentrace-nodup"] - bare
        repeated = counts["tokentrace-dup"] - bare if "tokentrace-dup" in counts else None
        if not lines:
            lines += [
                "### Where a sync call's added instructions go",
                "",
                "Ablations of the same run: a span with no attributes at all, the floor's span with as many",
                "attributes as a tokentrace call span (16 instead of 10), and tokentrace with duplicate detection off",
                "(`configure(detect_duplicates=False)`). Every call sends a request of its own; the last",
                "column is tokentrace when the task sends one request over and over instead, so that every",
                "call after the first is flagged a duplicate (one more span attribute).",
                "",
                "| provider | span, no attributes | 10-attribute floor | 16 attributes | duplicate detection |"
                " the rest of tokentrace | tokentrace added | x the 16-attribute span | repeated request |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
        shown = "" if repeated is None else f"{repeated:,.0f} ({repeated / floor:.2f}x the floor)"
        bare_span = f"{counts['otel-span-0'] - bare:,.0f}" if "otel-span-0" in counts else ""
        lines.append(
            f"| {provider} | {bare_span} | {floor:,.0f} | +{floor16 - floor:,.0f} | +{added - nodup:,.0f} |"
            f" +{nodup - floor16:,.0f} | {added:,.0f} | {added / floor16:.2f}x | {shown} |"
        )
    return [*lines, ""] if lines else []


# The configurations whose ratio to the floor each measure gives, side by side.
_COMPARED = ("tokentrace", "tokentrace-nodup", "otel-span-16", "otel-span-0")


def _bytecodes(
    bytecodes: dict[str, Any], overhead: dict[str, Any], instructions: dict[str, Any] | None
) -> list[str]:
    """Bytecodes per call, the three measures side by side, and what 1.5x the floor leaves tokentrace."""
    lines = [
        "## Bytecodes per call",
        "",
        "Python bytecode instructions the interpreter runs for one sync call (`benchmarks/bytecodes.py`:",
        "`sys.settrace` opcode events, in a warm process per configuration"
        + (
            "; a second call counts the same)."
            if all(b["repeatable"] for b in bytecodes["results"].values())
            else "; **a second call counted differently in some configuration**)."
        ),
        "They leave out C code (pickle, wrapt, the SDK's C parts), so they are a guide to the hot path,",
        "not the target's measure. Each call sends a request of its own.",
        "",
        "| provider | bare | span, no attributes | floor (10 attributes) | 16 attributes | tokentrace"
        " | without duplicate detection | x floor | x the 16-attribute span |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for provider, b in bytecodes["results"].items():
        a = b["added"]
        lines.append(
            f"| {provider} | {b['bare']:,} | {a['otel-span-0']:,} | {a['otel-span']:,} | {a['otel-span-16']:,}"
            f" | {a['tokentrace']:,} | {a['tokentrace-nodup']:,} | {b['x_floor']:.2f}x | {b['x_16_attributes']:.2f}x |"
        )
    rows, inside = [], {"instructions": 0, "bytecodes": 0, "intervals": 0}
    for provider, b in bytecodes["results"].items():
        wall = overhead["results"].get(provider, {}).get("sync", {})
        counts = (instructions or {}).get("results", {}).get(provider, {}).get("sync", {})
        for config in _COMPARED:
            ratio = b["added"][config] / b["added"]["otel-span"]
            instr, shown = "", ""
            if config in counts:
                instr_ratio = (counts[config] - counts["bare"]) / (counts["otel-span"] - counts["bare"])
                instr = f"{instr_ratio:.2f}x"
            if config in wall and "ratio_ci" in wall[config]:
                low, high = wall[config]["ratio_ci"]
                shown = f"{wall[config]['ratio_to_floor']:.2f}x ({low:.2f} to {high:.2f})"
                inside["intervals"] += 1
                inside["bytecodes"] += low <= ratio <= high
                inside["instructions"] += bool(instr) and low <= instr_ratio <= high
            rows.append(f"| {provider} | {config} | {shown} | {instr} | {ratio:.2f}x |")
    lines += [
        "",
        "### Each measure's ratio to the floor",
        "",
        "The same configurations, as a multiple of what the floor adds, by each measure. Of the"
        f" {inside['intervals']} wall-clock intervals, the bytecode ratio lies inside {inside['bytecodes']} and"
        f" callgrind's instruction ratio inside {inside['instructions']}: instructions weigh C code (the SDK's,"
        " pickle's, wrapt's) the same as the interpreter's work.",
        "",
        "| provider | configuration | wall clock (95% interval) | instructions | bytecodes |",
        "|---|---|---|---|---|",
        *rows,
    ]
    lines += ["", "### What 1.5x the floor leaves tokentrace's own code", ""]
    for provider, b in bytecodes["results"].items():
        a, groups = b["added"], b["tokentrace_groups"]
        budget = 1.5 * a["otel-span"]
        otel = groups["opentelemetry"]
        own = a["tokentrace"] - otel
        top = ", ".join(f"`{name}` {n:,}" for name, n in list(b["tokentrace_functions"].items())[:6])
        lines += [
            f"- {provider}: 1.5x the floor is {budget:,.0f} bytecodes. OpenTelemetry's own work for"
            f" tokentrace's call span (16 attributes, its context) takes {otel:,} of them, which leaves"
            f" {budget - otel:,.0f} for tokentrace's code; it runs {own:,} ({groups['tokentrace']:,} in"
            f" tokentrace's modules, {own - groups['tokentrace']:,} in the standard library on its behalf)."
            f" The largest: {top}.",
        ]
    lines += [
        "- Against a span with no attributes at all, 1.5x is less than OpenTelemetry's work for a call"
        " span that carries the usage, cost and task attributes alone.",
        "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peers-python", help="a Python with the peers installed (benchmarks/peers.sh)")
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls for the RSS run")
    parser.add_argument("--seconds", type=float, default=45, help="overhead.py's time per provider and mode")
    parser.add_argument(
        "--keep-micro",
        action="store_true",
        help="measure the wall clock and the instructions again, keep micro.py's results (its RSS run takes 40 min)",
    )
    parser.add_argument("--render", action="store_true", help="only rewrite the page from the saved JSON")
    parser.add_argument(
        "--instructions-only", action="store_true", help="re-count instructions, keep the other results"
    )
    parser.add_argument(
        "--ledger",
        action="store_true",
        help="time the reports and the dashboard on 1,000,000 calls (ledger_report.py), keep the other results",
    )
    args = parser.parse_args()
    if args.ledger:
        (RESULTS / "ledger.json").write_text(
            json.dumps(_stamp(_run(sys.executable, "ledger_report.py")), indent=2)
        )
    elif args.instructions_only:
        collect_instructions()
    elif not args.render:
        collect(args)
    PAGE.write_text(render())
    print(f"wrote {PAGE}", file=sys.stderr)


if __name__ == "__main__":
    main()
