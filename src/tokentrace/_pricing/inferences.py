"""Further inferences a call is billed for that its provider reports apart from its usage.

Anthropic reports some of a request's billed sampling only in ``usage.iterations``, not in its
top-level counts: a ``compaction`` iteration (the call's own model summarising a context that
grew past its threshold) and an ``advisor_message`` iteration (the advisor tool's model, asked
for guidance mid-generation). Their tokens join the call's; each is priced at its own model's
rates, as a request of its own would be (a long-context tier applies to each on its own).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import fields
from typing import NamedTuple

from tokentrace._pricing.money import Parts
from tokentrace._pricing.prices import PriceInfo
from tokentrace._tokens.usage import Modalities, Usage


class Inference(NamedTuple):
    """A further inference a call is billed for, beside its own."""

    model: str | None
    """Its model; ``None``: the call's own."""
    usage: Usage


_MODAL = tuple(f.name for f in fields(Modalities))

Finder = Callable[[str, "str | None"], "PriceInfo | None"]
"""Looks up a model's price at a service tier, as of when the call was made."""


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
    own: Parts, more: tuple[Inference, ...], model: str, tier: str | None, find: Finder
) -> tuple[str, Parts | None]:
    """The call's cost split (``own``, its own inference's) with each further inference's
    added, priced at its model's rates (``None``: the call's own ``model``, at its ``tier``), as
    ``find`` looks prices up. When one of those models has no price, that model and ``None``:
    the call is then unpriced, never undercounted."""
    total = list(own)
    for other, usage in more:
        name = other or model
        price = find(name, tier if other is None else None)
        if price is None or (not price.output_priced and usage.output_tokens):
            return name, None
        for i, part in enumerate(price.parts(usage)):
            total[i] += part
    return model, Parts(*total)


def separated(total: Usage, more: tuple[Inference, ...]) -> Usage:
    """The call's own usage, from ``total`` (``combined``'s result) and its further inferences."""
    others = combined(Usage(0, 0), more)
    modal = total.modalities
    if modal is not None and others.modalities is not None:
        modal = Modalities(*(getattr(modal, n) - getattr(others.modalities, n) for n in _MODAL))
    return Usage(
        total.input_tokens - others.input_tokens,
        total.output_tokens - others.output_tokens,
        total.cache_read_tokens - others.cache_read_tokens,
        total.cache_write_tokens - others.cache_write_tokens,
        total.cache_write_1h_tokens - others.cache_write_1h_tokens,
        total.reasoning_tokens - others.reasoning_tokens,
        total.web_search_requests - others.web_search_requests,
        total.file_search_requests - others.file_search_requests,
        modal,
    )


_COUNTS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "web_search_requests",
    "file_search_requests",
)


def as_json(more: tuple[Inference, ...]) -> str:
    """The further inferences as the span and the ledger keep them (``from_json`` reads them)."""
    out = []
    for model, usage in more:
        item: dict[str, object] = {"model": model}
        item.update((name, getattr(usage, name)) for name in _COUNTS if getattr(usage, name))
        if usage.modalities is not None:
            item["modalities"] = {
                n: getattr(usage.modalities, n) for n in _MODAL if getattr(usage.modalities, n)
            }
        out.append(item)
    return json.dumps(out, separators=(",", ":"))


def from_json(text: str | None) -> tuple[Inference, ...]:
    """What ``as_json`` wrote; ``()`` for nothing, or for text tokentrace did not write."""
    if not text:
        return ()
    try:
        return tuple(
            Inference(
                item.get("model"),
                Usage(
                    **{name: int(item.get(name, 0)) for name in _COUNTS},
                    modalities=Modalities(**item["modalities"]) if item.get("modalities") else None,
                ),
            )
            for item in json.loads(text)
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return ()
