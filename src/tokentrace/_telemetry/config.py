"""``tokentrace.configure()``: wiring tracing, metrics, prices and settings.

If the application already has OpenTelemetry SDK providers (global, or passed in), tokentrace
uses them and adds nothing. Otherwise it builds providers once, from the standard ``OTEL_*``
variables and its own ``TOKENTRACE_*`` ones (documented in docs/configuration.md).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace

from tokentrace._telemetry import providers as _telemetry
from tokentrace.exceptions import ConfigurationError
from tokentrace.types import Budget, Limit

if TYPE_CHECKING:
    from tokentrace._pricing.overrides import PriceOverride

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_EXPORTERS = {"ledger", "otlp", "console", "none"}

_built: dict[str, Any] = {}
_configured = False


def _env_bool(name: str) -> bool | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"{name}={raw!r} is not a boolean; use true or false")


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not an integer") from None
    if value < 1:
        raise ConfigurationError(f"{name}={raw!r} must be at least 1")
    return value


OTEL_CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
OTEL_SEMCONV_OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"
GENAI_LATEST_EXPERIMENTAL = "gen_ai_latest_experimental"
# The values the contrib GenAI instrumentations take for content capture: a boolean, or (with
# the latest experimental conventions) where content goes. tokentrace records it on call spans.
_OTEL_CONTENT_ON = {"true", "span_only", "event_only", "span_and_event"}


def _otel_capture() -> bool | None:
    """``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, read as the contrib GenAI
    instrumentations read it: on for ``true`` or a content mode other than ``NO_CONTENT``, off
    for anything else (other libraries own its values, so none is an error here)."""
    raw = os.environ.get(OTEL_CAPTURE_CONTENT)
    if raw is None or not raw.strip():
        return None
    return raw.strip().lower() in _OTEL_CONTENT_ON


def _genai_latest_experimental() -> bool:
    """Whether ``OTEL_SEMCONV_STABILITY_OPT_IN`` (a comma-separated list) opts in to the latest
    experimental GenAI conventions."""
    raw = os.environ.get(OTEL_SEMCONV_OPT_IN, "")
    return GENAI_LATEST_EXPERIMENTAL in {part.strip().lower() for part in raw.split(",")}


def _capture_choice(argument: bool | None, current: bool) -> bool:
    """Content capture: ``configure(capture_content=...)``, else ``TOKENTRACE_CAPTURE_CONTENT``,
    else ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``; a variable only turns capture on
    (an earlier ``configure(capture_content=True)`` stays in force)."""
    if argument is not None:
        return bool(argument)
    env = _env_bool("TOKENTRACE_CAPTURE_CONTENT")
    if env is None:
        env = _otel_capture()
    return bool(env) or current


def load_price_file(path: str | os.PathLike[str]) -> list[PriceOverride]:
    """Read price overrides from a JSON file.

    The file holds ``{"rates": [...], "discounts": [...], "self_hosted": [...], "aliases": [...]}``,
    each entry the fields of ``Rates``, ``Discount``, ``SelfHosted`` or ``Alias``.
    """
    from tokentrace.pricing import Alias, Discount, Rates, SelfHosted

    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read price file {file}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigurationError(f"price file {file} is not valid JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise ConfigurationError(
            f"price file {file} must hold a JSON object with rates/discounts/self_hosted/aliases"
        )
    unknown = set(data) - {"rates", "discounts", "self_hosted", "aliases"}
    if unknown:
        raise ConfigurationError(f"price file {file}: unknown keys {sorted(unknown)}")
    items: list[PriceOverride] = []
    kinds: tuple[tuple[str, type[Rates] | type[Discount] | type[SelfHosted] | type[Alias]], ...] = (
        ("rates", Rates),
        ("discounts", Discount),
        ("self_hosted", SelfHosted),
        ("aliases", Alias),
    )
    for key, cls in kinds:
        for index, entry in enumerate(data.get(key, ())):
            try:
                items.append(cls.model_validate(entry))
            except ValueError as exc:
                raise ConfigurationError(f"price file {file}: {key}[{index}] is invalid: {exc}") from None
    return items


def _has_sdk_provider() -> bool:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    return isinstance(trace.get_tracer_provider(), SdkTracerProvider)


def _exporter_choice(exporter: object) -> object:
    from opentelemetry.sdk.trace.export import SpanExporter

    if exporter is not None:
        if not isinstance(exporter, SpanExporter) and exporter not in _EXPORTERS:
            raise ConfigurationError(
                "exporter must be 'ledger', 'otlp', 'console', 'none' or an OpenTelemetry "
                f"SpanExporter, got {exporter!r}"
            )
        return exporter
    raw = os.environ.get("TOKENTRACE_EXPORTER", "").strip().lower()
    if raw:
        if raw not in _EXPORTERS:
            raise ConfigurationError(f"TOKENTRACE_EXPORTER={raw!r}: use one of {sorted(_EXPORTERS)}")
        return raw
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return "otlp"
    return "ledger"


def ledger_provider(path: str | os.PathLike[str] | None = None, service_name: str | None = None) -> Any:
    """A TracerProvider of tokentrace's own that writes the ledger (never registered globally:
    the rest of the application's tracing is left as it is). It is shut down at exit, which waits
    for the ledger at most ``LOCK_WAIT`` seconds (another process holding its write lock) plus one."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from tokentrace._telemetry.export import BoundedBatchSpanProcessor, Closer
    from tokentrace.ledger._postgres import check_url
    from tokentrace.ledger._target import target_of
    from tokentrace.ledger._writer import LOCK_WAIT, LedgerExporter

    target = target_of(path)
    if isinstance(target, str):
        check_url(target)  # a URL libpq cannot read, or no psycopg: say so now, not at exit
    attrs = {"service.name": service_name} if service_name else {}
    provider = TracerProvider(resource=Resource.create(attrs), shutdown_on_exit=False)
    processor = BoundedBatchSpanProcessor(LedgerExporter(target))
    provider.add_span_processor(processor)
    Closer(LOCK_WAIT + 1.0, [provider.shutdown], [processor])
    return provider


