"""Errors that tokentrace raises. Only explicit configuration calls raise them."""

from __future__ import annotations

__all__ = ["ConfigurationError", "IntegrationError", "TokentraceError"]


class TokentraceError(Exception):
    """Base class of every error tokentrace raises."""


class ConfigurationError(TokentraceError, ValueError):
    """A configuration value is invalid; the message says which and what to change."""


class IntegrationError(TokentraceError):
    """A named integration cannot be instrumented (not installed, too old, or unknown)."""
