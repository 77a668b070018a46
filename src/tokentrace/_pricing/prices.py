"""Resolving a model's price once, and pricing a call's usage exactly.

A price is resolved once per (provider, model, base URL) and cached, so pricing a call is a
dictionary lookup and a handful of integer multiplications (money in units of 10**-24 USD).
``genai-prices`` is imported lazily, on the first price lookup, and its online refresh is never
started.

Some published prices change with time: a dated price change, or time-of-day rates (DeepSeek's
off-peak and peak hours). Such a price is cached with the window of time it holds for, and a
call made outside that window is priced afresh, at the time it was made.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from tokentrace._foundation.safety import renew_after_fork
from tokentrace._pricing import modal as _modal
from tokentrace._pricing.money import PER_TOKEN, PICODOLLAR, Parts, UnitRates, to_units, usd
from tokentrace._tokens.usage import Usage

if TYPE_CHECKING:
    from tokentrace._pricing.overrides import Alias, Discount, PriceOverride, Rates, SelfHosted, Tier

logger: Final = logging.getLogger("tokentrace")

_ZERO: Final = Decimal(0)
_HOUR_NS: Final = Decimal(3_600_000_000_000)
_DAY: Final = 86_400.0

# The wall clock prices are resolved by (POSIX seconds); one name, so a test can set the time.
_clock = time.time

# Cost statuses (the values of tokentrace.cost.status).
PRICED: Final = "priced"
ESTIMATED: Final = "estimated"
UNPRICED: Final = "unpriced"
INVALID_USAGE: Final = "invalid_usage"
NO_USAGE: Final = "no_usage"
FREE: Final = "free"

# Price sources (the values of tokentrace.cost.source).
SOURCE_USER: Final = "user"
SOURCE_USER_PATTERN: Final = "user_pattern"
SOURCE_DATABASE: Final = "genai-prices"
SOURCE_SELF_HOSTED: Final = "self_hosted"
SOURCE_PROVIDER: Final = "provider"


@dataclass(frozen=True, slots=True)
class RateSet:
    """Fully resolved rates in USD per million tokens (no defaults left to apply)."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    cache_write_1h: Decimal
    reasoning: Decimal
    modalities: tuple[tuple[str, Decimal], ...] = ()
    """Rates of their own for audio, image or video tokens, by ``Modalities`` field name
    (``audio_input``, ``audio_cache_read``, ``image_output``, ...), where the price has them;
    any other such tokens cost what text costs."""

    @classmethod
    def build(
        cls,
        input: Decimal,
        output: Decimal,
        cache_read: Decimal | None = None,
        cache_write: Decimal | None = None,
        cache_write_1h: Decimal | None = None,
        reasoning: Decimal | None = None,
        modalities: tuple[tuple[str, Decimal], ...] = (),
    ) -> RateSet:
        cw = input if cache_write is None else cache_write
        return cls(
            input=input,
            output=output,
            cache_read=input if cache_read is None else cache_read,
            cache_write=cw,
            cache_write_1h=cw if cache_write_1h is None else cache_write_1h,
            reasoning=output if reasoning is None else reasoning,
            modalities=modalities,
        )

    def scaled(self, multiplier: Decimal) -> RateSet:
        return RateSet(
            **{name: getattr(self, name) * multiplier for name in _RATE_FIELDS},
            modalities=tuple((name, rate * multiplier) for name, rate in self.modalities),
        )

    def per_token(self) -> UnitRates:
        """The rates in units of 10**-24 USD per token."""
        return UnitRates(
            to_units(self.input, PER_TOKEN),
            to_units(self.output, PER_TOKEN),
            to_units(self.cache_read, PER_TOKEN),
            to_units(self.cache_write, PER_TOKEN),
            to_units(self.cache_write_1h, PER_TOKEN),
            to_units(self.reasoning, PER_TOKEN),
        )


_RATE_FIELDS: Final = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning")


