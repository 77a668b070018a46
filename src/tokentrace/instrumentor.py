"""Zero-code instrumentation: tokentrace as OpenTelemetry ``BaseInstrumentor`` s.

Registered under the ``opentelemetry_instrumentor`` entry point, so that

    opentelemetry-instrument python app.py

enables tokentrace with no change to ``app.py``: it configures tokentrace (from the ``OTEL_*``
and ``TOKENTRACE_*`` variables, or the providers the OpenTelemetry distro set up) and
instruments every installed provider SDK. Needs ``opentelemetry-instrumentation``
(``pip install 'tokentrace[otel]'``).

There is one entry point for all of tokentrace, ``tokentrace``, and one per built-in
integration, ``tokentrace_<name>`` (``tokentrace_openai``, ``tokentrace_google_genai``,
``tokentrace_httpx``...). ``opentelemetry-instrument`` loads them all; instrumenting twice is a
no-op. ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` decides, whichever loads first:

- ``tokentrace`` listed: nothing of tokentrace is instrumented (every entry point stands down);
- ``tokentrace_openai`` listed: openai is left unpatched, the other integrations are not
  (the ``tokentrace`` entry point instruments every integration not disabled by name).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import Any, ClassVar

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]  # untyped package
    BaseInstrumentor,
)

from tokentrace._core import registry as _registry
from tokentrace._telemetry import config as _config

DISABLED_VARIABLE = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
ALL = "tokentrace"


def entry_point_name(integration: str) -> str:
    """The ``opentelemetry_instrumentor`` entry point of one integration (``tokentrace_openai``)."""
    return f"{ALL}_{integration.replace('-', '_')}"


def _disabled() -> set[str]:
    """The entry point names ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` lists, split as
    ``opentelemetry-instrument`` splits them."""
    return {part.strip() for part in os.environ.get(DISABLED_VARIABLE, "").split(",")}


def _configure(kwargs: dict[str, Any]) -> None:
    _config.configure(
        tracer_provider=kwargs.get("tracer_provider"), meter_provider=kwargs.get("meter_provider")
    )


class TokentraceInstrumentor(BaseInstrumentor):  # type: ignore[misc]  # BaseInstrumentor is untyped
    """Every integration not disabled by name:
    ``TokentraceInstrumentor().instrument(tracer_provider=..., meter_provider=...)``."""

    def instrumentation_dependencies(self) -> Collection[str]:
        # tokentrace instruments whichever provider SDKs are installed; none is required.
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        disabled = _disabled()
        if ALL in disabled:
            return
        _configure(kwargs)
        off = {name for name in _registry.available() if entry_point_name(name) in disabled}
        _registry.instrument_installed(exclude=off)

    def _uninstrument(self, **kwargs: Any) -> None:
        _registry.uninstrument()


class IntegrationInstrumentor(BaseInstrumentor):  # type: ignore[misc]  # BaseInstrumentor is untyped
    """One integration (``integration``), for ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``; a plug-in
    can subclass it for its own ``opentelemetry_instrumentor`` entry point."""

    integration: ClassVar[str]

    def instrumentation_dependencies(self) -> Collection[str]:
        required = _registry.requirement(self.integration)
        return () if required is None else (required,)

    def _instrument(self, **kwargs: Any) -> None:
        disabled = _disabled()
        if ALL in disabled or entry_point_name(self.integration) in disabled:
            return
        _configure(kwargs)
        _registry.instrument_installed([self.integration])

    def _uninstrument(self, **kwargs: Any) -> None:
        _registry.uninstrument(self.integration)


class OpenAIInstrumentor(IntegrationInstrumentor):
    """The ``tokentrace_openai`` entry point."""

    integration = "openai"


class AnthropicInstrumentor(IntegrationInstrumentor):
    """The ``tokentrace_anthropic`` entry point."""

    integration = "anthropic"


class GroqInstrumentor(IntegrationInstrumentor):
    """The ``tokentrace_groq`` entry point."""

    integration = "groq"


class MistralInstrumentor(IntegrationInstrumentor):
    """The ``tokentrace_mistral`` entry point."""

    integration = "mistral"


class CohereInstrumentor(IntegrationInstrumentor):
    """The ``tokentrace_cohere`` entry point."""

    integration = "cohere"


class GoogleGenAIInstrumentor(IntegrationInstrumentor):
    """The ``tokentrace_google_genai`` entry point."""

    integration = "google-genai"


class BedrockInstrumentor(IntegrationInstrumentor):
    """The ``tokentrace_bedrock`` entry point."""

    integration = "bedrock"


class ThreadingInstrumentor(IntegrationInstrumentor):
    """The ``tokentrace_threading`` entry point."""

    integration = "threading"


class ProcessesInstrumentor(IntegrationInstrumentor):
    """The ``tokentrace_processes`` entry point."""

    integration = "processes"


class HttpxInstrumentor(IntegrationInstrumentor):
    """The ``tokentrace_httpx`` entry point."""

    integration = "httpx"


class Httpx2Instrumentor(IntegrationInstrumentor):
    """The ``tokentrace_httpx2`` entry point."""

    integration = "httpx2"


class LiteLLMInstrumentor(IntegrationInstrumentor):
    """The ``tokentrace_litellm`` entry point."""

    integration = "litellm"


class RequestsInstrumentor(IntegrationInstrumentor):
    """The ``tokentrace_requests`` entry point."""

    integration = "requests"


class Lm15Instrumentor(IntegrationInstrumentor):
    """The ``tokentrace_lm15`` entry point."""

    integration = "lm15"


class DspyInstrumentor(IntegrationInstrumentor):
    """The ``tokentrace_dspy`` entry point."""

    integration = "dspy"


class BotocoreInstrumentor(IntegrationInstrumentor):
    """The ``tokentrace_botocore`` entry point."""

    integration = "botocore"


class AiohttpInstrumentor(IntegrationInstrumentor):
    """The ``tokentrace_aiohttp`` entry point."""

    integration = "aiohttp"
