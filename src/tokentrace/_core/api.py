"""instrument() and uninstrument(), importing the registry (and wrapt) only when first called."""

from __future__ import annotations


def instrument(*names: str) -> list[str]:
    """Patch the installed provider SDKs (all built-ins when no name is given). Idempotent.

    With no names, an SDK the application has not imported yet is patched when it is first
    imported (``instrument()`` itself imports none). A named one is patched at once.

    A named integration that is unknown, not installed or too old raises
    ``tokentrace.exceptions.IntegrationError``. Returns the names newly instrumented.

    When nothing is set up (no ``configure()`` call, no OpenTelemetry SDK TracerProvider
    registered), tokentrace records to its local ledger, as ``configure()`` would.
    """
    from tokentrace._core.registry import instrument as _instrument
    from tokentrace._telemetry.config import ensure_default

    newly = _instrument(*names)
    ensure_default()
    return newly


def uninstrument(*names: str) -> None:
    """Restore the original SDK methods exactly (all instrumented ones when none is named)."""
    from tokentrace._core.registry import uninstrument as _uninstrument

    _uninstrument(*names)


def dropped_spans() -> int:
    """How many spans the exporters that tokentrace built have lost in this process: to a full
    export queue (a backend slower than the application) or to failed exports. The first loss
    logs one warning; a summary is logged at exit. ``Task.totals`` never depend on export."""
    from tokentrace._telemetry.export import dropped_spans as _dropped_spans

    return _dropped_spans()
