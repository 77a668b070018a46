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
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from tokentrace._safety import after_fork

logger = logging.getLogger("tokentrace")

_lock = threading.Lock()
_counts = {"queue_full": 0, "export_failed": 0}
_warned = False


def _reset_after_fork() -> None:
    """A child starts with its own count (its parent reports its own losses)."""
    global _lock, _warned
    _lock = threading.Lock()
    _counts.update(queue_full=0, export_failed=0)
    _warned = False


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
    flight (``OTEL_EXPORTER_OTLP_TIMEOUT``), not by one timeout per queued batch.

    An exporter that says why it failed (an ``error`` attribute, as ``LedgerExporter`` has) has
    its reason in the warning.
    """

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self.closing = False
        self._failing = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.closing and self._failing:
            _drop("export_failed", len(spans))
            return SpanExportResult.FAILURE
        try:
            result = self.exporter.export(spans)
        except Exception:
            self._failing = True
            _drop("export_failed", len(spans))
            raise
        self._failing = result is not SpanExportResult.SUCCESS
        if self._failing:
            error = getattr(self.exporter, "error", None)
            _drop("export_failed", len(spans), error if isinstance(error, str) else None)
        return result

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
