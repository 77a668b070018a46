"""``tokentrace whatif``: what the recorded calls would have cost under another model, or under
today's prices, compared with what they were recorded at.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tokentrace._pricing import modal as _modal
from tokentrace._tokens.usage import Modalities, Usage
from tokentrace.ledger._report import DIMENSIONS, Filters, check_dimensions, money, text


@dataclass
class WhatIfGroup:
    key: dict[str, str | None]
    calls: int = 0
    current_usd: Decimal = Decimal(0)
    whatif_usd: Decimal = Decimal(0)
    not_repriced: int = 0
    """Calls that could not be re-priced (no usage, or no price for the target)."""
    tokenizer_differs: int = 0
    """Calls whose tokens were counted by another provider's tokenizer: the target would count differently."""
    reasoning: int = 0
    """Calls with reasoning tokens: another model may think more or less."""

    @property
    def difference_usd(self) -> Decimal:
        return self.whatif_usd - self.current_usd

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.key,
            "calls": self.calls,
            "current_usd": text(self.current_usd),
            "whatif_usd": text(self.whatif_usd),
            "difference_usd": text(self.difference_usd),
            "not_repriced": self.not_repriced,
            "tokenizer_differs": self.tokenizer_differs,
            "reasoning_calls": self.reasoning,
        }


def whatif(
    conn: sqlite3.Connection,
    by: Sequence[str],
    filters: Filters,
    *,
    model: str | None,
    provider: str | None,
) -> tuple[list[WhatIfGroup], WhatIfGroup]:
    """Re-price recorded usage under ``model`` (or each call's own model under the current price
    sheet) and compare with what was recorded. Only calls with usage are compared."""
    from tokentrace._pricing import prices as _pricing

    check_dimensions(by)
    columns = [DIMENSIONS[d] for d in by]
    where, params = filters.sql()
    where_sql = f"WHERE {where}" if where else ""
    select = "".join(f"{c}, " for c in columns)
    sql = (
        f"SELECT {select} provider, model, input_tokens, output_tokens, cache_read_tokens, "
        f"cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, web_search_requests, "
        f"file_search_requests, modalities, "
        f"cost_pico, end_ns - start_ns FROM calls {where_sql}"
    )
    target_provider = provider
    if model is not None and target_provider is None:
        target_provider = guess_provider(model)
    groups: dict[tuple[Any, ...], WhatIfGroup] = {}
    total = WhatIfGroup(key={})
    for row in conn.execute(sql, params):
        key = tuple(row[: len(columns)])
        call_provider, call_model, inp, out, read, write, write_1h, reasoning = row[
            len(columns) : len(columns) + 8
        ]
        searches, file_searches, modal, picos, duration = row[len(columns) + 8 :]
        group = groups.get(key)
        if group is None:
            group = groups[key] = WhatIfGroup(key=dict(zip(by, key, strict=True)))
        for g in (group, total):
            g.calls += 1
        if inp is None:
            for g in (group, total):
                g.not_repriced += 1
            continue
        usage = Usage(
            inp,
            out or 0,
            read or 0,
            write or 0,
            write_1h or 0,
            reasoning or 0,
            searches,
            file_searches,
            _modalities(modal),
        )
        price_provider = target_provider or call_provider or "openai"
        price = _pricing.lookup(model or call_model, price_provider)
        if price is None or picos is None:
            for g in (group, total):
                g.not_repriced += 1
            continue
        new = price.cost(usage, duration or 0)
        for g in (group, total):
            g.current_usd += money(picos)
            g.whatif_usd += new
            if model is not None and target_provider is not None and call_provider != target_provider:
                g.tokenizer_differs += 1
            if model is not None and reasoning:
                g.reasoning += 1
    ordered = sorted(groups.values(), key=lambda g: (-g.current_usd, [str(v) for v in g.key.values()]))
    return ordered, total


def _modalities(text: str | None) -> Modalities | None:
    """A call's recorded audio, image and video counts (the ledger's JSON), or ``None``."""
    if not text:
        return None
    try:
        counts = json.loads(text)
        return Modalities(**{name: counts[name] for name in _modal.NAMES if name in counts})
    except (ValueError, TypeError):  # not written by tokentrace: re-price as text
        return None


def guess_provider(model: str) -> str | None:
    """The provider a model's name points to, for re-pricing it when none is given."""
    lowered = model.lower()
    if lowered.startswith(("gpt-", "o1", "o3", "o4", "text-embedding", "chatgpt")):
        return "openai"
    if lowered.startswith("claude"):
        return "anthropic"
    if lowered.startswith("gemini"):
        return "google"
    return None
