"""Per-call overhead of tokentrace and of its peers, against a bare SDK call and a hand-written span.

For each provider (openai, anthropic) and mode, it times in one process, alternating round by
round so that drift in machine speed affects every configuration alike:

- ``bare``: the official SDK call, uninstrumented, over an in-process transport that serves a
  recorded real response (so no network time is measured);
- ``otel-span``: the same call inside one hand-written OpenTelemetry span with 10 attributes
  (the floor any instrumentation pays);
- ``tokentrace``: the same call, instrumented, inside a ``tokentrace.task``;
- ``tokentrace+metrics``: the same, with an SDK MeterProvider collecting tokentrace's metrics;
- each peer instrumentation that is installed (``--peers``): OTel contrib openai-v2,
  OpenLLMetry, OpenInference, Logfire. Install them in a separate environment
  (``benchmarks/peers.sh``). Not every peer undoes its patches (OpenLLMetry's openai
  instrumentor leaves its wrappers in place, so switching it on and off stacks them), so each
  peer runs in a process of its own, instrumented once, and its added time is against the bare
  call and floor measured in the main process of the same run.

Modes: ``sync``, ``async`` (one event loop, one ``run_until_complete`` per call in every
configuration), and streams of 2 and 202 content chunks (``stream-2``, ``stream-202``). The
per-chunk cost is the difference between the two stream lengths divided by 200; the per-call cost
of a stream is the added time of the 2-chunk one. Stream bodies are written here (recorded
streams have a fixed length), in the providers' wire format.

Every configuration uses the SDK TracerProvider with a BatchSpanProcessor and an exporter that
drops spans. Each call is timed on its own, with the garbage collector paused; the median is
reported with its interquartile range.

    python benchmarks/overhead.py [--rounds 60] [--batch 20] [--provider openai|anthropic|all]
                                  [--mode sync|async|stream|all] [--peers] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import itertools
import json
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
MODES = ("sync", "async", "stream-2", "stream-202")
MESSAGES = [{"role": "user", "content": "Summarise ticket 1042 in one line."}]
# Each call asks about another ticket: a task that sends the same request over and over is the
# duplicate-call case, which tokentrace flags (one more span attribute), not a typical call.
# The prompts are built here, once, so every configuration pays the same for picking one.
DISTINCT = 4096
PROMPTS = [[{"role": "user", "content": f"Summarise ticket {n} in one line."}] for n in range(DISTINCT)]


class DropExporter(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _sse(events: list[tuple[str | None, dict[str, Any]]], done: bool) -> bytes:
    out = []
    for name, data in events:
        out.append((f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def stream_body(provider: str, chunks: int) -> bytes:
    """A streamed response of ``chunks`` content chunks with the provider's usage at the end."""
    if provider == "openai":
        base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-08-06"}
        events = [
            (None, {**base, "choices": [{"index": 0, "delta": {"content": "word "}}]}) for _ in range(chunks)
        ]
        events.append((None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        usage = {"prompt_tokens": 1220, "completion_tokens": chunks, "total_tokens": 1220 + chunks}
        events.append((None, {**base, "choices": [], "usage": usage}))
        return _sse(events, done=True)
    message = {
        "id": "m1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 1000},
    }
    events = [
        ("message_start", {"type": "message_start", "message": message}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "word "}}
    events += [("content_block_delta", delta)] * chunks
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": chunks},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return _sse(events, done=False)


def make_call(provider: str, mode: str = "sync", repeat: bool = False) -> Callable[[], Any]:
    """One complete call (for streams: the call and every chunk) as a zero-argument function.

    Successive calls send distinct requests (``PROMPTS``, in turn), or with ``repeat`` the same
    one (``MESSAGES``) every time: within a task, every call after the first is then a duplicate.
    """
    (interaction,) = load(CASSETTES / RECORDINGS[provider])
    status, headers, body = interaction.status, interaction.headers, interaction.body
    if mode.startswith("stream"):
        body = stream_body(provider, int(mode.split("-")[1]))
        headers = [("content-type", "text/event-stream")]

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, headers=headers, content=body)

    async def async_handler(request: httpx2.Request) -> httpx2.Response:
        return handler(request)

    use_async = mode == "async"
    transport = httpx2.MockTransport(async_handler if use_async else handler)
    http: Any = httpx2.AsyncClient(transport=transport) if use_async else httpx2.Client(transport=transport)
    model = interaction.request_json()["model"]
    stream = mode.startswith("stream")
    if provider == "openai":
        import openai

        cls = openai.AsyncOpenAI if use_async else openai.OpenAI
        client = cls(api_key="sk-bench", http_client=http, max_retries=0)
        kwargs: dict[str, Any] = {"model": model}
        if stream:
            kwargs.update(stream=True, stream_options={"include_usage": True})
        resource = client.chat.completions
    else:
        import anthropic

        # The anthropic SDK traces its own calls when a TracerProvider is set; switch that off so
        # that "bare" is the SDK alone in every configuration.
        cls = anthropic.AsyncAnthropic if use_async else anthropic.Anthropic
        client = cls(api_key="sk-ant-bench", http_client=http, max_retries=0, open_telemetry=False)
        kwargs = {"model": model, "max_tokens": 256, "stream": stream}
        resource = client.messages
    prompts = itertools.cycle([MESSAGES] if repeat else PROMPTS)
    # ``create`` is looked up on every call: instrumentations patch the class after this returns.
    if use_async:
        loop = asyncio.new_event_loop()
        run = loop.run_until_complete
        return lambda: run(resource.create(messages=next(prompts), **kwargs))
    if stream:
        return lambda: sum(1 for _ in resource.create(messages=next(prompts), **kwargs))
    return lambda: resource.create(messages=next(prompts), **kwargs)


# The six attributes a tokentrace call span carries beyond the floor's ten (16 in all).
EXTRA_ATTRIBUTES = {
    "gen_ai.usage.cache_read.input_tokens": 0,
    "gen_ai.usage.cache_write.input_tokens": 0,
    "gen_ai.usage.reasoning.output_tokens": 0,
    "tokentrace.task.id": "8f1c2a7e5b3d4f60",
    "tokentrace.cost.usd": 0.00261,
    "tokentrace.cost.status": "priced",
}


def floor_call(call: Callable[[], Any], provider: str, extra: bool = False) -> Callable[[], Any]:
    """The call inside one hand-written OpenTelemetry span with 10 attributes (the floor), or with
    ``extra`` as many as a tokentrace call span carries (16: the cost of its attribute count)."""
    tracer = trace.get_tracer("bench")
    more = EXTRA_ATTRIBUTES if extra else {}

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
                    **more,
                }
            )
            return result

    return floor


