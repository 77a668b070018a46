"""``tokentrace whatif``: what the recorded calls would have cost under another model, or under
today's prices, compared with what they were recorded at.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any, NamedTuple

from tokentrace._pricing import inferences as _inferences
from tokentrace._pricing import modal as _modal
from tokentrace._pricing.money import usd
from tokentrace._pricing.prices import SOURCE_PROVIDER
from tokentrace._tokens.usage import Modalities, Usage
from tokentrace.ledger._dialect import Reader
from tokentrace.ledger._report import DIMENSIONS, Filters, check_dimensions, text


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
    conn: Reader,
    by: Sequence[str],
    filters: Filters,
    *,
    model: str | None,
    provider: str | None,
) -> tuple[list[WhatIfGroup], WhatIfGroup]:
    """Re-price recorded usage under ``model`` (or each call's own model under the current price
    sheet) and compare with what was recorded. Only calls with usage are compared.

    Each call is priced by the rule that recorded it (``_pricing.charge``), with what the ledger
    kept of it: its usage, service tier, further inferences, billed tokens, the time it was made,
    and a cost its gateway reported (which stands for a call re-priced under its own model). So
    a call re-priced under the model it was recorded under gives back its recorded cost. Under
    another model, the call's own provider prices it when it has a price for that model, else
    the provider the model's name points to (or ``provider``, when given)."""
    from tokentrace._pricing.charge import charge

    check_dimensions(by)
    columns = [DIMENSIONS[d] for d in by]
    where, params = filters.sql()
    where_sql = f"WHERE {where}" if where else ""
    select = "".join(f"{c}, " for c in columns)
    sql = (
        f"SELECT {select} provider, model, request_model, input_tokens, output_tokens, "
        f"cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, "
        f"web_search_requests, file_search_requests, modalities, cost_usd, cost_source, "
        f"usage_estimated, start_ns, end_ns, base_url, service_tier, iterations, billed_input_tokens, "
        f"billed_output_tokens FROM calls {where_sql}"
    )
    guessed = guess_provider(model) if model is not None and provider is None else None
    groups: dict[tuple[Any, ...], WhatIfGroup] = {}
    # Each group's re-priced cost in the price's integer units (10**-24 USD), made Decimal USD
    # once at the end; the total is the groups' sum.
    units: dict[tuple[Any, ...], int] = {}
    for row in conn.execute(sql, params):
        key = tuple(row[: len(columns)])
        call = _Row(*row[len(columns) :])
        group = groups.get(key)
        if group is None:
            group = groups[key] = WhatIfGroup(key=dict(zip(by, key, strict=True)))
            units[key] = 0
        group.calls += 1
        if call.input_tokens is None or call.cost_usd is None:
            group.not_repriced += 1
            continue
        usage = Usage(
            call.input_tokens,
            call.output_tokens or 0,
            call.cache_read_tokens or 0,
            call.cache_write_tokens or 0,
            call.cache_write_1h_tokens or 0,
            call.reasoning_tokens or 0,
            call.web_search_requests,
            call.file_search_requests,
            _modalities(call.modalities),
        )
        more = _inferences.from_json(call.iterations)
        if more:
            usage = _inferences.separated(usage, more)
        target = model or call.model
        own_model = target == call.model
        billed = None
        if call.billed_input_tokens is not None:
            billed = Usage(call.billed_input_tokens, call.billed_output_tokens or 0)

        recorded = Decimal(call.cost_usd)
        price = partial(
            charge,
            usage,
            model=target,
            base_url=call.base_url,
            at=call.start_ns / 1e9,
            duration_ns=call.end_ns - call.start_ns,
            tier=call.service_tier,
            billed=billed,
            inferences=more,
            # What the gateway charged stands for the call under its own model.
            reported_cost=recorded if own_model and call.cost_source == SOURCE_PROVIDER else None,
            estimated=bool(call.usage_estimated),
            request_model=call.request_model if own_model else None,
            warn_unpriced=False,
        )
        target_provider = provider or call.provider or guessed or "openai"
        charged = price(provider=target_provider)
        if charged.cost is None and provider is None and guessed is not None and guessed != target_provider:
            target_provider = guessed
            charged = price(provider=guessed)
        if charged.cost is None:
            group.not_repriced += 1
            continue
        group.current_usd += recorded
        units[key] += charged.cost
        if model is not None and target_provider != call.provider:
            group.tokenizer_differs += 1
        if model is not None and call.reasoning_tokens:
            group.reasoning += 1
    total = WhatIfGroup(key={})
    for key, group in groups.items():
        group.whatif_usd = usd(units[key])
        total.calls += group.calls
        total.current_usd += group.current_usd
        total.not_repriced += group.not_repriced
        total.tokenizer_differs += group.tokenizer_differs
        total.reasoning += group.reasoning
    total.whatif_usd = usd(sum(units.values()))
    ordered = sorted(groups.values(), key=lambda g: (-g.current_usd, [str(v) for v in g.key.values()]))
    return ordered, total


class _Row(NamedTuple):
    provider: str | None
    model: str
    request_model: str | None
    input_tokens: int | None
    output_tokens: int | None
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    cache_write_1h_tokens: int | None
    reasoning_tokens: int | None
    web_search_requests: int
    file_search_requests: int
    modalities: str | None
    cost_usd: str | None
    cost_source: str | None
    usage_estimated: int
    start_ns: int
    end_ns: int
    base_url: str | None
    service_tier: str | None
    iterations: str | None
    billed_input_tokens: int | None
    billed_output_tokens: int | None


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
