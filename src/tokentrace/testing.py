"""Helpers for asserting on what tokentrace records, in your own test suite.

>>> from tokentrace.testing import capture
>>> with capture() as cap:
...     pass  # run code that opens tasks and makes LLM calls
>>> cap.task_spans()
[]
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tokentrace import _semconv as sc
from tokentrace import _telemetry

__all__ = ["Capture", "capture"]


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
