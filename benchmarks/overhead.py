"""Per-call overhead of tokentrace, against a bare SDK call and a hand-written OTel span.

For each provider (openai, anthropic) it times, in one process and alternating round by round:

- ``bare``: the official SDK call, uninstrumented, over an in-process transport that serves a
  recorded real response (so no network time is measured);
- ``otel-span``: the same call inside one hand-written OpenTelemetry span with 10 attributes
  (the floor any instrumentation pays);
- ``tokentrace``: the same call, instrumented, inside a ``tokentrace.task``;
- ``tokentrace+metrics``: the same, with an SDK MeterProvider collecting tokentrace's metrics.

Every configuration uses the SDK TracerProvider with a BatchSpanProcessor and an exporter
that drops spans. Configurations alternate in small batches so that drift in machine speed
affects them alike; each call is timed on its own, with the garbage collector paused, and the
median is reported with its interquartile range. It prints the ratio of tokentrace's added
time to the floor's added time (target: <= 1.5x).

    python benchmarks/overhead.py [--batch 25] [--rounds 80] [--provider openai|anthropic|all]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx2
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind
from tests.support.cassettes import load

import tokentrace
from tokentrace import _telemetry

CASSETTES = ROOT / "tests" / "cassettes"
CLOCK = time.perf_counter_ns
RECORDINGS = {
    "openai": "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_prompt_caching_cache_read.yaml",
    "anthropic": "dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion_cache_read.yaml",
}


class DropExporter(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def make_call(provider: str) -> Callable[[], Any]:
    (interaction,) = load(CASSETTES / RECORDINGS[provider])
    headers, body, status = interaction.headers, interaction.body, interaction.status

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, headers=headers, content=body)

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    # A short request: the SDK's request transformation grows with the prompt and only adds noise.
    model = interaction.request_json()["model"]
    messages = [{"role": "user", "content": "Summarise ticket 1042 in one line."}]
    if provider == "openai":
        import openai

        client = openai.OpenAI(api_key="sk-bench", http_client=http, max_retries=0)
        return lambda: client.chat.completions.create(model=model, messages=messages)
    import anthropic

    # The anthropic SDK traces its own calls when a TracerProvider is set; tokentrace replaces that
    # span with its own. Switch the SDK's off so "bare" is the SDK alone in every configuration.
    client = anthropic.Anthropic(
        api_key="sk-ant-bench", http_client=http, max_retries=0, open_telemetry=False
    )
    return lambda: client.messages.create(model=model, messages=messages, max_tokens=256)


def floor_call(call: Callable[[], Any], provider: str) -> Callable[[], Any]:
    """The call inside one hand-written OpenTelemetry span with 10 attributes (the floor)."""
    tracer = trace.get_tracer("bench")

    def floor() -> Any:
        with tracer.start_as_current_span(
            "chat model",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": "model",
                "server.address": "api.example.com",
                "gen_ai.request.max_tokens": 100,
            },
        ) as span:
            result = call()
            span.set_attributes(
                {
                    "gen_ai.response.model": "model",
                    "gen_ai.response.id": "id",
                    "gen_ai.usage.input_tokens": 10,
                    "gen_ai.usage.output_tokens": 20,
                    "gen_ai.response.finish_reasons": ("stop",),
                }
            )
            return result

    return floor


def timed(fn: Callable[[], Any], calls: int, out: list[float]) -> None:
    """Time ``calls`` calls one by one (microseconds each), with the garbage collector paused."""
    gc.collect()
    gc.disable()
    try:
        for _ in range(calls):
            start = CLOCK()
            fn()
            out.append((CLOCK() - start) / 1000.0)
    finally:
        gc.enable()


def run(provider: str, batch: int, rounds: int) -> dict[str, Any]:
    call = make_call(provider)
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])

    floor = floor_call(call, provider)

    configs = ["bare", "otel-span", "tokentrace", "tokentrace+metrics"]
    samples: dict[str, list[float]] = {name: [] for name in configs}
    for round_index in range(rounds + 1):
        order = configs if round_index % 2 == 0 else list(reversed(configs))
        for name in order:
            # Round 0 warms caches (price lookup, imports, SDK internals) and is not kept.
            out = samples[name] if round_index > 0 else []
            if name.startswith("tokentrace"):
                tokentrace.instrument(provider)
                _telemetry.use_providers(None, meter_provider if name.endswith("metrics") else None)
                try:
                    with tokentrace.task("bench"):
                        timed(call, batch, out)
                finally:
                    tokentrace.uninstrument(provider)
            else:
                timed(floor if name == "otel-span" else call, batch, out)
    summary: dict[str, dict[str, float]] = {}
    for name, values in samples.items():
        q = statistics.quantiles(values, n=4)
        summary[name] = {
            "median_us": statistics.median(values),
            "p25_us": q[0],
            "p75_us": q[2],
            "n": len(values),
        }
    bare = summary["bare"]["median_us"]
    floor_added = summary["otel-span"]["median_us"] - bare
    summary["otel-span"]["added_us"] = floor_added
    for name in ("tokentrace", "tokentrace+metrics"):
        added = summary[name]["median_us"] - bare
        summary[name]["added_us"] = added
        summary[name]["ratio_to_floor"] = added / floor_added if floor_added > 0 else float("nan")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=25, help="calls per configuration per round")
    parser.add_argument("--rounds", type=int, default=80, help="measured rounds (plus one warm-up)")
    parser.add_argument("--provider", choices=["openai", "anthropic", "all"], default="all")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    # The recorded models are deprecated; the SDK's warning would be timed in every configuration.
    warnings.simplefilter("ignore", DeprecationWarning)

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter(), max_queue_size=100_000))
    trace.set_tracer_provider(provider)
    tokentrace.uninstrument()

    providers = ["openai", "anthropic"] if args.provider == "all" else [args.provider]
    report = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu": platform.processor(),
        },
        "calls_per_round": args.batch,
        "rounds": args.rounds,
        "results": {p: run(p, args.batch, args.rounds) for p in providers},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"python {report['machine']['python']} on {report['machine']['platform']}")
    print(f"{args.batch} calls x {args.rounds} alternating rounds; median per call (p25-p75)\n")
    for name, summary in report["results"].items():
        print(f"{name}:")
        for config, s in summary.items():
            extra = ""
            if "added_us" in s:
                extra = f"  added {s['added_us']:6.1f} us"
            if "ratio_to_floor" in s:
                extra += f"  = {s['ratio_to_floor']:.2f}x the floor"
            print(f"  {config:20s} {s['median_us']:8.1f} us  ({s['p25_us']:.1f}-{s['p75_us']:.1f}){extra}")
        print()


if __name__ == "__main__":
    main()