def _otlp_timeout(variable: str) -> float:
    """The OTLP exporter's timeout for one signal in seconds, read as the exporter reads it."""
    raw = os.environ.get(variable) or os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT")
    try:
        return float(raw) if raw else 10.0
    except ValueError:
        return 10.0  # the exporter warns and uses its default too


def _check_exporter_available(choice: object) -> None:
    if choice != "otlp":
        return
    try:
        for module in ("trace_exporter", "metric_exporter"):
            importlib.import_module(f"opentelemetry.exporter.otlp.proto.http.{module}")
    except ImportError:
        raise ConfigurationError(
            "an OTLP endpoint is configured but the OTLP exporter is not installed: "
            "pip install 'tokentrace[otlp]'"
        ) from None


def _build_providers(
    service_name: str | None, exporter: object, ledger: str | os.PathLike[str] | None
) -> None:
    """Build and install the providers for an exporter choice ``_exporter_choice`` accepted and
    ``_check_exporter_available`` found (nothing here raises a configuration error)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

    from tokentrace._telemetry.export import BoundedBatchSpanProcessor, Closer, metric_exporter

    if exporter == "none":
        _built["tracer_provider"] = None
        return
    if exporter == "ledger":
        provider = ledger_provider(ledger, service_name)
        _built["tracer_provider"] = provider
        _telemetry.use_providers(provider, None)
        return
    metric_reader: Any = None
    # Exit waits for every provider at once, at most the longest exporter timeout.
    budget = _otlp_timeout("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
    span_exporter: SpanExporter
    if isinstance(exporter, SpanExporter):
        span_exporter = exporter
    elif exporter == "console":
        span_exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        span_exporter = OTLPSpanExporter()
        # OTEL_METRICS_EXPORTER=none: traces only (for a backend that takes no metrics: Jaeger, Phoenix).
        if os.environ.get("OTEL_METRICS_EXPORTER", "").strip().lower() != "none":
            metric_reader = PeriodicExportingMetricReader(metric_exporter())
            budget = max(budget, _otlp_timeout("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT"))
    attrs = {"service.name": service_name} if service_name else {}
    resource = Resource.create(attrs)
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    processor = BoundedBatchSpanProcessor(span_exporter)
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _built["tracer_provider"] = provider
    _telemetry.use_providers(None, None)
    shutdowns: list[Callable[[], object]] = [provider.shutdown]
    if metric_reader is not None:
        from opentelemetry.sdk.metrics import MeterProvider

        meter_provider = MeterProvider(
            resource=resource, metric_readers=[metric_reader], shutdown_on_exit=False
        )
        metrics.set_meter_provider(meter_provider)
        _built["meter_provider"] = meter_provider
        shutdowns.append(lambda: meter_provider.shutdown(timeout_millis=budget * 1000))
    Closer(budget, shutdowns, [processor])


def ensure_default() -> None:
    """``instrument()`` without ``configure()``: read the settings' variables once, as
    ``configure()`` does; when nothing at all is set up (no SDK TracerProvider registered), also
    record to the ledger (``TOKENTRACE_EXPORTER`` and the ``OTEL_EXPORTER_OTLP_*`` variables are
    honoured). A registered SDK TracerProvider is used as it is."""
    if _built or _configured or _telemetry.state.tracer_provider is not None:
        return
    configure()


def _propagate_choice(value: str | None, current: str) -> str:
    from tokentrace._telemetry.propagation import MODES

    if value is None:
        raw = os.environ.get("TOKENTRACE_PROPAGATE", "").strip().lower()
        if not raw:
            return current
        if raw not in MODES:
            raise ConfigurationError(f"TOKENTRACE_PROPAGATE={raw!r}: use one of {', '.join(MODES)}")
        return raw
    if value not in MODES:
        raise ConfigurationError(
            f"propagate must be one of {', '.join(repr(m) for m in MODES)}, got {value!r}"
        )
    return value


def _check_budgets(budgets: Mapping[str, Budget]) -> dict[str, Budget]:
    if not isinstance(budgets, Mapping):
        raise ConfigurationError(
            f"budgets must be a mapping of task name to tokentrace.Budget, got {budgets!r}"
        )
    checked: dict[str, Budget] = {}
    for name, budget in budgets.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"budgets keys are task names (non-empty strings), got {name!r}")
        if not isinstance(budget, Budget):
            raise ConfigurationError(f"budgets[{name!r}] must be a tokentrace.Budget, got {budget!r}")
        checked[name] = budget
    return checked


def _check_limits(limits: Iterable[Limit]) -> tuple[Limit, ...]:
    if isinstance(limits, (str, bytes, Limit)) or not isinstance(limits, Iterable):
        raise ConfigurationError(f"limits must be a list of tokentrace.Limit, got {limits!r}")
    checked = tuple(limits)
    for index, limit in enumerate(checked):
        if not isinstance(limit, Limit):
            raise ConfigurationError(f"limits[{index}] must be a tokentrace.Limit, got {limit!r}")
    return checked


def _limit_store(ledger: Path | str | None, limits: tuple[Limit, ...]) -> Path | str | None:
    """The ledger that holds the limits' counters: the one ``configure`` named, else
    ``TOKENTRACE_LEDGER``'s or the default file (a PostgreSQL URL is checked here)."""
    if not limits:
        return None
    from tokentrace.ledger._postgres import check_url
    from tokentrace.ledger._target import target_of

    target = ledger if ledger is not None else target_of(None)
    if isinstance(target, str):
        check_url(target)
    return target


