"""The price overrides a user gives ``configure(prices=...)``: validated, frozen value types.

``tokentrace.pricing`` re-exports them; they live here so that the price cache (``prices``) can
read them without importing the public module that imports it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tokentrace._pricing import modal as _modal
from tokentrace.exceptions import ConfigurationError


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
