"""Pricing the audio, image and video tokens of a call where a price has rates of their own.

Most calls carry no such breakdown, or their model bills every token as text. This is the
rarer path, for calls whose usage has ``Modalities`` under a price with modality rates
(gpt-audio's audio, Gemini's audio input and image output, ...): ``PriceInfo.parts`` prices the
call as text, then ``adjusted`` reprices the modality tokens that have rates of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

from tokentrace._pricing.money import PER_TOKEN, Parts, UnitRates, to_units
from tokentrace._tokens.usage import Usage

KINDS: Final = tuple(
    (f"{kind}_input", f"{kind}_cache_read", f"{kind}_output") for kind in ("audio", "image", "video")
)
"""Each modality's (input, cache read, output) field names, in ``Modalities`` and in
``RateSet.modalities``."""
NAMES: Final = tuple(name for names in KINDS for name in names)

Modal = tuple[dict[str, int], tuple[tuple[int, dict[str, int]], ...]]


def units(base: Sequence[tuple[str, Decimal]], tiers: Sequence[tuple[int, Any]]) -> Modal | None:
    """A price's modality rates (``RateSet.modalities``, base and by long-context tier) in
    units of 10**-24 USD per token, or ``None`` when it has none (most prices)."""
    if not base and not any(rates.modalities for _, rates in tiers):
        return None

    def per_token(rates: Sequence[tuple[str, Decimal]]) -> dict[str, int]:
        return {name: to_units(rate, PER_TOKEN) for name, rate in rates}

    return per_token(base), tuple((threshold, per_token(rates.modalities)) for threshold, rates in tiers)


def adjusted(parts: Parts, rates: UnitRates, modal_units: Modal, usage: Usage) -> Parts:
    """``parts`` (a call priced as if all its tokens were text, at ``rates``) with the
    modality tokens that have rates of their own priced at them, by the price database's rules.

    A modality whose input has a rate has its uncached input tokens priced at it instead of the
    text input rate, and its cache reads at its cache-read rate, or at its input rate when they
    have none (they are its input). Its output tokens likewise, at its output rate. A modality
    without a rate stays at the text rate. Rates are in units of 10**-24 USD per token:
    ``rates`` the text rates in force, ``modal_units`` the
    modality rates, base and by long-context tier.
    """
    modal, tiers = modal_units
    for threshold, tier_modal in tiers:
        if usage.input_tokens > threshold:
            modal = tier_modal
    m = usage.modalities
    fresh, read, write, output, other = parts
    text_input, text_output, text_read = rates.input, rates.output, rates.cache_read
    for input_name, read_name, output_name in KINDS:
        input_rate = modal.get(input_name)
        if input_rate is not None:
            cached = getattr(m, read_name)
            read += cached * (modal.get(read_name, input_rate) - text_read)
            fresh += (getattr(m, input_name) - cached) * (input_rate - text_input)
        output_rate = modal.get(output_name)
        if output_rate is not None:
            output += getattr(m, output_name) * (output_rate - text_output)
    return Parts(fresh, read, write, output, other)
