"""Integrations: descriptions of the SDKs tokentrace instruments.

Built-ins register through the same ``tokentrace.integrations`` entry-point group that
third-party plug-ins use; see ``docs/architecture.md``.
"""

from tokentrace._core.integration import (
    AttemptHook,
    Integration,
    Method,
    Patch,
    ProviderIntegration,
    Reading,
    Request,
    StreamReader,
    base_url_of,
    sync_and_async,
)

__all__ = [
    "AttemptHook",
    "Integration",
    "Method",
    "Patch",
    "ProviderIntegration",
    "Reading",
    "Request",
    "StreamReader",
    "base_url_of",
    "sync_and_async",
]