@dataclass(frozen=True, slots=True)
class PriceInfo:
    """The price tokentrace uses for a model, and where it comes from."""

    source: str
    rates: RateSet
    tiers: tuple[tuple[int, RateSet], ...] = ()
    """(threshold, rates): these rates apply to all tokens when the input total exceeds threshold."""
    per_request: Decimal = _ZERO
    per_web_search: Decimal = _ZERO
    """USD per server-side web search (Anthropic's web search tool, OpenAI's web search tool)."""
    per_file_search: Decimal = _ZERO
    """USD per server-side file search (OpenAI's file search tool)."""
    usd_per_hour: Decimal | None = None
    multiplier: Decimal = Decimal(1)
    matched: str | None = None
    """The model id or pattern that matched, when there was one."""
    provider_id: str | None = None
    output_priced: bool = True
    """False for an input-only price (embedding models): calls with output tokens are unpriced."""
    window: tuple[float, float] | None = None
    """For a price with time conditions: the POSIX times it holds from (inclusive) and until
    (exclusive), either of them infinite; ``None`` for a price without any."""
    service_tier: str | None = None
    """The provider's service tier these rates are for (``flex``, ``priority``), when the price
    database has rates of its own for calls served at it; ``None``: the standard rates."""
    _units: tuple[UnitRates, tuple[tuple[int, UnitRates], ...], int, int, int] = field(
        init=False, repr=False, compare=False
    )
    _steady: bool = field(init=False, repr=False, compare=False)
    """Whether a call made now and later is priced by it for good: no time conditions, or none
    left ahead and the last one over a day past (no call still running began before it)."""
    _modal: _modal.Modal | None = field(init=False, repr=False, compare=False)
    """The modality rates in integer units (base, then by tier), or ``None`` when it has none."""

    def __post_init__(self) -> None:
        # The rates in integer units, worked out once per price (prices are resolved once and cached).
        object.__setattr__(
            self,
            "_units",
            (
                self.rates.per_token(),
                tuple((threshold, rates.per_token()) for threshold, rates in self.tiers),
                to_units(self.per_request),
                to_units(self.per_web_search),
                to_units(self.per_file_search),
            ),
        )
        window = self.window
        object.__setattr__(
            self, "_steady", window is None or (window[1] == math.inf and window[0] <= _clock() - _DAY)
        )
        object.__setattr__(self, "_modal", _modal.units(self.rates.modalities, self.tiers))

    @property
    def estimated(self) -> bool:
        """Whether costs from this price are apportioned estimates (hourly self-hosted rates)."""
        return self.usd_per_hour is not None

    def rates_for(self, input_tokens: int) -> RateSet:
        """The rates that apply to a call with this input total (long-context tiers)."""
        rates = self.rates
        for threshold, tier_rates in self.tiers:
            if input_tokens > threshold:
                rates = tier_rates
        return rates

    def cost(self, usage: Usage, duration_ns: int = 0) -> Decimal:
        """The exact cost in USD of one call with ``usage``."""
        return usd(sum(self.parts(usage, duration_ns)))

    def parts(self, usage: Usage, duration_ns: int = 0) -> Parts:
        """One call's cost split by what it pays for (``Parts``), in integer units of 10**-24
        USD (``usd`` makes a Decimal of them); their sum is the call's cost."""
        if self.usd_per_hour is not None:
            hourly = (self.usd_per_hour * duration_ns / _HOUR_NS).quantize(
                PICODOLLAR
            )  # only an apportioned hourly cost is rounded
            return Parts(0, 0, 0, 0, to_units(hourly))
        rates, tiers, per_request, per_search, per_file_search = self._units
        if tiers:
            for threshold, tier_rates in tiers:
                if usage.input_tokens > threshold:
                    rates = tier_rates
        read_tokens, write_tokens, reasoning = (
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.reasoning_tokens,
        )
        read = read_tokens * rates.cache_read
        write = 0
        if write_tokens:
            one_hour = usage.cache_write_1h_tokens
            write = (write_tokens - one_hour) * rates.cache_write + one_hour * rates.cache_write_1h
        output = (usage.output_tokens - reasoning) * rates.output + reasoning * rates.reasoning
        fresh_tokens = usage.input_tokens - read_tokens - write_tokens
        if fresh_tokens < 0:
            # Reads and writes over the same tokens (Usage.problem's CACHE_OVERLAP): the writes are
            # taken to be of tokens also read, so the input not read from the cache is billed at
            # the input rate and every read and write at its own rate, as OpenRouter bills them.
            fresh_tokens = max(usage.input_tokens - read_tokens, 0)
        fresh = fresh_tokens * rates.input
        other = per_request
        if usage.web_search_requests:
            other += usage.web_search_requests * per_search
        if usage.file_search_requests:
            other += usage.file_search_requests * per_file_search
        if usage.modalities is not None and self._modal is not None:
            return _modal.adjusted(Parts(fresh, read, write, output, other), rates, self._modal, usage)
        return Parts(fresh, read, write, output, other)


