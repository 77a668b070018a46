"""Span export that never makes the application wait, and counts what it loses.

For the providers tokentrace builds itself (``configure()`` with no provider of the
application's), spans go through ``BoundedBatchSpanProcessor`` to a ``CountingExporter``:

- the application thread only appends to a bounded queue (``OTEL_BSP_MAX_QUEUE_SIZE``, 2,048 by
  default); the export happens on the processor's own thread, so a slow, hung or refusing
  backend costs the caller nothing and memory stays bounded;
- a span that finds the queue full is dropped and counted (OpenTelemetry would log a warning for
  every one of them; tokentrace logs once);
- the spans of an export that fails (the exporter returns FAILURE or raises) are counted too.

``dropped_spans()`` returns the count; the first loss logs one warning and, if any were lost,
one summary line is logged when the process exits. Providers the application passes in are left
exactly as they are.

``Closer`` shuts the providers tokentrace built down when the process exits: all of them at
once, within one budget (``OTEL_EXPORTER_OTLP_TIMEOUT`` for OTLP), rather than one after the other,
each with its exporter's own timeout.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from tokentrace._foundation.safety import after_fork, guarded

logger = logging.getLogger("tokentrace")

_lock = threading.Lock()
_counts = {"queue_full": 0, "export_failed": 0}
_warned = False


def _reset_after_fork() -> None:
    """A child starts with its own count (its parent reports its own losses)."""
    global _lock, _warned, _metrics_warned
    _lock = threading.Lock()
    _counts.update(queue_full=0, export_failed=0)
    _warned = _metrics_warned = False


after_fork(_reset_after_fork)


def dropped_spans() -> int:
    """How many spans the exporters that tokentrace built have lost in this process (a full
    queue, or an export that failed). Spans of providers the application built are not counted."""
    with _lock:
        return _counts["queue_full"] + _counts["export_failed"]


def _drop(reason: str, n: int, detail: str | None = None) -> None:
    global _warned
    with _lock:
        _counts[reason] += n
        first = not _warned
        _warned = True
    if first:
        why = (
            "the export queue is full (the backend is slower than the application)"
            if reason == "queue_full"
            else f"the exporter failed ({detail or 'is the backend reachable?'})"
        )
        logger.warning(
            "tokentrace dropped %d span(s): %s. The application is not slowed down; further losses "
            "are counted (tokentrace.dropped_spans()) and summed up once at exit.",
            n,
            why,
        )


@atexit.register
def _summary() -> None:
    with _lock:
        queue_full, failed = _counts["queue_full"], _counts["export_failed"]
    if queue_full or failed:
        logger.warning(
            "tokentrace lost %d span(s) in this process: %d to a full export queue, %d to failed "
            "exports. Task totals in the application (Task.totals) are unaffected.",
            queue_full + failed,
            queue_full,
            failed,
        )


class CountingExporter(SpanExporter):
    """Wraps a span exporter and counts the spans of every export that does not succeed.

    While the process shuts down, once an export has failed the remaining batches are counted as
    lost without being tried: a backend that is down then delays exit by at most the export in
    flight (``OTEL_EXPORTER_OTLP_TIMEOUT``), not by one timeout per queued batch. When the exit
    stops waiting (``abandon``), what is still queued or in flight is counted then, once.

    An exporter that says why it failed (an ``error`` attribute, as ``LedgerExporter`` has) has
    its reason in the warning.
    """

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self.closing = False
        self._failing = False
        self._in_flight = 0
        self._abandoned = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        n = len(spans)
        with _lock:
            if self._abandoned:
                return SpanExportResult.FAILURE  # counted when the exit stopped waiting
            skip = self.closing and self._failing
            if not skip:
                self._in_flight = n
        if skip:
            _drop("export_failed", n)
            return SpanExportResult.FAILURE
        ok = False
        try:
            result = self.exporter.export(spans)
            ok = result is SpanExportResult.SUCCESS
            return result
        finally:
            self._failing = not ok
            with _lock:
                counted = self._abandoned
                self._in_flight = 0
            if not ok and not counted:
                error = getattr(self.exporter, "error", None)
                _drop("export_failed", n, error if isinstance(error, str) else None)

    def abandon(self, queued: int, why: str) -> None:
        """Count the ``queued`` spans and the export in flight as lost: the process exits without
        waiting for them. Exports that end or start later are not counted again."""
        with _lock:
            if self._abandoned:
                return
            self._abandoned = True
            lost = queued + self._in_flight
        if lost:
            _drop("export_failed", lost, why)

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class BoundedBatchSpanProcessor(BatchSpanProcessor):
    """A ``BatchSpanProcessor`` (same settings, same ``OTEL_BSP_*`` variables) whose exporter is
    wrapped in ``CountingExporter``, and which drops and counts a span that finds the queue full
    instead of logging a warning for each."""

    def __init__(self, exporter: SpanExporter, **kwargs: Any) -> None:
        self._counting = CountingExporter(exporter)
        super().__init__(self._counting, **kwargs)
        queue = getattr(getattr(self, "_batch_processor", None), "_queue", None)
        # The SDK's queue is a bounded deque; if a later SDK changes that, OTel's own dropping
        # (and its warnings) apply and only failed exports are counted.
        self._queue: deque[Any] | None = queue if isinstance(queue, deque) and queue.maxlen else None

    def on_end(self, span: ReadableSpan) -> None:
        queue = self._queue
        if (
            queue is not None
            and len(queue) >= (queue.maxlen or 0)
            and span.context is not None
            and span.context.trace_flags.sampled
        ):
            _drop("queue_full", 1)
            return
        super().on_end(span)

    def shutdown(self) -> None:
        self._counting.closing = True
        super().shutdown()  # type: ignore[no-untyped-call]  # the SDK method is untyped

    def abandon(self, why: str) -> None:
        """Count the spans still queued or being exported as lost (the process exits without them)."""
        # A batch taken off the queue but not yet handed to the exporter at this very instant (a
        # few instructions) is not counted.
        self._counting.abandon(len(self._queue) if self._queue is not None else 0, why)


class Closer:
    """Shuts providers down when the process exits, all at once, for at most ``budget`` seconds.

    OpenTelemetry shuts each provider down on its own at exit, one after the other, and each
    waits for its exporter's own timeout: with a backend that is down, a TracerProvider and a
    MeterProvider made the exit wait twice ``OTEL_EXPORTER_OTLP_TIMEOUT``. Here each ``shutdown``
    runs on a thread of its own (started now: Python 3.12 refuses to start a thread at exit) and
    the exit waits for them together; spans the processors still hold when the budget is spent
    are counted as lost and the process exits without them. Build the providers with
    ``shutdown_on_exit=False``.
    """

    def __init__(
        self,
        budget: float,
        shutdowns: Sequence[Callable[[], object]],
        processors: Sequence[BoundedBatchSpanProcessor] = (),
    ) -> None:
        self.budget = budget
        self._shutdowns = tuple(shutdowns)
        self._processors = tuple(processors)
        self._start()
        after_fork(self._start)  # a forked child has none of the parent's threads
        atexit.register(self.close)

    def _start(self) -> None:
        self._exiting = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(fn,), name="tokentrace-closer", daemon=True)
            for fn in self._shutdowns
        ]
        for thread in self._threads:
            thread.start()

    def _run(self, shutdown: Callable[[], object]) -> None:
        self._exiting.wait()
        guarded("exit", shutdown, None)

    def close(self) -> None:
        """Shut every provider down and wait for them together, at most ``budget`` seconds."""
        deadline = time.monotonic() + self.budget
        self._exiting.set()
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        if any(thread.is_alive() for thread in self._threads):
            for processor in self._processors:
                processor.abandon(f"still unexported when the exit's {self.budget:g} s were up")


# --- metrics to a backend that takes none ---------------------------------------------------------

_METRIC_LOGGER = "opentelemetry.exporter.otlp.proto.http.metric_exporter"
_muted = threading.local()
_metrics_warned = False


class _MuteOwnExports(logging.Filter):
    """Drops the OTLP metric exporter's own log lines while an export of tokentrace's is running."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_muted, "active", False)


