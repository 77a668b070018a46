"""The top-level functions, importing their heavier modules only when first called."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokentrace.pricing import PriceOverride


def instrument(*names: str) -> list[str]:
    """Patch the installed provider SDKs (all built-ins when no name is given). Idempotent.

    A named integration that is unknown, not installed or too old raises
    ``tokentrace.exceptions.IntegrationError``. Returns the names newly instrumented.
    """
    from tokentrace._registry import instrument as _instrument

    return _instrument(*names)


def uninstrument(*names: str) -> None:
    """Restore the original SDK methods exactly (all instrumented ones when none is named)."""
    from tokentrace._registry import uninstrument as _uninstrument

    _uninstrument(*names)


def configure(
    *,
    service_name: str | None = None,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    exporter: object = None,
    prices: Iterable[PriceOverride] | None = None,
    capture_content: bool | None = None,
    metrics_include_user: bool | None = None,
    enabled: bool | None = None,
    content_max_chars: int | None = None,
    redact: Callable[[Any], Any] | None = None,
) -> None:
    """Wire tracing, metrics, prices and settings; see ``docs/configuration.md``. Safe to call twice."""
    from tokentrace._config import configure as _configure

    _configure(
        service_name=service_name,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        exporter=exporter,
        prices=prices,
        capture_content=capture_content,
        metrics_include_user=metrics_include_user,
        enabled=enabled,
        content_max_chars=content_max_chars,
        redact=redact,
    )