@dataclass
class _PriceBook:
    exact: dict[str, list[Rates]] = field(default_factory=dict)
    patterns: list[Rates] = field(default_factory=list)
    discounts: list[Discount] = field(default_factory=list)
    self_hosted: list[SelfHosted] = field(default_factory=list)
    aliases: list[Alias] = field(default_factory=list)
    cache: dict[tuple[str, str, str | None, str | None], PriceInfo | None] = field(default_factory=dict)
    """By (provider, model, base URL, service tier)."""


_book = _PriceBook()
_lock = threading.Lock()

renew_after_fork(globals(), "_lock")
_warned: set[tuple[str, str]] = set()


def set_price_overrides(items: Sequence[PriceOverride]) -> None:
    """Install user overrides (validated by ``tokentrace.pricing.set_prices``) and drop the cache."""
    from tokentrace._pricing.overrides import Alias, Discount, Rates, SelfHosted

    book = _PriceBook()
    for item in items:
        if isinstance(item, Rates):
            if item.is_pattern:
                book.patterns.append(item)
            else:
                book.exact.setdefault(item.model.lower(), []).append(item)
        elif isinstance(item, Discount):
            book.discounts.append(item)
        elif isinstance(item, SelfHosted):
            book.self_hosted.append(item)
        elif isinstance(item, Alias):
            book.aliases.append(item)
    global _book
    with _lock:
        _book = book
        _warned.clear()


def _from_rates(rates: Rates, source: str) -> PriceInfo:
    modalities = rates.modalities  # the same at every tier
    return PriceInfo(
        source=source,
        rates=RateSet.build(
            rates.input,
            rates.output,
            rates.cache_read,
            rates.cache_write,
            rates.cache_write_1h,
            rates.reasoning,
            modalities,
        ),
        tiers=tuple(
            (t.above_input_tokens, _tier_rates(t, modalities))
            for t in sorted(rates.tiers, key=lambda t: t.above_input_tokens)
        ),
        per_request=rates.per_request,
        per_web_search=rates.per_web_search,
        per_file_search=rates.per_file_search,
        matched=rates.model,
        provider_id=rates.provider,
    )


def _tier_rates(tier: Tier, modalities: tuple[tuple[str, Decimal], ...]) -> RateSet:
    return RateSet.build(
        tier.input,
        tier.output,
        tier.cache_read,
        tier.cache_write,
        tier.cache_write_1h,
        tier.reasoning,
        modalities,
    )


def served_tier(value: object) -> str | None:
    """The service tier a provider names, as prices are looked up by it: ``None`` for the
    standard tier (OpenAI's ``default``, Gemini's ``standard``), for none at all, for a value
    that is not a tier name, and for ``auto`` (what a request asks for, and a Responses stream's
    first events echo, before the response names the tier that served it)."""
    return value if type(value) is str and value and value not in _STANDARD_TIERS else None


_STANDARD_TIERS: Final = frozenset({"default", "auto", "standard", "unspecified"})


def _provider_ok(wanted: str | None, provider: str) -> bool:
    return wanted is None or wanted == provider