@dataclass
class Peer:
    """An installed peer instrumentation: how to switch it on and off for one provider."""

    name: str
    package: str
    on: Callable[[], Any]
    off: Callable[[], Any]


_LOGFIRE_CONFIGURED: list[bool] = []


def _instrumentor(module: str, cls: str) -> Any:
    return getattr(importlib.import_module(module), cls)()


def peers(provider: str, tracer_provider: TracerProvider, only: str | None = None) -> list[Peer]:
    """The peers installed in this environment that instrument ``provider`` (or only ``only``)."""
    found: list[Peer] = []
    specs = {
        "openai": [
            (
                "otel-contrib",
                "opentelemetry-instrumentation-openai-v2",
                "opentelemetry.instrumentation.openai_v2",
                "OpenAIInstrumentor",
            ),
            (
                "openllmetry",
                "opentelemetry-instrumentation-openai",
                "opentelemetry.instrumentation.openai",
                "OpenAIInstrumentor",
            ),
            (
                "openinference",
                "openinference-instrumentation-openai",
                "openinference.instrumentation.openai",
                "OpenAIInstrumentor",
            ),
        ],
        "anthropic": [
            (
                "openllmetry",
                "opentelemetry-instrumentation-anthropic",
                "opentelemetry.instrumentation.anthropic",
                "AnthropicInstrumentor",
            ),
            (
                "openinference",
                "openinference-instrumentation-anthropic",
                "openinference.instrumentation.anthropic",
                "AnthropicInstrumentor",
            ),
        ],
    }[provider]
    for name, package, module, cls in specs:
        if only is not None and name != only:
            continue
        try:
            inst = _instrumentor(module, cls)
        except ImportError:
            continue
        found.append(
            Peer(
                name,
                package,
                lambda inst=inst: inst.instrument(tracer_provider=tracer_provider),
                lambda inst=inst: inst.uninstrument(),
            )
        )
    if only not in (None, "logfire"):
        return found
    try:
        import logfire
    except ImportError:
        return found
    if not _LOGFIRE_CONFIGURED:
        # Logfire keeps its own TracerProvider: give it the same batch processor and dropping
        # exporter as every other configuration.
        logfire.configure(
            send_to_logfire=False,
            console=False,
            inspect_arguments=False,
            additional_span_processors=[BatchSpanProcessor(DropExporter(), max_queue_size=100_000)],
        )
        _LOGFIRE_CONFIGURED.append(True)
    handle: dict[str, Any] = {}
    method = logfire.instrument_openai if provider == "openai" else logfire.instrument_anthropic

    def on() -> None:
        handle["cm"] = method()  # instruments now; leaving the context manager undoes it
        handle["cm"].__enter__()

    def off() -> None:
        cm = handle.pop("cm")
        cm.__exit__(None, None, None)

    found.append(Peer("logfire", "logfire", on, off))
    return found


PEERS = ("otel-contrib", "openllmetry", "openinference", "logfire")


