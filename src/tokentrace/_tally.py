"""Thread-safe running sums behind ``Task.totals``."""

from __future__ import annotations

import threading
from decimal import Decimal
from types import MappingProxyType

from tokentrace._pricing import ESTIMATED, INVALID_USAGE, UNPRICED
from tokentrace._usage import Usage
from tokentrace.types import ModelTotals, Totals

_ZERO = Decimal(0)
_UNPRICED = frozenset({UNPRICED, INVALID_USAGE})


class CallRecord:
    """One logical LLM call as it is charged to tasks (internal; a plain slotted class for speed)."""

    __slots__ = ("cost_status", "cost_usd", "error_type", "model", "provider", "retries", "usage")

    def __init__(
        self,
        provider: str,
        model: str,
        usage: Usage | None,
        cost_usd: Decimal | None,
        cost_status: str,
        retries: int,
        error_type: str | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.usage = usage
        self.cost_usd = cost_usd
        self.cost_status = cost_status
        self.retries = retries
        self.error_type = error_type


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
    """The sums of one task, per model; ``add`` may be called from any thread.

    Only per-model sums are kept on the hot path; the task's totals are their sum, computed
    when a snapshot is taken.
    """

    __slots__ = ("_by_model", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_model: dict[str, tuple[str, _Sums]] = {}

    def add(self, rec: CallRecord) -> None:
        with self._lock:
            entry = self._by_model.get(rec.model)
            if entry is None:
                entry = self._by_model[rec.model] = (rec.provider, _Sums())
            entry[1].add(rec)

    def snapshot(self) -> Totals:
        with self._lock:
            by_model: dict[str, ModelTotals] = {}
            t = _Sums()
            for model, (provider, m) in self._by_model.items():
                by_model[model] = ModelTotals(
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
                t.input += m.input
                t.output += m.output
                t.cache_read += m.cache_read
                t.cache_write += m.cache_write
                t.reasoning += m.reasoning
                t.cost += m.cost
                t.calls += m.calls
                t.retries += m.retries
                t.unpriced += m.unpriced
                t.estimated += m.estimated
        return Totals(
            input_tokens=t.input,
            output_tokens=t.output,
            cache_read_tokens=t.cache_read,
            cache_write_tokens=t.cache_write,
            reasoning_tokens=t.reasoning,
            cost_usd=t.cost,
            llm_calls=t.calls,
            retries=t.retries,
            unpriced_calls=t.unpriced,
            estimated_calls=t.estimated,
            by_model=MappingProxyType(by_model),
        )
