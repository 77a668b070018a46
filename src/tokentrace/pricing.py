"""Prices: where tokentrace gets them and how you override them.

Resolution order for a call's model: your exact :class:`Rates`, your pattern :class:`Rates`
(``fnmatch`` globs such as ``"ft:gpt-4o*"``), your :class:`Alias` (an Azure deployment name
priced as the model it serves), the bundled ``genai-prices`` database (with any
:class:`Discount` applied), and otherwise *unpriced*: the tokens are kept, the cost is marked
``unpriced``, never $0. A :class:`SelfHosted` entry prices calls to a base URL you run yourself.

All rates are USD per million tokens (``per_request`` is USD per call) and are held as
``Decimal``; pass strings or ints for exact values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

from tokentrace._pricing import prices as _pricing
from tokentrace._pricing.overrides import Alias, Discount, PriceOverride, Rates, SelfHosted, Tier
from tokentrace._pricing.prices import PriceInfo, set_price_overrides
from tokentrace.exceptions import ConfigurationError

__all__ = ["Alias", "Discount", "PriceInfo", "Rates", "SelfHosted", "Tier", "lookup", "set_prices"]


def lookup(
    model: str,
    provider: str = "openai",
    base_url: str | None = None,
    *,
    at: datetime | None = None,
    service_tier: str | None = None,
) -> PriceInfo | None:
    """The price tokentrace uses for ``model`` called through ``provider`` (and ``base_url``), or
    ``None`` when it has none (such calls are recorded as unpriced).

    Some published prices change with time (a dated price change; DeepSeek's off-peak hours): the
    price is the one in force at ``at``, by default now. A naive ``at`` is taken as UTC, as the
    price database does. ``PriceInfo.window`` gives the POSIX times that price holds between.

    ``service_tier`` is the tier a call was served at, as the provider's response names it
    (OpenAI's ``flex``, ``priority``); ``None``, ``"default"`` or ``"auto"`` is the standard tier. Where the
    price database has rates for the tier, ``PriceInfo.service_tier`` names it.
    """
    tier = _pricing.served_tier(service_tier)
    if at is None:
        return _pricing.lookup(model, provider, base_url, 0, tier)
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return _pricing.lookup_at(model, provider, base_url, at.timestamp(), tier)


def set_prices(overrides: Iterable[PriceOverride]) -> None:
    """Replace all price overrides (``configure(prices=...)`` calls this)."""
    items: Sequence[PriceOverride] = tuple(overrides)
    for item in items:
        if not isinstance(item, (Rates, Discount, SelfHosted, Alias)):
            raise ConfigurationError(
                "prices must be Rates, Discount, SelfHosted or Alias objects from tokentrace.pricing, "
                f"got {item!r}"
            )
    set_price_overrides(items)
