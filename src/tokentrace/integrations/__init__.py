"""Integrations: descriptions of the SDKs tokentrace instruments, and the plug-in API.

Everything an integration needs is importable from here, and the built-in integrations import
from here too: a third-party integration is written with the same names as the built-ins. It
registers through the ``tokentrace.integrations`` entry-point group, as the built-ins do; see
``docs/architecture.md`` for a complete one.

- Describing an SDK: ``Integration``, ``ProviderIntegration``, ``Method``, ``sync_and_async``,
  ``AttemptHook``, ``Patch``, ``Request``, ``Reading``, ``Inference``, ``StreamReader``,
  ``base_url_of``; ``host_of`` names the provider an API host belongs to.
- Reading usage from a provider's payload: ``Usage``, ``Modalities``, ``UsageError``,
  ``values``, ``field``, ``number``, ``count``, ``counts``, ``reported``; ``served_tier`` for a
  service tier the provider names.
- Counting tokens offline (the ``estimate`` extra), for a stream cut before its usage:
  ``count_text``, ``count_chat_messages``, ``EstimateUnavailable``.
- The call in flight, for SDKs that nest or retry: ``active_call``, ``settle_attempt``,
  ``call_wrapper``; ``guarded`` runs a step of your own inside tokentrace's error boundary.
"""

from tokentrace._core.call import Call, active_call, settle_attempt
from tokentrace._core.engine import call_wrapper
from tokentrace._core.integration import (
    AttemptHook,
    Integration,
    Method,
    Patch,
    ProviderIntegration,
    Reading,
    RelayIntegration,
    Request,
    StreamReader,
    base_url_of,
    sync_and_async,
)
from tokentrace._foundation.providers import Host, host_of
from tokentrace._foundation.safety import guarded
from tokentrace._pricing.inferences import Inference
from tokentrace._pricing.prices import served_tier
from tokentrace._tokens.tokenize import EstimateUnavailable, count_chat_messages, count_text
from tokentrace._tokens.usage import (
    Modalities,
    Usage,
    UsageError,
    count,
    counts,
    field,
    number,
    reported,
    values,
)

__all__ = [
    "AttemptHook",
    "Call",
    "EstimateUnavailable",
    "Host",
    "Inference",
    "Integration",
    "Method",
    "Modalities",
    "Patch",
    "ProviderIntegration",
    "Reading",
    "RelayIntegration",
    "Request",
    "StreamReader",
    "Usage",
    "UsageError",
    "active_call",
    "base_url_of",
    "call_wrapper",
    "count",
    "count_chat_messages",
    "count_text",
    "counts",
    "field",
    "guarded",
    "host_of",
    "number",
    "reported",
    "served_tier",
    "settle_attempt",
    "sync_and_async",
    "values",
]
