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
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tokentrace._pricing import modal as _modal
from tokentrace._pricing import prices as _pricing
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


def _decimal(value: object) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("a rate must be a number, not a boolean")
    if isinstance(value, float):
        # str() gives the shortest repr, so 0.15 stays 0.15 rather than 0.1499999...
        value = str(value)
    try:
        result = Decimal(value)  # type: ignore[arg-type]  # validated just below
    except Exception as exc:
        raise ValueError(f"{value!r} is not a number") from exc
    if not result.is_finite() or result < 0:
        raise ValueError(f"{value!r} must be a finite number >= 0")
    return result


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=False)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigurationError(f"invalid {type(self).__name__}: {problems}") from None


class Tier(_Frozen):
    """Rates that apply to *all* tokens of a call whose input total exceeds ``above_input_tokens``."""

    above_input_tokens: int = Field(gt=0)
    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    cache_write_1h: Decimal | None = None
    reasoning: Decimal | None = None

    @field_validator(
        "input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning", mode="before"
    )
    @classmethod
    def _rate(cls, value: object) -> Decimal | None:
        return None if value is None else _decimal(value)


class Rates(_Frozen):
    """Exact rates for a model, in USD per million tokens.

    ``model`` is an exact model name, or a glob pattern when it contains ``*``, ``?`` or ``[``.
    ``provider`` (a ``gen_ai.provider.name`` such as ``"openai"``) restricts the match.
    Omitted cache rates default to the input rate, an omitted ``reasoning`` rate to the output
    rate, ``cache_write_1h`` to ``cache_write``.

    ``audio_input``, ``audio_cache_read`` and ``audio_output`` (and the same for ``image_`` and
    ``video_``) price the audio, image and video tokens a provider reports among the totals
    (``Usage.modalities``) at rates of their own; an omitted one leaves them at the text rate,
    except a modality's cache reads, which default to its input rate. They apply above every
    long-context tier too.
    """

    model: str = Field(min_length=1)
    provider: str | None = None
    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    cache_write_1h: Decimal | None = None
    reasoning: Decimal | None = None
    per_request: Decimal = Decimal(0)
    per_web_search: Decimal = Decimal(0)
    """USD per server-side web search (Anthropic's and OpenAI's database price is $0.01)."""
    per_file_search: Decimal = Decimal(0)
    """USD per server-side file search (OpenAI's file search tool: $0.0025 in the database)."""
    tiers: tuple[Tier, ...] = ()
    audio_input: Decimal | None = None
    audio_cache_read: Decimal | None = None
    audio_output: Decimal | None = None
    image_input: Decimal | None = None
    image_cache_read: Decimal | None = None
    image_output: Decimal | None = None
    video_input: Decimal | None = None
    video_cache_read: Decimal | None = None
    video_output: Decimal | None = None

    @field_validator(
        "input",
        "output",
        "cache_read",
        "cache_write",
        "cache_write_1h",
        "reasoning",
        "per_request",
        "per_web_search",
        "per_file_search",
        *_modal.NAMES,
        mode="before",
    )
    @classmethod
    def _rate(cls, value: object) -> Decimal | None:
        return None if value is None else _decimal(value)

    @model_validator(mode="after")
    def _cache_reads_of_a_priced_input(self) -> Rates:
        for input_name, read_name, _ in _modal.KINDS:
            if getattr(self, read_name) is not None and getattr(self, input_name) is None:
                raise ValueError(f"{read_name} needs {input_name} (the rate of the rest of that input)")
        return self

    @property
    def modalities(self) -> tuple[tuple[str, Decimal], ...]:
        """The audio, image and video rates given, by name."""
        return tuple((name, rate) for name in _modal.NAMES if (rate := getattr(self, name)) is not None)

    @property
    def is_pattern(self) -> bool:
        """Whether ``model`` is a glob pattern rather than an exact name."""
        return any(ch in self.model for ch in "*?[")


class Discount(_Frozen):
    """A multiplier on database prices (a negotiated contract), for a provider and/or model glob."""

    multiplier: Decimal
    provider: str | None = None
    model: str | None = None

    @field_validator("multiplier", mode="before")
    @classmethod
    def _multiplier(cls, value: object) -> Decimal:
        return _decimal(value)


class SelfHosted(_Frozen):
    """An endpoint you run yourself, matched by base URL prefix (e.g. ``"http://gpu-box:8000"``).

    With ``usd_per_hour`` unset its calls cost $0 (priced, not unpriced); with it set, each call
    is charged its wall-clock duration at that hourly rate and flagged as an estimate, since
    an hourly machine cost can only be apportioned, not measured, per call.
    """

    base_url: str = Field(min_length=1)
    usd_per_hour: Decimal | None = None

    @field_validator("usd_per_hour", mode="before")
    @classmethod
    def _rate(cls, value: object) -> Decimal | None:
        return None if value is None else _decimal(value)


class Alias(_Frozen):
    """A model name that stands for another model, priced as that model.

    For an Azure OpenAI deployment (``Alias(name="prod-chat", model="gpt-4o")``), a gateway's
    own name for a model, or a fine-tune billed at its base model's rates. ``name`` is an exact
    name or a glob; ``provider`` (a ``gen_ai.provider.name`` such as ``"azure.ai.openai"``)
    restricts the match. ``model`` is then priced like any call: your rates, your patterns, the
    database (discounts apply), else unpriced. A name with no alias and no price stays
    unpriced, never $0.
    """

    name: str = Field(min_length=1)
    model: str = Field(min_length=1)
    provider: str | None = None

    @property
    def is_pattern(self) -> bool:
        """Whether ``name`` is a glob pattern rather than an exact name."""
        return any(ch in self.name for ch in "*?[")


PriceOverride = Rates | Discount | SelfHosted | Alias


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
