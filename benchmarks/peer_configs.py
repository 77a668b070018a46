"""The peer instrumentations that ``overhead.py`` times beside tokentrace, and how to switch each on.

They patch the same SDKs as tokentrace, so they live in an environment of their own
(``benchmarks/peers.sh``). Each one is switched on once, in a worker process of its own, and
never off: not every peer undoes its patches (OpenLLMetry's openai instrumentor leaves its
wrappers in place, so switching it on and off stacks them).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

PEERS = ("otel-contrib", "openllmetry", "openinference", "logfire")
# (peer, provider) -> (module, instrumentor class); Logfire is configured apart.
INSTRUMENTORS = {
    ("otel-contrib", "openai"): ("opentelemetry.instrumentation.openai_v2", "OpenAIInstrumentor"),
    ("openllmetry", "openai"): ("opentelemetry.instrumentation.openai", "OpenAIInstrumentor"),
    ("openllmetry", "anthropic"): ("opentelemetry.instrumentation.anthropic", "AnthropicInstrumentor"),
    ("openinference", "openai"): ("openinference.instrumentation.openai", "OpenAIInstrumentor"),
    ("openinference", "anthropic"): ("openinference.instrumentation.anthropic", "AnthropicInstrumentor"),
}


def _module(peer: str, provider: str) -> str | None:
    if peer == "logfire":
        return "logfire"
    spec = INSTRUMENTORS.get((peer, provider))
    return spec[0] if spec else None


def installed(provider: str) -> list[str]:
    """The peers installed in this environment that instrument ``provider`` (nothing is imported)."""
    found = []
    for peer in PEERS:
        module = _module(peer, provider)
        try:
            present = module is not None and importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent package is missing
            present = False
        if present:
            found.append(peer)
    return found


def switch_on(peer: str, provider: str, tracer_provider: TracerProvider, exporter: Any) -> Any:
    """Instrument ``provider``'s SDK with ``peer`` for the rest of the process; returns what keeps it on."""
    if peer != "logfire":
        module, cls = INSTRUMENTORS[(peer, provider)]
        instrumentor = getattr(importlib.import_module(module), cls)()
        instrumentor.instrument(tracer_provider=tracer_provider)
        return instrumentor
    import logfire
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Logfire keeps its own TracerProvider: give it the same batch processor and dropping exporter
    # as every other configuration.
    logfire.configure(
        send_to_logfire=False,
        console=False,
        inspect_arguments=False,
        additional_span_processors=[BatchSpanProcessor(exporter, max_queue_size=100_000)],
    )
    method = logfire.instrument_openai if provider == "openai" else logfire.instrument_anthropic
    handle = method()  # instruments now; leaving the context manager would undo it
    handle.__enter__()
    return handle
