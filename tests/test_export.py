"""Export never slows the application down: a refusing or hung backend costs the caller nothing,
memory stays bounded, lost spans are counted and reported once, and exit waits at most the
exporter timeout."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import tokentrace
from tests.support.proc import spawn_python
from tests.support.servers import hung_endpoint, otlp_receiver, refused_endpoint, silent_endpoint
from tokentrace._telemetry import export as _export

CALLS = 1000
CACHED_CHAT = "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_prompt_caching_cache_read.yaml"
APP = f"""
import json, statistics, time, tokentrace
from tests.support.clients import Repeat, openai_client, recorded, request_kwargs
(interaction,) = recorded({CACHED_CHAT!r})
tokentrace.configure(service_name="export-test")
tokentrace.instrument("openai")
client = openai_client(Repeat(interaction))
kwargs = request_kwargs(interaction, "openai")
latencies = []
with tokentrace.task("load") as task:
    for _ in range({CALLS}):
        start = time.perf_counter()
        client.chat.completions.create(**kwargs)
        latencies.append((time.perf_counter() - start) * 1000)
        time.sleep(0.002)  # the application's own work between calls, where the exporter runs
warm = sorted(latencies[10:])
print(json.dumps({{"p99_ms": warm[int(len(warm) * 0.99)], "max_ms": warm[-1], "calls": task.totals.llm_calls,
                  "cost": str(task.totals.cost_usd)}}))
"""
# A small queue (512 spans, exported 64 at a time, at least every 50 ms) so that a backend that
# is down fills it within the run. An export that waits for a backend that is down takes seconds
# (the 5 s timeout, or retries within it), far longer than any call.
TIMEOUT_S = 5
ENV = {
    "OTEL_BSP_MAX_QUEUE_SIZE": "512",
    "OTEL_BSP_SCHEDULE_DELAY": "50",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "64",
    "OTEL_EXPORTER_OTLP_TIMEOUT": str(TIMEOUT_S),
    "OTEL_METRIC_EXPORT_INTERVAL": "600000",
}


def _run(endpoint: str) -> tuple[dict[str, Any], str]:
    proc = spawn_python(APP, {**ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def _span_count(bodies: list[tuple[str, bytes]]) -> int:
    count = 0
    for path, body in bodies:
        if path == "/v1/traces":
            request = ExportTraceServiceRequest.FromString(body)
            count += sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    return count


@pytest.fixture(scope="module")
def healthy() -> dict[str, Any]:
    with otlp_receiver() as (endpoint, bodies):
        result, stderr = _run(endpoint)
        received = _span_count(bodies)
    assert "tokentrace" not in stderr, stderr
    return {**result, "received": received}


def test_a_healthy_backend_receives_every_span(healthy: dict[str, Any]) -> None:
    """With a backend that keeps up, every call span and the task span arrive and nothing is reported lost."""
    assert healthy["received"] == CALLS + 1
    assert healthy["calls"] == CALLS
    # 1,000 x (68 fresh x $2.50/M + 1,152 cached x $1.25/M + 100 out x $10/M) = 1,000 x $0.00261
    assert Decimal(healthy["cost"]) == Decimal("2.61")


@pytest.mark.parametrize("down", ["refused", "hung"])
def test_a_backend_that_is_down_costs_the_caller_nothing(down: str, healthy: dict[str, Any]) -> None:
    """A backend that refuses connections, or accepts and never answers, never makes a call wait for
    it, leaves totals exact, and has the losses counted in one warning plus one summary at exit."""
    if down == "refused":
        result, stderr = _run(refused_endpoint())
    else:
        with hung_endpoint() as endpoint:
            result, stderr = _run(endpoint)
    assert result["calls"] == CALLS
    assert result["cost"] == healthy["cost"]
    # An export on the caller's path would make some call wait for the backend: seconds, where a
    # call takes about a millisecond. (Latency figures: benchmarks/overhead.py.)
    assert result["max_ms"] < TIMEOUT_S * 1000 / 2, result
    assert stderr.count("tokentrace dropped") == 1, stderr
    assert "Queue full" not in stderr
    (summary,) = [line for line in stderr.splitlines() if "tokentrace lost" in line]
    # Every span is lost: the call spans and the task span, to the full queue or to failed exports.
    assert f"tokentrace lost {CALLS + 1} span(s)" in summary, summary


class _Gate(SpanExporter):
    """An exporter that blocks until released (a hung backend), then fails or succeeds."""

    def __init__(self, result: SpanExportResult) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.result = result
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(10)
        self.exported += len(spans)
        return self.result


def _reset() -> None:
    with _export._lock:
        _export._counts.update(queue_full=0, export_failed=0)
        _export._warned = False


@pytest.fixture
def fresh_counts() -> Iterator[None]:
    _reset()
    yield
    _reset()


@pytest.mark.usefixtures("fresh_counts")
def test_a_full_queue_drops_and_counts_instead_of_growing(caplog: pytest.LogCaptureFixture) -> None:
    """With the exporter stuck, the queue holds at most its size; every span beyond it is counted, and
    one warning is logged."""
    gate = _Gate(SpanExportResult.SUCCESS)
    processor = _export.BoundedBatchSpanProcessor(gate, max_queue_size=8, max_export_batch_size=1)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    tracer.start_span("first").end()
    assert gate.entered.wait(5)  # the worker holds the first span in an export that hangs
    for _ in range(200):
        tracer.start_span("s").end()
    assert len(processor._batch_processor._queue) == 8
    assert tokentrace.dropped_spans() == 192
    gate.release.set()
    provider.shutdown()
    assert gate.exported == 9
    assert tokentrace.dropped_spans() == 192
    assert [r.getMessage().split(":")[0] for r in caplog.records if r.name == "tokentrace"] == [
        "tokentrace dropped 1 span(s)"
    ]


@pytest.mark.usefixtures("fresh_counts")
def test_failed_and_raising_exports_are_counted() -> None:
    """An export that returns FAILURE, or raises, counts all of its spans as lost."""

    class Raising(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            raise ConnectionError("backend gone")

    failing = _export.CountingExporter(_Gate(SpanExportResult.FAILURE))
    failing.exporter.release.set()  # type: ignore[attr-defined]
    spans = [ReadableSpan(name=f"s{i}") for i in range(3)]
    assert failing.export(spans) is SpanExportResult.FAILURE
    with pytest.raises(ConnectionError):
        _export.CountingExporter(Raising()).export(spans[:2])
    assert tokentrace.dropped_spans() == 5


LEFT_ALONE_APP = """
import json, sys, tokentrace
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.support.clients import Repeat, openai_client, recorded, request_kwargs
(interaction,) = recorded(%r)
exporter = InMemorySpanExporter()
if %r:
    own = TracerProvider()
    own.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(own)
