"""Further inferences a call is billed for that its provider reports apart from its usage.

Anthropic reports some of a request's billed sampling only in ``usage.iterations``, not in its
top-level counts: a ``compaction`` iteration (the call's own model summarising a context that
grew past its threshold) and an ``advisor_message`` iteration (the advisor tool's model, asked
for guidance mid-generation). Their tokens join the call's; each is priced at its own model's
rates, as a request of its own would be (a long-context tier applies to each on its own).
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING

from tokentrace._pricing import prices as _pricing
from tokentrace._pricing.money import Parts
from tokentrace._tokens.usage import Modalities, Usage

if TYPE_CHECKING:
    from tokentrace._core.integration import Inference

_MODAL = tuple(f.name for f in fields(Modalities))


def problem(more: tuple[Inference, ...]) -> str | None:
    """Why one of the further inferences' counts cannot be true, or ``None``."""
    for number, (_, usage) in enumerate(more, 1):
        found = usage.problem()
        if found is not None:
            return f"iteration {number}: {found}"
    return None


def combined(usage: Usage, more: tuple[Inference, ...]) -> Usage:
    """``usage`` with the further inferences' tokens added to each count."""
    every = (usage, *(u for _, u in more))

    def total(name: str) -> int:
        return sum(getattr(u, name) for u in every)

    modal = [u.modalities for u in every if u.modalities is not None]
    return Usage(
        total("input_tokens"),
        total("output_tokens"),
        total("cache_read_tokens"),
        total("cache_write_tokens"),
        total("cache_write_1h_tokens"),
        total("reasoning_tokens"),
        total("web_search_requests"),
        total("file_search_requests"),
        Modalities(*(sum(getattr(m, name) for m in modal) for name in _MODAL)) if modal else None,
    )


def parts(
    own: Parts,
    more: tuple[Inference, ...],
    model: str,
    provider: str,
    base_url: str | None,
    elapsed_ns: int,
    tier: str | None,
) -> Parts | None:
    """The call's cost split (``own``, its own inference's) with each further inference's
    added, priced at its model's rates (``None``: the call's own model, at its tier); ``None``
    when one of those models has no price (the call is then unpriced, never undercounted)."""
    total = list(own)
    for other, usage in more:
        price = _pricing.lookup(
            other or model, provider, base_url, elapsed_ns, tier if other is None else None
        )
        if price is None or (not price.output_priced and usage.output_tokens):
            _pricing.warn_unpriced_once(provider, other or model)
            return None
        for i, part in enumerate(price.parts(usage)):
            total[i] += part
    return Parts(*total)