def merge_peer(results: dict[str, dict[str, Any]], name: str, argv: list[str]) -> None:
    """Run one peer in a process of its own and add its row to ``results``, against the bare call
    and the floor of the main process."""
    import subprocess

    args = [a for a in argv if a not in ("--peers", "--json")]
    out = subprocess.run(
        [sys.executable, __file__, *args, "--json", "--only-peer", name],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for provider, by_mode in json.loads(out)["results"].items():
        for mode, summary in by_mode.items():
            if name not in summary:
                continue
            row = dict(summary[name])
            main = results[provider][mode]
            row["added_us"] = row["median_us"] - main["bare"]["median_us"]
            floor = main["otel-span"]["added_us"]
            row["ratio_to_floor"] = row["added_us"] / floor if floor > 0 else float("nan")
            row["own_process"] = True
            main[name] = row


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


def run(
    provider: str, mode: str, batch: int, rounds: int, peer: str | None, tp: TracerProvider
) -> dict[str, Any]:
    call = make_call(provider, mode)
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    floor = floor_call(call, provider)
    if peer:
        return run_peer(call, provider, peer, batch, rounds, tp)
    configs = ["bare", "otel-span", "tokentrace"]
    if mode == "sync":
        configs.append("tokentrace+metrics")
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
    for name in configs[1:]:
        summary[name]["added_us"] = summary[name]["median_us"] - bare
        if name != "otel-span":
            summary[name]["ratio_to_floor"] = (
                summary[name]["added_us"] / floor_added if floor_added > 0 else float("nan")
            )
    return summary


def run_peer(
    call: Callable[[], Any], provider: str, name: str, batch: int, rounds: int, tp: TracerProvider
) -> dict[str, Any]:
    """One peer, switched on once for the whole process (see the module docstring)."""
    found = [p for p in peers(provider, tp, name)]
    if not found:
        return {}
    found[0].on()
    samples: list[float] = []
    for round_index in range(rounds + 1):
        timed(call, batch, samples if round_index > 0 else [])
    q = statistics.quantiles(samples, n=4)
    return {
        name: {"median_us": statistics.median(samples), "p25_us": q[0], "p75_us": q[2], "n": len(samples)}
    }


def versions() -> dict[str, str]:
    names = [
        "openai",
        "anthropic",
        "opentelemetry-sdk",
        "opentelemetry-instrumentation-openai-v2",
        "opentelemetry-instrumentation-openai",
        "opentelemetry-instrumentation-anthropic",
        "openinference-instrumentation-openai",
        "openinference-instrumentation-anthropic",
        "logfire",
    ]
    out = {"tokentrace": tokentrace.__version__}
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=20, help="calls per configuration per round")
    parser.add_argument("--rounds", type=int, default=60, help="measured rounds (plus one warm-up)")
    parser.add_argument("--provider", choices=["openai", "anthropic", "all"], default="all")
    parser.add_argument("--mode", choices=["sync", "async", "stream", "all"], default="all")
    parser.add_argument("--peers", action="store_true", help="also time the peer instrumentations installed")
    parser.add_argument("--only-peer", help=argparse.SUPPRESS)  # one peer's own process
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    # The recorded models are deprecated; the SDK's warning would be timed in every configuration.
    warnings.simplefilter("ignore", DeprecationWarning)

    tp = TracerProvider()
    tp.add_span_processor(BatchSpanProcessor(DropExporter(), max_queue_size=100_000))
    trace.set_tracer_provider(tp)
    tokentrace.uninstrument()

    providers = ["openai", "anthropic"] if args.provider == "all" else [args.provider]
    modes = {"all": MODES, "stream": ("stream-2", "stream-202")}.get(args.mode, (args.mode,))
    results: dict[str, dict[str, Any]] = {}
    for provider in providers:
        results[provider] = {}
        for mode in modes:
            results[provider][mode] = run(provider, mode, args.batch, args.rounds, args.only_peer, tp)
            print(f"{provider} {mode} done", file=sys.stderr)
    if args.peers and not args.only_peer:
        for name in PEERS:
            merge_peer(results, name, sys.argv[1:])
    report = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": _cpus()},
        "versions": versions(),
        "calls_per_round": args.batch,
        "rounds": args.rounds,
        "results": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"python {report['machine']['python']} on {report['machine']['platform']}")
    print(f"{args.batch} calls x {args.rounds} alternating rounds; median per call (p25-p75)\n")
    for provider, by_mode in results.items():
        for mode, summary in by_mode.items():
            print(f"{provider} {mode}:")
            for config, s in summary.items():
                extra = f"  added {s['added_us']:7.1f} us" if "added_us" in s else ""
                if "ratio_to_floor" in s:
                    extra += f"  = {s['ratio_to_floor']:.2f}x the floor"
                print(
                    f"  {config:20s} {s['median_us']:8.1f} us  ({s['p25_us']:.1f}-{s['p75_us']:.1f}){extra}"
                )
            print()


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
