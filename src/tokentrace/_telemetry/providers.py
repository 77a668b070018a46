"""Where tokentrace's spans and metrics go: the tracer and instruments it uses.

Both come from the providers ``configure()`` was given or built, else from OpenTelemetry's
global ones (which are no-ops until an application sets real ones). Accounting never depends
on them.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry import metrics, trace

from tokentrace._foundation import semconv as sc
from tokentrace._foundation.safety import after_fork, guarded
from tokentrace.types import Budget, Limit

# Past this many buffered records (a reader that never collects), the caller drains them itself.
MAX_BUFFERED = 10_000


class MetricBuffer:
    """Metric work deferred off the LLM call's path, run when a reader collects.

    Recording into SDK instruments (and building their attribute sets) costs more than the rest
    of a call's accounting, so a call only appends one entry here; a collection (periodic
    export, ``force_flush``, shutdown) first runs the ``tokentrace.metrics.buffered`` callback,
    which runs every entry before the SDK reads the instruments. Values and attributes are
    exact; what changes is which thread pays, and that exemplars do not link to call spans.
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()

    def add(self, fn: Callable[..., None], *args: Any) -> None:
        self._entries.append((fn, args))
        if len(self._entries) > MAX_BUFFERED:
            self.drain()

    def clear(self) -> None:
        self._entries.clear()

    def drain(self) -> int:
        drained = 0
        pop = self._entries.popleft
        while True:
            try:
                fn, args = pop()
            except IndexError:
                return drained
            # Runs in the SDK's collection callback: one failing entry must not lose the others.
            guarded("metrics.emit", fn, None, *args)
            drained += 1

    def observe(self, options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
        yield metrics.Observation(self.drain())


@dataclass
class Instruments:
    noop: bool
    """True while no SDK MeterProvider is behind these instruments (recording would be discarded)."""
    provider: object
    buffer: MetricBuffer
    token_usage: metrics.Histogram
    duration: metrics.Histogram
    cost: metrics.Counter
    task_cost: metrics.Histogram
    unpriced: metrics.Counter
    task_units: metrics.Counter


@dataclass
class Settings:
    """Process-wide settings that ``configure()`` sets."""

    capture_content: bool = False
    content_max_chars: int = 4096
    metrics_include_user: bool = False
    enabled: bool = True
    redact: Callable[[Any], Any] | None = None
    """Applied to captured content before it is recorded (opt-in capture only)."""
    budgets: dict[str, Budget] = field(default_factory=dict)
    """Budgets by task name, for tasks opened without ``budget=``."""
    detect_duplicates: bool = True
    request_stream_usage: bool = False
    """Add ``stream_options.include_usage`` to streamed requests that lack it (OpenAI-compatible
    Chat Completions and Completions), hiding the extra usage chunk from the application."""
    propagate: str = "tasks"
    """Which task dimensions travel in baggage: "tasks" (ids, names, feature), "all", "none"."""
    limits: tuple[Limit, ...] = ()
    """Limits across replicas (``configure(limits=...)``), kept in ``limit_store``."""
    limit_store: Path | str | None = None
    """The ledger whose ``limit_usage`` rows hold the limits' counters (a file or a PostgreSQL URL)."""
    ledger: Path | str | None = None
    """The ledger ``configure(ledger=...)`` named (``None``: ``TOKENTRACE_LEDGER`` or the default)."""
    genai_cost: bool = False
    """Also put the proposed ``gen_ai.usage.cost.*`` attributes on call spans
    (``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``)."""


@dataclass
class _Providers:
    tracer_provider: trace.TracerProvider | None = None
    meter_provider: metrics.MeterProvider | None = None
    tracer: trace.Tracer | None = None
    instruments: Instruments | None = None
    settings: Settings = field(default_factory=Settings)
    lock: threading.Lock = field(default_factory=threading.Lock)


state = _Providers()


def _reset_after_fork() -> None:
    """In a forked child: a fresh lock, and no metric entries of the parent's calls (the parent
    emits those itself; the child would count them twice)."""
    state.lock = threading.Lock()
    if state.instruments is not None:
        state.instruments.buffer.clear()


after_fork(_reset_after_fork)


def _version() -> str:
    from tokentrace._version import __version__

    return __version__


def tracer() -> trace.Tracer:
    """The tracer for task and call spans (cached; the global one is a proxy that follows later setup)."""
    t = state.tracer
    if t is None:
        t = state.tracer = trace.get_tracer(
            sc.INSTRUMENTATION_SCOPE, _version(), tracer_provider=state.tracer_provider
        )
    return t


def _is_sdk_meter_provider(provider: object) -> bool:
    return type(provider).__module__.startswith("opentelemetry.sdk")


_metrics_internal: Any
try:
    from opentelemetry.metrics import _internal as _metrics_internal
except ImportError:  # pragma: no cover - a future API without this module
    _metrics_internal = None


def _meter_provider() -> Any:
    """The meter provider in use: ``configure()``'s, else the global one.

    While no global provider is set, OpenTelemetry's ``get_meter_provider()`` reads the
    environment on every call; the API module's own global says the same for a fraction of it.
    """
    provider = state.meter_provider
    if provider is not None:
        return provider
    if _metrics_internal is not None and getattr(_metrics_internal, "_METER_PROVIDER", 0) is None:
        proxy = getattr(_metrics_internal, "_PROXY_METER_PROVIDER", None)
        if proxy is not None:
            return proxy
    return metrics.get_meter_provider()


def instruments() -> Instruments:
    """The metric instruments (created once per meter provider)."""
    inst = state.instruments
    if inst is not None:
        if not inst.noop:
            return inst
        # No MeterProvider yet (the common case without metrics): the API's proxy, unchanged.
        if (
            state.meter_provider is None
            and _metrics_internal is not None
            and getattr(_metrics_internal, "_METER_PROVIDER", 0) is None
            and getattr(_metrics_internal, "_PROXY_METER_PROVIDER", None) is inst.provider
        ):
            return inst
        if _meter_provider() is inst.provider:
            return inst
    with state.lock:
        provider = _meter_provider()
        if state.instruments is None or state.instruments.provider is not provider:
            meter = metrics.get_meter(
                sc.INSTRUMENTATION_SCOPE, _version(), meter_provider=state.meter_provider
            )
            buffer = MetricBuffer()
            meter.create_observable_gauge(
                sc.METRIC_BUFFERED,
                callbacks=[buffer.observe],
                unit="{record}",
                description="Metric records tokentrace deferred since the previous collection.",
            )
            state.instruments = Instruments(
                noop=not _is_sdk_meter_provider(provider),
                provider=provider,
                buffer=buffer,
                token_usage=meter.create_histogram(
                    sc.METRIC_TOKEN_USAGE,
                    unit="{token}",
                    description="Number of input and output tokens used.",
                    explicit_bucket_boundaries_advisory=list(sc.TOKEN_USAGE_BUCKETS),
                ),
                duration=meter.create_histogram(
                    sc.METRIC_OPERATION_DURATION,
                    unit="s",
                    description="GenAI operation duration.",
                    explicit_bucket_boundaries_advisory=list(sc.DURATION_BUCKETS),
                ),
                cost=meter.create_counter(
                    sc.METRIC_COST, unit="USD", description="Cost of priced LLM calls, in US dollars."
                ),
                task_cost=meter.create_histogram(
                    sc.METRIC_TASK_COST,
                    unit="USD",
                    description="Cost of one task run (inclusive of nested tasks), in US dollars.",
                    explicit_bucket_boundaries_advisory=list(sc.TASK_COST_BUCKETS),
                ),
                unpriced=meter.create_counter(
                    sc.METRIC_UNPRICED_CALLS, unit="{call}", description="LLM calls that could not be priced."
                ),
                task_units=meter.create_counter(
                    sc.METRIC_TASK_UNITS,
                    unit="{unit}",
                    description="Units of work that task runs counted (inclusive of nested tasks).",
                ),
            )
        return state.instruments


def use_settings(settings: Settings) -> None:
    """Use these settings from now on (``configure()`` validated them)."""
    state.settings = settings


def use_providers(tracer_provider: Any | None, meter_provider: Any | None) -> None:
    """Use these providers from now on (``None``: the global ones)."""
    with state.lock:
        state.tracer_provider = tracer_provider
        state.meter_provider = meter_provider
        state.tracer = None
        state.instruments = None
