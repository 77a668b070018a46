"""Helpers for asserting on what tokentrace records, in your own test suite.

>>> from tokentrace.testing import capture
>>> with capture() as cap:
...     pass  # run code that opens tasks and makes LLM calls
>>> cap.task_spans()
[]
"""

from __future__ import annotations

import importlib
import itertools
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tokentrace._foundation import semconv as sc
from tokentrace._telemetry import providers as _telemetry

__all__ = ["FAULT_POINTS", "Capture", "InjectedFault", "Recorded", "ReplayServer", "capture", "inject_fault"]


@dataclass
class Capture:
    """Spans and metrics recorded while a ``capture()`` block was open."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def spans(self) -> list[ReadableSpan]:
        """Every finished span, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def task_spans(self, name: str | None = None) -> list[ReadableSpan]:
        """Finished task spans (optionally only those of task ``name``)."""
        return [
            s
            for s in self.spans()
            if s.kind == SpanKind.INTERNAL
            and s.attributes is not None
            and sc.TASK_INPUT_TOKENS in s.attributes
            and (name is None or s.attributes.get(sc.TASK_NAME) == name)
        ]

    def call_spans(self) -> list[ReadableSpan]:
        """Finished LLM call spans."""
        return [
            s
            for s in self.spans()
            if s.kind == SpanKind.CLIENT
            and s.instrumentation_scope is not None
            and s.instrumentation_scope.name == sc.INSTRUMENTATION_SCOPE
        ]

    def metric_points(self, name: str) -> list[Any]:
        """Data points of metric ``name`` collected now (cumulative)."""
        data = self.reader.get_metrics_data()
        points: list[Any] = []
        if data is None:
            return points
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points

    def clear(self) -> None:
        """Forget the spans recorded so far."""
        self.exporter.clear()


@contextmanager
def capture() -> Iterator[Capture]:
    """Send tokentrace's spans and metrics to in-memory stores for the duration of the block.

    Only tokentrace's own spans and metrics are redirected; the application's providers are
    restored afterwards.
    """
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    state = _telemetry.state
    previous = (state.tracer_provider, state.meter_provider)
    _telemetry.use_providers(tracer_provider, meter_provider)
    try:
        yield Capture(exporter, reader, tracer_provider, meter_provider)
    finally:
        _telemetry.use_providers(*previous)
        tracer_provider.shutdown()
        meter_provider.shutdown()


@dataclass(frozen=True)
class Recorded:
    """One provider response to serve: status, content type and body (JSON or server-sent events)."""

    body: bytes
    content_type: str = "application/json"
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


