"""Zero-code instrumentation: tokentrace as an OpenTelemetry ``BaseInstrumentor``.

Registered under the ``opentelemetry_instrumentor`` entry point, so that

    opentelemetry-instrument python app.py

enables tokentrace with no change to ``app.py``: it configures tokentrace (from the ``OTEL_*``
and ``TOKENTRACE_*`` variables, or the providers the OpenTelemetry distro set up) and
instruments every installed provider SDK. ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=tokentrace``
turns it off. Needs ``opentelemetry-instrumentation`` (``pip install 'tokentrace[otel]'``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]  # untyped package
    BaseInstrumentor,
)

import tokentrace


class TokentraceInstrumentor(BaseInstrumentor):  # type: ignore[misc]  # BaseInstrumentor is untyped
    """``TokentraceInstrumentor().instrument(tracer_provider=..., meter_provider=...)``."""

    def instrumentation_dependencies(self) -> Collection[str]:
        # tokentrace instruments whichever provider SDKs are installed; none is required.
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        tokentrace.configure(
            tracer_provider=kwargs.get("tracer_provider"), meter_provider=kwargs.get("meter_provider")
        )
        tokentrace.instrument()

    def _uninstrument(self, **kwargs: Any) -> None:
        tokentrace.uninstrument()