tokentrace.configure()
tokentrace.instrument("openai")
openai_client(Repeat(interaction)).chat.completions.create(**request_kwargs(interaction, "openai"))
provider = trace.get_tracer_provider()
provider.force_flush()
print(json.dumps({
    "processors": [type(p).__name__ for p in provider._active_span_processor._span_processors],
    "spans": len(exporter.get_finished_spans()),
}))
"""


@pytest.mark.parametrize("own_provider", [True, False])
def test_providers_the_application_built_are_left_alone(own_provider: bool) -> None:
    """configure() leaves the processors of a provider the application registered as they are (its
    spans reach the application's exporter), and wraps only those of the provider it builds."""
    with otlp_receiver() as (endpoint, _):
        proc = spawn_python(
            LEFT_ALONE_APP % (CACHED_CHAT, own_provider), {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
        )
    assert proc.returncode == 0, proc.stderr
    if own_provider:
        assert json.loads(proc.stdout) == {"processors": ["BatchSpanProcessor"], "spans": 1}
    else:
        assert json.loads(proc.stdout) == {"processors": ["BoundedBatchSpanProcessor"], "spans": 0}


# A program that makes 20 calls and exits. It prints when its last call returned and when its exit
# handlers were done (one registered first runs last), on the machine's monotonic clock; the
# interpreter's own teardown afterwards (about a second with the SDKs loaded) is not tokentrace's.
EXIT_APP = f"""
import atexit, time
atexit.register(lambda: print("handlers done", time.monotonic(), flush=True))
import tokentrace
from tests.support.clients import Repeat, openai_client, recorded, request_kwargs
(interaction,) = recorded({CACHED_CHAT!r})
tokentrace.configure()
tokentrace.instrument("openai")
client = openai_client(Repeat(interaction))
kwargs = request_kwargs(interaction, "openai")
with tokentrace.task("job"):
    for _ in range(20):
        client.chat.completions.create(**kwargs)
print("calls made", time.monotonic(), flush=True)
"""


def _exit_wait(traces: str, metrics: str, timeout_s: int) -> tuple[float, str]:
    """Run EXIT_APP with traces and metrics sent to these endpoints; return how long its exit
    handlers ran after its last call, and its stderr."""
    env = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{traces}/v1/traces",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{metrics}/v1/metrics",
        "OTEL_EXPORTER_OTLP_TIMEOUT": str(timeout_s),
        # Both signals are exported at exit only, as by a program that ends within the schedule.
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
        "OTEL_METRIC_EXPORT_INTERVAL": "600000",
    }
    proc = spawn_python(EXIT_APP, env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    times = {name: float(at) for name, at in (line.rsplit(" ", 1) for line in proc.stdout.splitlines())}
    return times["handlers done"] - times["calls made"], proc.stderr


# Traces alone: the down tests above (and benchmarks/exit_time.py for every case).
@pytest.mark.parametrize("silent", ["metrics", "both"])
def test_exit_with_a_silent_backend_waits_one_exporter_timeout(silent: str) -> None:
    """With metrics, or traces and metrics, sent to an endpoint that accepts connections and never
    answers, the last exports of both signals start together at exit, and exit waits one exporter
    timeout (OTEL_EXPORTER_OTLP_TIMEOUT), not one per signal; the spans it gives up on are counted
    once."""
    with silent_endpoint() as (dead, requests), otlp_receiver() as (healthy, bodies):
        waited, stderr = _exit_wait(
            dead if silent == "both" else healthy,
            dead,
            timeout_s=4,
        )
        received = {path for path, _ in bodies}
        first: dict[str, float] = {}
        for path, at in requests:
            first.setdefault(path, at)
    expected = {"metrics": {"/v1/metrics"}, "both": {"/v1/traces", "/v1/metrics"}}
    assert set(first) == expected[silent], requests
    assert received == {"/v1/traces", "/v1/metrics"} - expected[silent]
    if silent == "both":
        # One after the other, the second export would start when the first gave up, 4 s later.
        assert abs(first["/v1/traces"] - first["/v1/metrics"]) < 2, requests
    assert waited < 4 + 1, waited
    if silent == "metrics":
        assert "tokentrace" not in stderr, stderr
    else:
        assert stderr.count("tokentrace dropped") == 1, stderr
        assert "tokentrace lost 21 span(s)" in stderr, stderr


def test_exit_with_a_refusing_backend_stays_within_the_exporter_timeout() -> None:
    """With traces and metrics sent to a closed port, exit waits less than OTEL_EXPORTER_OTLP_TIMEOUT
    (10 s) in all: each signal's retries (5.6 to 8.4 s: 1 + 2 + 4 s of back-off, with jitter) run at
    the same time, not one after the other (11.2 to 16.8 s)."""
    dead = refused_endpoint()
    waited, stderr = _exit_wait(dead, dead, timeout_s=10)
    assert waited < 10, waited
    assert "tokentrace lost 21 span(s)" in stderr, stderr


TRACES_ONLY_APP = """
import time, tokentrace
from tests.support.cassettes import Replay
from tests.support.clients import openai_client, recorded, request_kwargs
tokentrace.configure(service_name="traces-only")
tokentrace.instrument("openai")
cached = "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_prompt_caching_cache_read.yaml"
(interaction,) = recorded(cached)
client = openai_client(Replay([interaction] * 8))
with tokentrace.task("traces-only"):
    for _ in range(8):
        client.chat.completions.create(**request_kwargs(interaction, "openai"))
        time.sleep(0.2)
print(tokentrace.dropped_spans())
"""


def test_metrics_to_a_traces_only_backend_warn_once_not_per_export() -> None:
    """A backend that answers metrics with 404 (Jaeger) gets its spans; the failed metrics exports
    (one every 100 ms here, and one at exit) give one tokentrace warning naming the fix, and none
    of OpenTelemetry's per-export errors."""
    with otlp_receiver(traces_only=True) as (endpoint, bodies):
        proc = spawn_python(
            TRACES_ONLY_APP,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_METRIC_EXPORT_INTERVAL": "100"},
        )
        paths = [path for path, _ in bodies]
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"  # no span lost
    assert "/v1/traces" in paths
    assert paths.count("/v1/metrics") >= 5  # the backend refused metrics again and again
    assert proc.stderr.count("could not export metrics") == 1, proc.stderr
    assert "OTEL_METRICS_EXPORTER=none" in proc.stderr
    assert "Failed to export metrics" not in proc.stderr, proc.stderr


def test_the_batch_processors_queue_is_where_tokentrace_reads_it() -> None:
    """Pins the one private read of OpenTelemetry's span processor: a bounded deque at
    ``_batch_processor._queue``. A release that moves it fails here, not silently in users' apps."""
    from collections import deque

    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    processor = BatchSpanProcessor(InMemorySpanExporter(), max_queue_size=8, max_export_batch_size=1)
    try:
        queue = processor._batch_processor._queue
        assert isinstance(queue, deque)
        assert queue.maxlen == 8
    finally:
        processor.shutdown()