def configure(
    *,
    service_name: str | None = None,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    exporter: object = None,
    ledger: str | os.PathLike[str] | None = None,
    prices: Iterable[PriceOverride] | None = None,
    capture_content: bool | None = None,
    metrics_include_user: bool | None = None,
    enabled: bool | None = None,
    content_max_chars: int | None = None,
    redact: Callable[[Any], Any] | None = None,
    budgets: Mapping[str, Budget] | None = None,
    detect_duplicates: bool | None = None,
    propagate: str | None = None,
    request_stream_usage: bool | None = None,
    limits: Iterable[Limit] | None = None,
) -> None:
    """Wire tracing, metrics, prices and settings (see ``docs/configuration.md``). Safe to call twice.

    Providers: ``tracer_provider=``/``meter_provider=`` are used as given; else an SDK provider
    the application already registered globally is used; else tokentrace builds providers once
    (exporter from ``exporter=``, ``TOKENTRACE_EXPORTER``, OTLP when ``OTEL_EXPORTER_OTLP_*``
    is set, else the local ledger at ``ledger=``, ``TOKENTRACE_LEDGER`` or the default path).
    Later calls never add exporters again.

    ``propagate`` (or ``TOKENTRACE_PROPAGATE``): which task dimensions travel to other processes
    in OpenTelemetry baggage: ``"tasks"`` (the default: task and root ids and names, feature),
    ``"all"`` (also user and tenant ids), ``"none"``. See docs/backends.md.

    ``request_stream_usage`` (or ``TOKENTRACE_REQUEST_STREAM_USAGE``): send streamed Chat
    Completions that do not ask for their usage asking for it, so that they are exact rather than
    estimated; the extra usage chunk is hidden from the application. Off by default.

    ``limits``: the ``Limit`` list held across processes and replicas, in the ledger's store
    (``ledger=``, else ``TOKENTRACE_LEDGER``, else the default file); it replaces the previous
    list, and ``limits=[]`` removes them. See docs/guards.md.
    """
    global _configured
    # Everything is read and checked before anything changes: a configure() that raises leaves
    # the previous configuration entirely in force.
    current = _telemetry.state.settings
    choice = _exporter_choice(exporter)  # validated even when an existing provider is used
    capture = _capture_choice(capture_content, current.capture_content)
    env_user = _env_bool("TOKENTRACE_METRICS_INCLUDE_USER")
    env_disabled = _env_bool("TOKENTRACE_DISABLED")
    env_max = _env_int("TOKENTRACE_CONTENT_MAX_CHARS")
    env_stream_usage = _env_bool("TOKENTRACE_REQUEST_STREAM_USAGE")
    if content_max_chars is not None and (not isinstance(content_max_chars, int) or content_max_chars < 1):
        raise ConfigurationError(f"content_max_chars must be a positive int, got {content_max_chars!r}")
    if redact is not None and not callable(redact):
        raise ConfigurationError("redact must be a callable that takes and returns the captured content")
    if enabled is None and env_disabled is not None:
        enabled = not env_disabled
    if ledger is not None:
        from tokentrace.ledger._target import target_of

        named: Path | str | None = target_of(ledger)
    else:
        named = current.ledger
    chosen = _check_limits(limits) if limits is not None else current.limits
    store = _limit_store(named, chosen)
    settings = dataclasses.replace(
        current,
        capture_content=capture,
        metrics_include_user=bool(
            metrics_include_user
            if metrics_include_user is not None
            else (env_user or current.metrics_include_user)
        ),
        content_max_chars=content_max_chars or env_max or current.content_max_chars,
        redact=redact if redact is not None else current.redact,
        budgets=_check_budgets(budgets) if budgets is not None else current.budgets,
        detect_duplicates=(
            bool(detect_duplicates) if detect_duplicates is not None else current.detect_duplicates
        ),
        propagate=_propagate_choice(propagate, current.propagate),
        request_stream_usage=bool(
            request_stream_usage
            if request_stream_usage is not None
            else env_stream_usage
            if env_stream_usage is not None
            else current.request_stream_usage
        ),
        enabled=bool(enabled) if enabled is not None else current.enabled,
        genai_cost=_genai_latest_experimental(),
        limits=chosen,
        limit_store=store,
        ledger=named,
    )
    price_file = os.environ.get("TOKENTRACE_PRICES")
    overrides = list(prices) if prices is not None else load_price_file(price_file) if price_file else None
    building = tracer_provider is None and meter_provider is None and not _built and not _has_sdk_provider()
    if building:
        _check_exporter_available(choice)

    if overrides is not None:
        from tokentrace.pricing import set_prices

        set_prices(overrides)  # checks every item before it installs any
    _telemetry.use_settings(settings)
    _configured = True
    if tracer_provider is not None or meter_provider is not None:
        _telemetry.use_providers(tracer_provider, meter_provider)
    elif _built:
        built = _built.get("tracer_provider")
        ledger_only = built is not None and not _is_global(built)
        _telemetry.use_providers(built if ledger_only else None, None)
    elif not building:
        _telemetry.use_providers(None, None)
    else:
        _build_providers(service_name or os.environ.get("OTEL_SERVICE_NAME"), choice, ledger)


def _is_global(provider: object) -> bool:
    return trace.get_tracer_provider() is provider
