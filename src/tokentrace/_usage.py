"""Token usage as tokentrace normalises it, and safe readers for provider payloads.

The convention is OpenTelemetry's: ``input_tokens`` *includes* cache reads and cache writes,
``output_tokens`` *includes* reasoning tokens; the subsets are reported beside the totals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

_MISSING: Final = object()


class UsageError(ValueError):
    """A provider reported a token count that is not a count (string, float, huge, ...)."""


# Far above any real request, far below anything that would overflow a backend's int64.
MAX_TOKENS: Final = 10**12


@dataclass(frozen=True, slots=True)
class Usage:
    """The tokens of one LLM call, normalised (see the module docstring)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0

    def problem(self) -> str | None:
        """Why these numbers cannot be true, or ``None`` when they are consistent."""
        inp, out = self.input_tokens, self.output_tokens
        read, write, write_1h, reasoning = (
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.cache_write_1h_tokens,
            self.reasoning_tokens,
        )
        if (
            0 <= read + write <= inp <= MAX_TOKENS
            and 0 <= reasoning <= out <= MAX_TOKENS
            and read >= 0
            and write >= 0
            and 0 <= write_1h <= write
        ):
            return None  # the common case, checked in one expression
        for name in self.__slots__:
            value = getattr(self, name)
            if value < 0:
                return f"{name} is negative ({value})"
            if value > MAX_TOKENS:
                return f"{name} is implausibly large ({value})"
        if self.cache_read_tokens + self.cache_write_tokens > self.input_tokens:
            return "cache tokens exceed input tokens"
        if self.cache_write_1h_tokens > self.cache_write_tokens:
            return "1-hour cache writes exceed cache writes"
        if self.reasoning_tokens > self.output_tokens:
            return "reasoning tokens exceed output tokens"
        return None


def field(obj: object, *path: str) -> Any:
    """``obj.a.b`` or ``obj["a"]["b"]``, whichever the payload is; ``None`` when any step is missing."""
    for name in path:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
    return obj


def count(obj: object, *path: str) -> int:
    """The token count at ``path`` (0 when absent); raises ``UsageError`` for a non-count."""
    if len(path) == 1 and obj is not None and type(obj) is not dict:
        value = getattr(obj, path[0], _MISSING)  # the common case: one attribute of an SDK model
        if value is _MISSING:
            value = field(obj, *path)
    else:
        value = field(obj, *path)
    if type(value) is int:
        return value
    if value is None:
        return 0
    if isinstance(value, bool):
        raise UsageError(f"{'.'.join(path)} is a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise UsageError(f"{'.'.join(path)} is not a token count: {type(value).__name__}")


def has(obj: object, *path: str) -> bool:
    """Whether ``path`` is present (and not ``None``) in the payload."""
    return field(obj, *path) is not None
