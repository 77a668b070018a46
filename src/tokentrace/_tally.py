"""Thread-safe running sums behind ``Task.totals``."""

from __future__ import annotations

import threading
from decimal import Decimal
from types import MappingProxyType

from tokentrace._pricing import ESTIMATED, INVALID_USAGE, UNPRICED
from tokentrace.types import CallRecord, ModelTotals, Totals

_ZERO = Decimal(0)
_UNPRICED = frozenset({UNPRICED, INVALID_USAGE})


class _Sums:
    __slots__ = (
        "cache_read",
        "cache_write",
        "calls",
        "cost",
        "estimated",
        "input",
        "output",
        "reasoning",
        "retries",
        "unpriced",
    )

    def __init__(self) -> None:
        self.input = self.output = self.cache_read = self.cache_write = self.reasoning = 0
        self.calls = self.retries = self.unpriced = self.estimated = 0
        self.cost = _ZERO

    def add(self, rec: CallRecord) -> None:
        self.calls += 1
        self.retries += rec.retries
        usage = rec.usage
        if usage is not None:
            self.input += usage.input_tokens
            self.output += usage.output_tokens
            self.cache_read += usage.cache_read_tokens
            self.cache_write += usage.cache_write_tokens
            self.reasoning += usage.reasoning_tokens
        if rec.cost_usd is not None:
            self.cost += rec.cost_usd
            if rec.cost_status == ESTIMATED:
                self.estimated += 1
        elif rec.cost_status in _UNPRICED:
            self.unpriced += 1


class Tally:
    """The sums of one task; ``add`` may be called from any thread."""

    __slots__ = ("_by_model", "_lock", "_sums")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sums = _Sums()
        self._by_model: dict[str, tuple[str, _Sums]] = {}

    def add(self, rec: CallRecord) -> None:
        with self._lock:
            self._sums.add(rec)
            entry = self._by_model.get(rec.model)
            if entry is None:
                entry = self._by_model[rec.model] = (rec.provider, _Sums())
            entry[1].add(rec)

    def snapshot(self) -> Totals:
        with self._lock:
            s = self._sums
            by_model = {
                model: ModelTotals(
                    provider=provider,
                    model=model,
                    input_tokens=m.input,
                    output_tokens=m.output,
                    cache_read_tokens=m.cache_read,
                    cache_write_tokens=m.cache_write,
                    reasoning_tokens=m.reasoning,
                    cost_usd=m.cost,
                    llm_calls=m.calls,
                    retries=m.retries,
                    unpriced_calls=m.unpriced,
                    estimated_calls=m.estimated,
                )
                for model, (provider, m) in self._by_model.items()
            }
            return Totals(
                input_tokens=s.input,
                output_tokens=s.output,
                cache_read_tokens=s.cache_read,
                cache_write_tokens=s.cache_write,
                reasoning_tokens=s.reasoning,
                cost_usd=s.cost,
                llm_calls=s.calls,
                retries=s.retries,
                unpriced_calls=s.unpriced,
                estimated_calls=s.estimated,
                by_model=MappingProxyType(by_model),
            )
