"""Per-call overhead of tokentrace and of its peers, against a bare SDK call and a hand-written span.

Every configuration runs in worker processes of its own (``--processes`` each), set up once and
warmed, and the workers take turns on one CPU: each round, every worker in turn times a short
batch of calls while the others wait (the order reverses every other round). So

- each configuration is measured in its steady state. Switching an instrumentation on and off
  in one process (patching and restoring SDK classes) throws away CPython's specialised bytecode
  and caches, and the next fifteen or so calls run up to 700 us slower;
- peers that do not undo their patches need no special treatment: none is ever switched off;
- drift in the machine's speed (a shared machine's neighbours, its clock) moves every
  configuration of a round alike. A configuration's *added* time is the median over rounds of
  its processes' mean batch median, minus the bare call's in the same round;
- what differs from one process to the next (memory layout, hash seeds: a few per cent of a
  call) is averaged over the processes, and the 95% intervals (a bootstrap over rounds and over
  each configuration's processes) hold it as well as the noise between rounds. Every worker runs
  on the same CPU (the last one) once it is warm, so none is measured after moving between CPUs.

The configurations, for each provider (openai, anthropic) and mode:

- ``bare``: the official SDK call, uninstrumented, over an in-process transport that serves a
  recorded real response (so no network time is measured);
- ``otel-span``: the same call inside one hand-written OpenTelemetry span with 10 attributes
  (the floor any instrumentation pays);
- ``tokentrace``: the same call, instrumented, inside a ``tokentrace.task`` (a new task for
  each batch);
- ``tokentrace+metrics``: the same, with an SDK MeterProvider collecting tokentrace's metrics;
- with ``--ablations`` (sync calls), where tokentrace's time goes: ``otel-span-0`` (a span with no
  attributes), ``otel-span-16`` (the floor's span with as many attributes as a tokentrace call
  span), ``tokentrace-nodup`` (duplicate detection off) and ``tokentrace-dup`` (every call repeats
  one request, so each one after the first in a task is flagged a duplicate);
- with ``--peers``, each peer instrumentation installed in this environment
  (``benchmarks/peers.sh``): OTel contrib openai-v2, OpenLLMetry, OpenInference, Logfire.

Modes: ``sync``, ``async`` (one event loop, one ``run_until_complete`` per call in every
configuration), and streams of 2 and 202 content chunks (``stream-2``, ``stream-202``). The
per-chunk cost is the difference between the two stream lengths divided by 200; the per-call cost
of a stream is the added time of the 2-chunk one. Stream bodies are written here (recorded
streams have a fixed length), in the providers' wire format.

Every configuration uses the SDK TracerProvider with a BatchSpanProcessor and an exporter that
drops spans. Each call is timed on its own, with the garbage collector paused during a batch
(objects alive after the warm-up are frozen out of collection, and a collection runs between
batches); the first call of each batch is not timed.

    python benchmarks/overhead.py [--seconds 45] [--processes 6] [--batch 10]
                                  [--provider openai|anthropic|all] [--mode sync|async|stream|all]
                                  [--ablations] [--peers] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import itertools
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx2
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind
from tests.support.cassettes import load

import tokentrace

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


def bare_span_call(call: Callable[[], Any]) -> Callable[[], Any]:
    """The call inside one hand-written span with no attributes at all."""
    tracer = trace.get_tracer("bench")

    def span() -> Any:
        with tracer.start_as_current_span("chat model", kind=SpanKind.CLIENT):
            return call()

    return span


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


CONFIGS = ("bare", "otel-span", "tokentrace", "tokentrace+metrics")
# Where tokentrace's time goes (as in instructions.py): a span with no attributes, the floor's span
# with as many attributes as a tokentrace call span (16), tokentrace without duplicate detection,
# and tokentrace when every call repeats one request (each one after the first in a task is
# flagged a duplicate).
ABLATIONS = ("otel-span-0", "otel-span-16", "tokentrace-nodup", "tokentrace-dup")
WARM_CALLS = {"sync": 300, "async": 300, "stream-2": 300, "stream-202": 30}
BATCH_DIVISOR = {"stream-202": 4}  # a 202-chunk stream takes about 40 calls' time: fewer per batch
BOOTSTRAP = 400
_SWITCHED_ON: list[Any] = []


def prepare(
    provider: str, mode: str, config: str, processor: BatchSpanProcessor | None = None
) -> Callable[[], Any]:
    """Set up this process as one configuration; returns the timed call, to be run in a batch.

    Spans go to ``processor`` (by default a BatchSpanProcessor whose exporter drops them).
    """
    tp = TracerProvider()
    exporter = DropExporter()
    tp.add_span_processor(processor or BatchSpanProcessor(exporter, max_queue_size=100_000))
    trace.set_tracer_provider(tp)
    call = make_call(provider, mode, repeat=config == "tokentrace-dup")
    if config == "bare":
        return call
    if config == "otel-span-0":
        return bare_span_call(call)
    if config.startswith("otel-span"):
        return floor_call(call, provider, extra=config == "otel-span-16")
    if config.startswith("tokentrace"):
        # tokentrace-all: every integration, as instrument() with no names patches them, the
        # HTTP clients' among them (the SDK's own request passes through them unrecorded).
        tokentrace.instrument(*(() if config == "tokentrace-all" else (provider,)))
        if config == "tokentrace-nodup":
            tokentrace.configure(detect_duplicates=False)
        if config.endswith("metrics"):
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader

            from tokentrace._telemetry import providers as _telemetry

            _telemetry.use_providers(None, MeterProvider(metric_readers=[InMemoryMetricReader()]))
        return call
    import peer_configs

    # Held for the life of the worker: Logfire's handle is a generator-based context manager,
    # and one collected as garbage is closed, which undoes its instrumentation.
    _SWITCHED_ON.append(peer_configs.switch_on(config, provider, tp, exporter))
    return call


def pin() -> None:
    """Run on one CPU for good: the last one (the parent and the machine's other work keep to the rest).

    Every worker takes turns on that CPU, so none is measured after moving between CPUs (cold
    caches) or on a CPU that its neighbours slow down more than another's.
    """
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})


def worker(provider: str, mode: str, config: str) -> None:
    """Serve batches on this process's stdin/stdout: a line ``n`` times ``n`` calls and answers their
    durations (ns) as one JSON line; end of input ends the worker."""
    # Answers go to a descriptor of their own: whatever the SDKs or peers print lands on stderr.
    answers: IO[str] = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    warnings.simplefilter("ignore", DeprecationWarning)
    fn = prepare(provider, mode, config)
    in_task = config.startswith("tokentrace")
    for _ in range(WARM_CALLS[mode]):
        fn()
    gc.collect()
    gc.freeze()  # everything alive now (modules, SDK clients, caches) is left out of collections
    pin()
    answers.write("ready\n")
    answers.flush()
    clock = CLOCK
    for line in sys.stdin:
        calls = int(line)
        durations = []
        # A new task for each batch: the prompts repeat after 4,096 calls, and a task sending one
        # again would flag it a duplicate.
        task = tokentrace.task("bench") if in_task else contextlib.nullcontext()
        gc.disable()
        try:
            with task:
                fn()  # the first call after another worker's batch warms this one's caches
                for _ in range(calls):
                    start = clock()
                    fn()
                    durations.append(clock() - start)
        finally:
            gc.enable()
        gc.collect()
        answers.write(json.dumps(durations) + "\n")
        answers.flush()


class Worker:
    """One configuration's worker process, seen from the parent."""

    def __init__(self, provider: str, mode: str, config: str, log: IO[str]) -> None:
        self.config = config
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", provider, mode, config],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )

    def _line(self) -> str:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            self.log.seek(0)
            raise RuntimeError(f"the {self.config} worker exited:\n{self.log.read()[-3000:]}")
        return line

    def ready(self) -> None:
        if self._line().strip() != "ready":
            raise RuntimeError(f"the {self.config} worker did not start")

    def batch(self, calls: int) -> list[float]:
        """Time ``calls`` calls; their durations in microseconds."""
        self.proc.stdin.write(f"{calls}\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return [ns / 1000.0 for ns in json.loads(self._line())]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait(timeout=60)


def run(
    provider: str,
    mode: str,
    configs: Sequence[str],
    processes: int,
    batch: int,
    seconds: float,
    min_rounds: int,
) -> dict[str, Any]:
    """Alternate ``processes`` workers of each configuration, round by round, for ``seconds`` (and
    ``min_rounds`` at least)."""
    batch = max(1, batch // BATCH_DIVISOR.get(mode, 1))
    with contextlib.ExitStack() as stack:
        workers = []
        for _ in range(processes):  # the configurations interleaved: c1, c2, c3, c1, c2, c3 ...
            for config in configs:
                log = stack.enter_context(tempfile.TemporaryFile("w+"))
                workers.append(Worker(provider, mode, config, log))
                stack.callback(workers[-1].close)
        for w in workers:
            w.ready()
        samples: dict[str, list[float]] = {c: [] for c in configs}
        # medians[config][process][round]: the median of one batch
        medians = {c: [[] for _ in range(processes)] for c in configs}
        deadline = time.monotonic() + seconds
        rounds = 0
        while rounds < min_rounds or time.monotonic() < deadline:
            for index in range(len(workers)) if rounds % 2 == 0 else reversed(range(len(workers))):
                w = workers[index]
                values = w.batch(batch)
                samples[w.config] += values
                medians[w.config][index // len(configs)].append(statistics.median(values))
            rounds += 1
    return {"rounds": rounds, "batch": batch, "processes": processes, "configs": summarise(samples, medians)}


def _added(
    medians: dict[str, list[list[float]]], picks: dict[str, list[int]], rounds: list[int]
) -> dict[str, float]:
    """Each configuration's added time: the median over ``rounds`` of its mean over the processes
    ``picks`` names, minus the bare call's in the same round."""

    def per_round(config: str) -> list[float]:
        chosen = [medians[config][i] for i in picks[config]]
        return [sum(p[r] for p in chosen) / len(chosen) for r in rounds]

    bare = per_round("bare")
    return {
        c: statistics.median([v - b for v, b in zip(per_round(c), bare, strict=True)])
        for c in medians
        if c != "bare"
    }


def summarise(samples: dict[str, list[float]], medians: dict[str, list[list[float]]]) -> dict[str, Any]:
    """Per configuration: the pooled median and quartiles, the added time and its ratio to the floor.

    The intervals come from a bootstrap that resamples both the rounds (kept paired across
    configurations) and each configuration's processes, so they hold the variation between
    processes (memory layout, hash seeds) as well as between rounds.
    """
    processes = len(medians["bare"])
    rounds = len(medians["bare"][0])
    everything = {c: list(range(processes)) for c in medians}
    point = _added(medians, everything, list(range(rounds)))
    rng = random.Random(0)
    boot: dict[str, list[float]] = {c: [] for c in point}
    ratios: dict[str, list[float]] = {c: [] for c in point}
    for _ in range(BOOTSTRAP):
        picks = {c: rng.choices(range(processes), k=processes) for c in medians}
        added = _added(medians, picks, rng.choices(range(rounds), k=rounds))
        for c, value in added.items():
            boot[c].append(value)
            floor = added["otel-span"]
            ratios[c].append(value / floor if floor > 0 else float("inf"))

    def interval(values: list[float]) -> list[float]:
        values = sorted(values)
        return [values[int(0.025 * len(values))], values[int(0.975 * len(values)) - 1]]

    summary: dict[str, Any] = {}
    for config, values in samples.items():
        q = statistics.quantiles(values, n=4)
        row: dict[str, Any] = {
            "median_us": statistics.median(values),
            "p25_us": q[0],
            "p75_us": q[2],
            "n": len(values),
        }
        if config != "bare":
            row["added_us"] = point[config]
            row["added_ci_us"] = interval(boot[config])
        if config not in ("bare", "otel-span"):
            floor = point["otel-span"]
            row["ratio_to_floor"] = point[config] / floor if floor > 0 else float("nan")
            row["ratio_ci"] = interval(ratios[config])
        summary[config] = row
    return summary


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
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=10, help="timed calls per configuration per round")
    parser.add_argument("--seconds", type=float, default=45, help="time spent on each provider and mode")
    parser.add_argument("--processes", type=int, default=6, help="worker processes per configuration")
    parser.add_argument("--min-rounds", type=int, default=20, help="rounds at least, however long they take")
    parser.add_argument("--provider", choices=["openai", "anthropic", "all"], default="all")
    parser.add_argument("--mode", choices=["sync", "async", "stream", "all"], default="all")
    parser.add_argument("--ablations", action="store_true", help="sync calls: also time the ablations")
    parser.add_argument("--peers", action="store_true", help="also time the peer instrumentations installed")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    import peer_configs

    providers = ["openai", "anthropic"] if args.provider == "all" else [args.provider]
    modes = {"all": MODES, "stream": ("stream-2", "stream-202")}.get(args.mode, (args.mode,))
    results: dict[str, dict[str, Any]] = {}
    rounds: dict[str, dict[str, Any]] = {}
    for provider in providers:
        results[provider], rounds[provider] = {}, {}
        for mode in modes:
            configs = list(CONFIGS if mode == "sync" else CONFIGS[:3])
            if args.ablations and mode == "sync":
                configs += ABLATIONS
            if args.peers:
                configs += peer_configs.installed(provider)
            measured = run(provider, mode, configs, args.processes, args.batch, args.seconds, args.min_rounds)
            results[provider][mode] = measured["configs"]
            rounds[provider][mode] = {k: measured[k] for k in ("rounds", "batch", "processes")}
            print(f"{provider} {mode}: {measured['rounds']} rounds", file=sys.stderr)
    report = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count() or 0,
        },
        "versions": versions(),
        "method": "workers",
        "seconds_per_mode": args.seconds,
        "rounds": rounds,
        "results": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"python {report['machine']['python']} on {report['machine']['platform']}")
    print("warm worker processes per configuration, taking turns batch by batch\n")
    for provider, by_mode in results.items():
        for mode, summary in by_mode.items():
            r = rounds[provider][mode]
            print(
                f"{provider} {mode} ({r['processes']} processes per configuration, {r['rounds']} rounds"
                f" of {r['batch']} calls): median per call (p25-p75), added (95% interval)"
            )
            for config, s in summary.items():
                extra = ""
                if "added_us" in s:
                    lo, hi = s["added_ci_us"]
                    extra = f"  added {s['added_us']:7.1f} us ({lo:.1f}-{hi:.1f})"
                if "ratio_to_floor" in s:
                    lo, hi = s["ratio_ci"]
                    extra += f"  = {s['ratio_to_floor']:.2f}x the floor ({lo:.2f}-{hi:.2f})"
                print(
                    f"  {config:20s} {s['median_us']:9.1f} us  ({s['p25_us']:.1f}-{s['p75_us']:.1f}){extra}"
                )
            print()


if __name__ == "__main__":
    main()