class ReplayServer:
    """A real HTTP server on 127.0.0.1 that answers LLM API requests with recorded responses.

    ``routes`` maps a request path (``"/v1/chat/completions"``) to the responses to serve, in
    turn (the last one repeats). A ``"PATH#stream"`` entry answers requests whose JSON body
    has ``"stream": true``. Point an SDK at ``server.url`` (``base_url=``, or the
    ``OPENAI_BASE_URL``/``ANTHROPIC_BASE_URL`` variables) and it runs unchanged, offline.

    >>> server = ReplayServer({"/v1/models": [Recorded(b'{"data": []}')]})
    >>> with server:
    ...     server.url.startswith("http://127.0.0.1:")
    True
    """

    def __init__(self, routes: Mapping[str, Sequence[Recorded]]) -> None:
        self._routes = {path: list(responses) for path, responses in routes.items()}
        self._cursors = {path: itertools.count() for path in self._routes}
        self._lock = threading.Lock()
        self.requests: list[tuple[str, bytes]] = []
        """(path, body) of every request received."""
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The server's base URL (only while it runs)."""
        if self._server is None:
            raise RuntimeError("the ReplayServer is not running: use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _pick(self, path: str, body: bytes) -> Recorded | None:
        path = path.split("?", 1)[0]
        try:
            streaming = bool(json.loads(body or b"{}").get("stream"))
        except (ValueError, AttributeError):
            streaming = False
        key = f"{path}#stream" if streaming and f"{path}#stream" in self._routes else path
        responses = self._routes.get(key)
        if not responses:
            return None
        with self._lock:
            index = next(self._cursors[key])
        return responses[min(index, len(responses) - 1)]

    def __enter__(self) -> ReplayServer:
        server_ref = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                server_ref.requests.append((self.path, body))
                recorded = server_ref._pick(self.path, body)
                if recorded is None:
                    recorded = Recorded(b'{"error": {"message": "no recorded response"}}', status=404)
                self.send_response(recorded.status)
                self.send_header("content-type", recorded.content_type)
                self.send_header("content-length", str(len(recorded.body)))
                for name, value in recorded.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(recorded.body)

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# Where tokentrace's own steps can be made to fail, by stable name: each maps to the function
# that does the step (module, then attribute path), kept here beside the code it names so that
# moving that code changes this table and not the tests that use it.
_POINTS: dict[str, tuple[str, str]] = {
    "call.begin": ("tokentrace._core.engine", "_begin"),
    "call.finish": ("tokentrace._core.engine", "_finish"),
    "call.fail": ("tokentrace._core.engine", "_fail"),
    "call.complete": ("tokentrace._core.engine", "complete"),
    "call.end_span": ("tokentrace._core.engine", "_end_span"),
    "call.metrics": ("tokentrace._core.engine", "_record_metrics"),
    "call.defer": ("tokentrace._core.deferred", "_defer"),
    "attempt.note": ("tokentrace._core.attempts", "_note_attempt"),
    "price.lookup": ("tokentrace._pricing.prices", "lookup"),
    "stream.wrap": ("tokentrace._core.streams", "wrap_stream"),
    "stream.complete": ("tokentrace._core.streams", "complete_with"),
    "stream.finish": ("tokentrace._core.streams", "_StreamState.finish"),
    "raw.read_parsed": ("tokentrace._core.streams", "_read_parsed"),
    "raw.wrap_unread": ("tokentrace._core.streams", "wrap_unread"),
    "task.start_span": ("tokentrace._accounting.task", "_start_span"),
    "task.end_span": ("tokentrace._accounting.task", "_end_span"),
    "telemetry.instruments": ("tokentrace._telemetry.providers", "instruments"),
    "budget.gate": ("tokentrace._core.gate", "check"),
    "budget.go_ahead": ("tokentrace._core.gate", "_go_ahead"),
    "budget.block": ("tokentrace._core.gate", "_block"),
    "budget.check": ("tokentrace._accounting.budget", "check"),
    "budget.settle": ("tokentrace._accounting.budget", "settle"),
    "budget.warned": ("tokentrace._accounting.budget", "warned"),
    "budget.blocked": ("tokentrace._accounting.budget", "blocked"),
    "limit.gate": ("tokentrace._core.gate", "check_limits"),
    "limit.check": ("tokentrace._accounting.limits", "check"),
    "limit.settle": ("tokentrace._accounting.limits", "settle"),
    "limit.give_back": ("tokentrace._core.gate", "_give_back"),
    "limit.blocked": ("tokentrace._accounting.limits", "blocked"),
    "request.digest": ("tokentrace._core.requests", "digest"),
    "request.estimate": ("tokentrace._core.requests", "estimate"),
    "call.account": ("tokentrace._core.engine", "account"),
    "relay.attempt": ("tokentrace._core.relay", "Relayed.attempt"),
    "relay.attempt_settled": ("tokentrace._core.attempts", "Attempt.settled"),
    "relay.returned": ("tokentrace._core.relay", "_returned"),
    "relay.ended": ("tokentrace._core.relay", "Relayed.ended_with"),
    "relay.account": ("tokentrace._core.relay", "Relayed.account"),
}
FAULT_POINTS: tuple[str, ...] = tuple(_POINTS)
"""The steps of tokentrace's own that ``inject_fault`` can make fail."""


class InjectedFault(RuntimeError):
    """The error ``inject_fault`` raises inside tokentrace."""


@contextmanager
def inject_fault(point: str, error: BaseException | None = None) -> Iterator[None]:
    """Make one of tokentrace's own steps (``FAULT_POINTS``) raise while the block runs, to show
    that the application's calls still return exactly what they would without tokentrace.

    ``error`` is what it raises (an ``InjectedFault`` by default). tokentrace's error boundary
    catches ``Exception`` and logs it once per step; with its strict mode on (as in
    tokentrace's own test suite) it re-raises instead.
    """
    try:
        module_name, path = _POINTS[point]
    except KeyError:
        raise ValueError(f"unknown fault point {point!r}: one of {', '.join(FAULT_POINTS)}") from None
    owner: Any = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    fault = error if error is not None else InjectedFault(f"injected fault at {point}")

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise fault

    setattr(owner, name, fail)
    try:
        yield
    finally:
        setattr(owner, name, original)
