"""The one pricing rule: what a call with this usage is charged, for recording and re-pricing.

The engine prices each call it records with ``charge``, and ``tokentrace whatif`` re-prices the
ledger's calls with it, so a call re-priced under its own model gives back what was recorded.
The rule, in order:

1. Counts that cannot be true make the call ``invalid_usage`` (or ``unpriced`` when only the
   missing ``estimate`` extra kept tokentrace from counting them), with the reason. Cache reads
   and writes over the same tokens are kept and priced, and the disagreement noted: ``estimated``.
2. Further inferences (Anthropic's compaction and advisor iterations) join the call's tokens.
3. A cost the provider or gateway reported itself (OpenRouter's ``usage.cost``) is the cost.
4. Otherwise the model's price as of when the call was made, at the service tier it was served
   at (the request's model when the response's has none); the tokens the provider bills
   (Cohere's billed units) when it reports them apart; each further inference at its own
   model's rates. No price, or an input-only price for a call with output: ``unpriced``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from tokentrace._pricing import inferences as _inferences
from tokentrace._pricing import prices as _pricing
from tokentrace._pricing.inferences import Inference
from tokentrace._pricing.money import Parts, to_units
from tokentrace._tokens.tokenize import NO_ESTIMATE
from tokentrace._tokens.usage import CACHE_OVERLAP, Usage


class Charge(NamedTuple):
    """What a call is charged, and why."""

    status: str
    """``priced``, ``estimated``, ``unpriced`` or ``invalid_usage``."""
    usage: Usage | None
    """The tokens the call counts (its own and its further inferences'); ``None`` when its counts
    cannot be true."""
    cost: int | None = None
    """In units of 10**-24 USD; ``None`` when unpriced."""
    parts: Parts | None = None
    """The cost split; ``None`` for a provider-reported cost (all of it is "other")."""
    source: str | None = None
    problem: str | None = None
    """Why the call is unpriced or its counts invalid."""
    note: str | None = None
    """A disagreement in the counts that was kept and priced (the cost is ``estimated``)."""


def charge(
    usage: Usage,
    *,
    model: str,
    provider: str,
    base_url: str | None = None,
    elapsed_ns: int = 0,
    at: float | None = None,
    duration_ns: int = 0,
    tier: str | None = None,
    billed: Usage | None = None,
    inferences: tuple[Inference, ...] = (),
    reported_cost: Decimal | None = None,
    estimated: bool = False,
    request_model: str | None = None,
    warn_unpriced: bool = True,
) -> Charge:
    """Price one call's ``usage`` by the rule above.

    The price is the one in force when the call was made: ``at`` (POSIX seconds) when given,
    else ``elapsed_ns`` ago (0: now). ``duration_ns`` apportions an hourly self-hosted rate.
    ``request_model`` is tried when ``model`` (the response's) has no price. ``estimated``
    says the counts were estimated offline. ``warn_unpriced`` logs a model without a price once
    (re-pricing counts them instead).
    """
    note = None
    own = usage
    problem = usage.problem()
    if problem == CACHE_OVERLAP:
        note, problem = problem, None
    if inferences and problem is None:
        problem = _inferences.problem(inferences)
        if problem is None:
            usage = _inferences.combined(usage, inferences)
    if problem is not None:
        status = _pricing.UNPRICED if problem == NO_ESTIMATE else _pricing.INVALID_USAGE
        return Charge(status, None, problem=problem)
    if reported_cost is not None:
        cost = to_units(reported_cost)
        return Charge(_pricing.PRICED, usage, cost, source=_pricing.SOURCE_PROVIDER, note=note)

    def find(name: str, served: str | None) -> _pricing.PriceInfo | None:
        if at is None:
            return _pricing.lookup(name, provider, base_url, elapsed_ns, served)
        return _pricing.lookup_at(name, provider, base_url, at, served)

    # The engine's case (``at`` is None, on every call) looks its price up without ``find``.
    price = _pricing.lookup(model, provider, base_url, elapsed_ns, tier) if at is None else find(model, tier)
    if price is None and request_model and request_model != model:
        price = find(request_model, tier)
    # The call's own inference is billed for ``own`` (``usage`` has the further inferences' too).
    if billed is not None:
        own = billed
    if price is not None and not price.output_priced and own.output_tokens:
        price = None  # an input-only price cannot price output tokens
    if price is None:
        if warn_unpriced:
            _pricing.warn_unpriced_once(provider, model)
        return Charge(_pricing.UNPRICED, usage, note=note)
    parts = price.parts(own, duration_ns)
    if inferences:
        unpriced, with_more = _inferences.parts(parts, inferences, model, tier, find)
        if with_more is None:
            if warn_unpriced:
                _pricing.warn_unpriced_once(provider, unpriced)
            return Charge(_pricing.UNPRICED, usage, note=note)
        parts = with_more
    # How a provider billed counts that disagree is not known: not exact either.
    status = _pricing.ESTIMATED if estimated or price.estimated or note is not None else _pricing.PRICED
    return Charge(status, usage, sum(parts), parts, price.source, None, note)
