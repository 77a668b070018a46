"""Prices from the bundled ``genai-prices`` database, read into tokentrace's ``PriceInfo``.

Imported on the first lookup that reaches the database. A price with time conditions (a dated
change, daily off-peak hours) comes with the window of time it holds for (``window``). A call
served at a provider's service tier (OpenAI's ``flex`` and ``priority``) is priced with the
tier's rates where the database has them (its price variants for ``service_tier``, and for
``speed``: Anthropic's fast mode).
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Final

from tokentrace._foundation.providers import PRICES_IDS, is_own_api
from tokentrace._pricing.prices import _ZERO, SOURCE_DATABASE, PriceInfo, RateSet


def from_database(
    model: str, provider: str, base_url: str | None, at: float, service_tier: str | None = None
) -> PriceInfo | None:
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    provider_id: str | None = None
    api_url: str | None = None
    known = PRICES_IDS.get(provider)
    if known is not None and (base_url is None or is_own_api(provider, base_url)):
        provider_id = known
    elif base_url is not None:
        api_url = base_url
    else:
        provider_id = provider
    try:
        found_provider, found_model = snapshot.find_provider_model(model, None, provider_id, api_url)
    except LookupError:
        if api_url is None:
            return None
        # An endpoint genai-prices does not know (a proxy, a gateway): price by the SDK's provider.
        try:
            found_provider, found_model = snapshot.find_provider_model(model, None, provider, None)
        except LookupError:
            return None
    moment = datetime.fromtimestamp(at, tz=timezone.utc)
    prices = found_model.get_prices(moment)
    variants = _tier_variants(found_model, service_tier)
    # The tier has rates of its own when genai-prices' variants for it change the price now.
    tiered = prices
    if variants:
        tiered = found_model.get_prices(moment, variants[0].when)
    return _price_info_from_model_price(
        tiered,
        found_model.id,
        found_provider.id,
        # A tier's variant that starts (or ends) later bounds the window too.
        window(found_model, at, variants),
        service_tier if tiered != prices else None,
    )


def _tier_variants(model: Any, service_tier: str | None) -> list[Any]:
    """The model's price variants for calls served at ``service_tier``, in force or not: the
    database's variants for that ``service_tier`` (OpenAI's and Gemini's tiers) or ``speed``
    (Anthropic's fast mode)."""
    if service_tier is None:
        return []
    wanted = ({"service_tier": service_tier}, {"speed": service_tier})
    return [variant for variant in getattr(model, "price_variants", None) or () if variant.when in wanted]


# A price whose conditions tokentrace cannot read (a kind of constraint newer than it) is
# resolved again after this many seconds.
_UNKNOWN_WINDOW: Final = 60.0


def window(model: Any, at: float, variants: list[Any] | None = None) -> tuple[float, float] | None:
    """The POSIX times around ``at`` between which ``model``'s price (with ``variants``, the price
    variants of a service tier) stays the one in force at ``at``, or ``None`` when it has no time
    conditions (the common case)."""
    prices = model.prices
    constraints = [getattr(price, "constraint", None) for price in prices] if isinstance(prices, list) else []
    constraints += [variant.constraint for variant in variants or ()]
    boundaries: list[float] = []
    for constraint in constraints:
        if constraint is None:
            continue
        start_date = getattr(constraint, "start_date", None)
        start_time, end_time = getattr(constraint, "start_time", None), getattr(constraint, "end_time", None)
        if isinstance(start_date, date):
            since = datetime(
                start_date.year, start_date.month, start_date.day, tzinfo=timezone.utc
            ).timestamp()
            boundaries.append(since)
        elif start_time is not None and end_time is not None:
            # Daily: each time of day (in UTC) is a boundary on the days around ``at``.
            day = datetime.fromtimestamp(at, tz=timezone.utc).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            for moment in (start_time, end_time):
                offset = timedelta(hours=moment.hour, minutes=moment.minute, seconds=moment.second)
                utc = moment.utcoffset() or timedelta(0)
                for days in (-1, 0, 1):
                    boundaries.append((day + timedelta(days=days) + offset - utc).timestamp())
        else:
            return (at - _UNKNOWN_WINDOW, at + _UNKNOWN_WINDOW)
    if not boundaries:
        return None
    since = max((b for b in boundaries if b <= at), default=-math.inf)
    until = min((b for b in boundaries if b > at), default=math.inf)
    return (since, until)


_KEYS: Final = {
    "input": "input_mtok",
    "output": "output_mtok",
    "cache_read": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
    "cache_write_1h": "cache_write_1h_mtok",
    "reasoning": "output_reasoning_mtok",
}
# Rates of their own for audio, image and video tokens (Modalities' field names).
_MODAL_KEYS: Final = {
    "audio_input": "input_audio_mtok",
    "audio_cache_read": "cache_audio_read_mtok",
    "audio_output": "output_audio_mtok",
    "image_input": "input_image_mtok",
    "image_cache_read": "cache_image_read_mtok",
    "image_output": "output_image_mtok",
    "video_input": "input_video_mtok",
    "video_cache_read": "cache_video_read_mtok",
    "video_output": "output_video_mtok",
}


def _price_info_from_model_price(
    prices: Any,
    model_id: str,
    provider_id: str,
    window: tuple[float, float] | None = None,
    service_tier: str | None = None,
) -> PriceInfo | None:
    raw = {name: getattr(prices, key, None) for name, key in _KEYS.items()}
    modal = {name: getattr(prices, key, None) for name, key in _MODAL_KEYS.items()}
    modal = {name: value for name, value in modal.items() if value is not None}
    if raw["input"] is None:
        # A model priced per request/character only is outside what tokentrace prices by token.
        return None
    output_priced = raw["output"] is not None
    if not output_priced:
        raw["output"] = _ZERO  # input-only (embeddings); engine refuses to price output tokens
    thresholds = sorted(
        {
            tier.start
            for value in (*raw.values(), *modal.values())
            for tier in (getattr(value, "tiers", None) or ())
        }
    )

    def at(input_tokens: int) -> RateSet:
        chosen = {name: _rate_at(value, input_tokens) for name, value in raw.items()}
        modalities = tuple((name, _rate_at(value, input_tokens)) for name, value in modal.items())
        return RateSet.build(**chosen, modalities=modalities)  # type: ignore[arg-type]  # input/output checked above

    per_request = getattr(prices, "requests_kcount", None)
    per_search = getattr(prices, "web_searches_kcount", None)
    per_file_search = getattr(prices, "storage_searches_kcount", None)
    return PriceInfo(
        source=SOURCE_DATABASE,
        rates=at(0),
        tiers=tuple((t, at(t + 1)) for t in thresholds),
        per_request=(per_request / 1000) if isinstance(per_request, Decimal) else _ZERO,
        per_web_search=(per_search / 1000) if isinstance(per_search, Decimal) else _ZERO,
        per_file_search=(per_file_search / 1000) if isinstance(per_file_search, Decimal) else _ZERO,
        matched=model_id,
        provider_id=provider_id,
        output_priced=output_priced,
        window=window,
        service_tier=service_tier,
    )


def _rate_at(value: Any, input_tokens: int) -> Decimal | None:
    """A database rate (a Decimal or tiered prices) for a call with this input total."""
    if value is None or isinstance(value, Decimal):
        return value
    price: Decimal = value.base
    for tier in value.tiers:
        if input_tokens > tier.start:
            price = tier.price
    return price