_MUTE = _MuteOwnExports()


def _metrics_failed() -> None:
    global _metrics_warned
    with _lock:
        if _metrics_warned:
            return
        _metrics_warned = True
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or (
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318").rstrip("/") + "/v1/metrics"
    )
    logger.warning(
        "tokentrace could not export metrics to %s (later failures are not logged). If this backend "
        "takes no OTLP metrics (Jaeger, Phoenix), set OTEL_METRICS_EXPORTER=none",
        endpoint,
    )


def metric_exporter() -> Any:
    """The OTLP metric exporter tokentrace builds: OpenTelemetry's own, except that a failed
    export is logged once, by tokentrace, instead of once per export interval (a traces-only
    backend such as Jaeger answers every metrics export with a 404)."""
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import MetricExportResult

    class OnceLoggingOTLPMetricExporter(OTLPMetricExporter):
        def export(self, metrics_data: Any, timeout_millis: float | None = 10_000, **kwargs: Any) -> Any:
            _muted.active = True
            try:
                result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            finally:
                _muted.active = False
            if result is not MetricExportResult.SUCCESS:
                guarded("metrics.failed", _metrics_failed, None)
            return result

    logging.getLogger(_METRIC_LOGGER).addFilter(_MUTE)  # idempotent: the same filter object
    return OnceLoggingOTLPMetricExporter()
