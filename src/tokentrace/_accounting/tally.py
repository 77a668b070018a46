"""Thread-safe running sums behind ``Task.totals``."""

from __future__ import annotations

import threading
from decimal import Decimal
from types import MappingProxyType

from tokentrace._pricing.money import Parts, usd
from tokentrace._pricing.prices import ESTIMATED, INVALID_USAGE, UNPRICED
from tokentrace._tokens.usage import Usage
from tokentrace.types import CostBreakdown, ModelTotals, Totals

_UNPRICED = frozenset({UNPRICED, INVALID_USAGE})
# Request digests a task remembers for duplicate detection; past this, new ones are not added.
MAX_DIGESTS = 65_536


class CallRecord:
    """One logical LLM call as it is charged to tasks (internal; a plain slotted class for speed)."""

    __slots__ = (
        "cost_status",
        "cost_units",
        "digest",
        "error_type",
        "model",
        "parts",
        "provider",
        "retries",
        "usage",
        "waste_tokens",
        "waste_units",
    )

    def __init__(
        self,
        provider: str,
        model: str,
        usage: Usage | None,
        cost_units: int | None,
        cost_status: str,
        retries: int,
        error_type: str | None = None,
        parts: Parts | None = None,
        digest: int | None = None,
        waste_tokens: int = 0,
        waste_units: int = 0,
    ) -> None:
        self.provider = provider
        self.model = model
        self.usage = usage
        self.cost_units = cost_units
        """The cost in units of 10**-24 USD (``None``: not priced)."""
        self.cost_status = cost_status
        self.retries = retries
        self.error_type = error_type
        self.parts = parts
        """The cost split as ``PriceInfo.parts`` returns it (``None``: all of it is "other")."""
        self.digest = digest
        """A keyed hash of the normalised request, for duplicate detection (never the content)."""
        self.waste_tokens = waste_tokens
        self.waste_units = waste_units
        """What attempts billed whose answer was thrown away (a library's retry after a billed
        response, a fallback after a stream that failed midway): part of the call's usage and
        cost, and retry waste though the call succeeded."""

    @property
    def cost_usd(self) -> Decimal | None:
        """The cost in USD, exact."""
        units = self.cost_units
        return None if units is None else usd(units)


class _Sums:
    __slots__ = (
        "cache_read",
        "cache_write",
        "calls",
        "dup_calls",
        "dup_cost",
        "estimated",
        "input",
        "output",
        "parts",
        "provider",
        "reasoning",
        "retries",
        "unpriced",
        "waste_cost",
        "waste_tokens",
    )

    def __init__(self, provider: str = "") -> None:
        self.provider = provider
        self.input = self.output = self.cache_read = self.cache_write = self.reasoning = 0
        self.calls = self.retries = self.unpriced = self.estimated = 0
        self.dup_calls = self.waste_tokens = 0
        # Money in units of 10**-24 USD; ``parts`` sums each call's ``Parts``, field by field.
        self.dup_cost = self.waste_cost = 0
        self.parts: list[int] = [0, 0, 0, 0, 0]

    def breakdown(self) -> CostBreakdown:
        p = self.parts
        return CostBreakdown(usd(p[0]), usd(p[1]), usd(p[2]), usd(p[3]), usd(p[4]))

    @property
    def cost(self) -> Decimal:
        return usd(sum(self.parts))

    def merge(self, m: _Sums) -> None:
        self.input += m.input
        self.output += m.output
        self.cache_read += m.cache_read
        self.cache_write += m.cache_write
        self.reasoning += m.reasoning
        self.calls += m.calls
        self.retries += m.retries
        self.unpriced += m.unpriced
        self.estimated += m.estimated
        self.dup_calls += m.dup_calls
        self.dup_cost += m.dup_cost
        self.waste_tokens += m.waste_tokens
        self.waste_cost += m.waste_cost
        for i in range(5):
            self.parts[i] += m.parts[i]

    def fields(self) -> dict[str, object]:
        return {
            "input_tokens": self.input,
            "output_tokens": self.output,
            "cache_read_tokens": self.cache_read,
            "cache_write_tokens": self.cache_write,
            "reasoning_tokens": self.reasoning,
            "cost_usd": self.cost,
            "llm_calls": self.calls,
            "retries": self.retries,
            "unpriced_calls": self.unpriced,
            "estimated_calls": self.estimated,
            "duplicate_calls": self.dup_calls,
            "duplicate_cost_usd": usd(self.dup_cost),
            "retry_waste_tokens": self.waste_tokens,
            "retry_waste_cost_usd": usd(self.waste_cost),
            "cost_breakdown": self.breakdown(),
        }


class Tally:
    """The sums of one task, per model; ``add`` may be called from any thread.

    Only per-model sums are kept on the hot path; the task's totals are their sum, computed
    when a snapshot is taken.
    """

    __slots__ = ("_by_model", "_lock", "_seen")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_model: dict[str, _Sums] = {}
        self._seen: set[int] | None = None

    def add(self, rec: CallRecord) -> bool:
        """Add one call; returns whether it duplicates an earlier successful call of this task.

        One function on purpose: it runs for every call and every enclosing task.
        """
        digest = rec.digest
        usage = rec.usage
        cost = rec.cost_units
        failed = rec.error_type is not None
        with self._lock:
            duplicate = False
            if digest is not None:
                seen = self._seen
                if seen is None:
                    seen = self._seen = set()
                if digest in seen:
                    duplicate = True
                elif not failed and len(seen) < MAX_DIGESTS:
                    # Only an answered request makes its twin redundant; a failed one makes it a retry.
                    seen.add(digest)
            sums = self._by_model.get(rec.model)
            if sums is None:
                sums = self._by_model[rec.model] = _Sums(rec.provider)
            sums.calls += 1
            sums.retries += rec.retries
            if usage is not None:
                sums.input += usage.input_tokens
                sums.output += usage.output_tokens
                sums.cache_read += usage.cache_read_tokens
                sums.cache_write += usage.cache_write_tokens
                sums.reasoning += usage.reasoning_tokens
                if failed:
                    sums.waste_tokens += usage.input_tokens + usage.output_tokens
                else:
                    sums.waste_tokens += rec.waste_tokens
            if cost is not None:
                p = sums.parts
                parts = rec.parts
                if parts is None:
                    p[4] += cost
                else:
                    p[0] += parts.fresh_input
                    p[1] += parts.cache_read
                    p[2] += parts.cache_write
                    p[3] += parts.output
                    p[4] += parts.other
                if rec.cost_status == ESTIMATED:
                    sums.estimated += 1
                if failed:
                    sums.waste_cost += cost
                else:
                    sums.waste_cost += rec.waste_units
                if duplicate:
                    sums.dup_cost += cost
            elif rec.cost_status in _UNPRICED:
                sums.unpriced += 1
            if duplicate:
                sums.dup_calls += 1
        return duplicate

    def snapshot(self) -> Totals:
        with self._lock:
            by_model: dict[str, ModelTotals] = {}
            t = _Sums()
            for model, m in self._by_model.items():
                by_model[model] = ModelTotals(provider=m.provider, model=model, **m.fields())  # type: ignore[arg-type]
                t.merge(m)
        return Totals(by_model=MappingProxyType(by_model), **t.fields())  # type: ignore[arg-type]