def lookup(
    model: str,
    provider: str = "openai",
    base_url: str | None = None,
    elapsed_ns: int = 0,
    service_tier: str | None = None,
) -> PriceInfo | None:
    """The price tokentrace would use for ``model`` called through ``provider`` (cached).

    ``elapsed_ns`` says how long ago the call was made (0: now): a price that changes with time
    is the one in force when the call was made. ``service_tier`` is the tier the provider says
    it served the call at (``None`` for its standard one).
    """
    key = (provider, model, base_url, service_tier)
    try:
        info = _book.cache[key]
    except KeyError:
        pass
    else:
        if info is None or info._steady:
            return info  # the common case: a price that does not change with time
    return lookup_at(model, provider, base_url, _clock() - elapsed_ns / 1e9, service_tier)


def lookup_at(
    model: str, provider: str, base_url: str | None, at: float, service_tier: str | None = None
) -> PriceInfo | None:
    """The price in force at POSIX time ``at`` (cached with the window of time it holds for)."""
    key = (provider, model, base_url, service_tier)
    book = _book
    if key in book.cache:
        info = book.cache[key]
        if info is None or info.window is None or info.window[0] <= at < info.window[1]:
            return info
    info = _resolve(book, model, provider, base_url, at, service_tier)
    with _lock:
        if book is _book:
            book.cache[key] = info  # a price for another window replaces the last one
    return info


def _resolve(
    book: _PriceBook,
    model: str,
    provider: str,
    base_url: str | None,
    at: float,
    service_tier: str | None = None,
    seen: tuple[str, ...] = (),
) -> PriceInfo | None:
    if base_url is not None:
        for hosted in book.self_hosted:
            if base_url.rstrip("/").startswith(hosted.base_url.rstrip("/")):
                return PriceInfo(
                    source=SOURCE_SELF_HOSTED,
                    rates=RateSet.build(_ZERO, _ZERO),
                    usd_per_hour=hosted.usd_per_hour,
                    matched=hosted.base_url,
                )
    for rates in book.exact.get(model.lower(), ()):
        if _provider_ok(rates.provider, provider):
            return _from_rates(rates, SOURCE_USER)
    for rates in book.patterns:
        if _provider_ok(rates.provider, provider) and fnmatch.fnmatchcase(model.lower(), rates.model.lower()):
            return _from_rates(rates, SOURCE_USER_PATTERN)
    name = model.lower()
    for alias in book.aliases:
        pattern = alias.name.lower()
        if (
            _provider_ok(alias.provider, provider)
            and (pattern == name or (alias.is_pattern and fnmatch.fnmatchcase(name, pattern)))
            and alias.model.lower() not in seen  # an alias cycle ends at the database
        ):
            return _resolve(book, alias.model, provider, base_url, at, service_tier, (*seen, name))
    from tokentrace._pricing.database import from_database

    info = from_database(model, provider, base_url, at, service_tier)
    if info is None:
        return None
    multiplier = Decimal(1)
    for discount in book.discounts:
        if _provider_ok(discount.provider, provider) and (
            discount.model is None or fnmatch.fnmatchcase(model.lower(), discount.model.lower())
        ):
            multiplier *= discount.multiplier
    if multiplier != 1:
        info = PriceInfo(
            source=info.source,
            rates=info.rates.scaled(multiplier),
            tiers=tuple((t, r.scaled(multiplier)) for t, r in info.tiers),
            per_request=info.per_request * multiplier,
            per_web_search=info.per_web_search * multiplier,
            per_file_search=info.per_file_search * multiplier,
            multiplier=multiplier,
            matched=info.matched,
            provider_id=info.provider_id,
            output_priced=info.output_priced,
            window=info.window,
            service_tier=info.service_tier,
        )
    return info


def warn_unpriced_once(provider: str, model: str) -> None:
    """Log one warning per (provider, model) that has no price."""
    key = (provider, model)
    if key in _warned:
        return
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.warning(
        "tokentrace: no price known for model %r (provider %r); its calls keep their tokens and are "
        "marked unpriced, never $0. Add its rates with tokentrace.pricing.Rates(model=%r, ...).",
        model,
        provider,
        model,
    )
