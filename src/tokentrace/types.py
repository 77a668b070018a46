"""Public value types: frozen snapshots of what tokentrace measured."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from tokentrace._usage import Usage

__all__ = ["ModelTotals", "Totals", "Usage"]

_EMPTY: Mapping[str, ModelTotals] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class _Counts:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    llm_calls: int = 0
    retries: int = 0
    unpriced_calls: int = 0
    estimated_calls: int = 0


@dataclass(frozen=True, slots=True)
class ModelTotals(_Counts):
    """A task's totals for one model (the same fields as ``Totals``, plus provider and model)."""

    provider: str = ""
    model: str = ""


@dataclass(frozen=True, slots=True)
class Totals(_Counts):
    """A task's rolled-up totals: its own calls and those of every nested task.

    ``input_tokens`` includes cache reads and writes; ``output_tokens`` includes reasoning.
    ``cost_usd`` is the exact sum over priced calls; ``unpriced_calls`` says how many calls it
    leaves out, and ``estimated_calls`` how many of its calls rest on estimated numbers.
    """

    by_model: Mapping[str, ModelTotals] = field(default_factory=lambda: _EMPTY)
