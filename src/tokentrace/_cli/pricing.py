"""``tokentrace whatif`` and ``tokentrace prices``: recorded usage under other prices."""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import datetime, timezone
from typing import Any

from tokentrace._cli.common import console, count, dimensions, dollars, emit, filters, key_cells, open_ledger
from tokentrace._cli.tables import Column, Sheet, pick, show
from tokentrace.exceptions import ConfigurationError
from tokentrace.ledger import _whatif

WHATIF_COLUMNS = (
    Column("calls", rank=3),
    Column("recorded", rank=0),
    Column("what-if", rank=0),
    Column("difference", rank=1),
    Column("change", rank=2),
    Column("not-repriced"),
    Column("other-tokenizer"),
    Column("reasoning"),
)


def _load_prices(path: str | None) -> None:
    if path:
        from tokentrace._telemetry.config import load_price_file
        from tokentrace.pricing import set_prices

        set_prices(load_price_file(path))


def _check_target(conn: Any, model: str, provider: str | None) -> None:
    """Refuse a what-if model with no price: every call would be left out, and the report empty.
    With no provider given or guessed from the name, each call's own provider is tried."""
    from tokentrace._pricing import prices as _pricing

    provider = provider or _whatif.guess_provider(model)
    providers = (
        [provider]
        if provider
        else [p or "openai" for (p,) in conn.execute("SELECT DISTINCT provider FROM calls")]
    )
    if providers and all(_pricing.lookup(model, p) is None for p in providers):
        raise ConfigurationError(
            f"no price for {model!r} (provider {' or '.join(providers)}): check the name with "
            f"'tokentrace prices {model}', or name the provider with --provider, or give the rates "
            "with --prices FILE"
        )


def cmd_whatif(args: argparse.Namespace) -> int:
    if not args.model and not args.prices:
        raise ConfigurationError("whatif needs --model MODEL, --prices FILE, or both")
    _load_prices(args.prices)
    by = dimensions(args.by)
    pick(WHATIF_COLUMNS, args, by)
    conn = open_ledger(args)
    if args.model:
        _check_target(conn, args.model, args.provider)
    groups, total = _whatif.whatif(conn, by, filters(args), model=args.model, provider=args.provider)
    rows = [g.as_dict() for g in groups]
    if args.format != "table":
        emit(args, [*rows, {**{d: "TOTAL" for d in by}, **total.as_dict()}] if rows else [])
        return 0
    target = args.model or "each call's own model"
    sheet = f" with prices from {args.prices}" if args.prices else ""
    table = Sheet(f"What if: {target}{sheet}", by, WHATIF_COLUMNS)
    for g in groups:
        table.add(key_cells(g.key), _whatif_cells(g))
    table.total = _whatif_cells(total)
    show(table, args)
    from rich.text import Text

    notes = []
    if total.not_repriced:
        notes.append(
            f"{total.not_repriced} call(s) had no usage or no price and are left out of both columns."
        )
    if total.tokenizer_differs:
        notes.append(
            f"{total.tokenizer_differs} call(s) were counted by another provider's tokenizer: "
            f"{target} would count their text differently, so their figures are approximate."
        )
    if total.reasoning:
        notes.append(
            f"{total.reasoning} call(s) used reasoning tokens; another model may think more or less."
        )
    for note in notes:
        console().print(Text(note, style="yellow"))
    return 0


def _whatif_cells(g: _whatif.WhatIfGroup) -> dict[str, str]:
    return {
        "calls": count(g.calls),
        "recorded": dollars(g.current_usd),
        "what-if": dollars(g.whatif_usd),
        "difference": dollars(g.difference_usd),
        "change": f"{g.difference_usd / g.current_usd:+.0%}" if g.current_usd else "-",
        "not-repriced": count(g.not_repriced),
        "other-tokenizer": count(g.tokenizer_differs),
        "reasoning": count(g.reasoning),
    }


def _moment(posix: float) -> str | None:
    """A price window's bound as ISO 8601 UTC, or ``None`` when it is unbounded."""
    if math.isinf(posix):
        return None
    return datetime.fromtimestamp(posix, tz=timezone.utc).isoformat(timespec="seconds")


def cmd_prices(args: argparse.Namespace) -> int:
    from tokentrace._pricing import prices as _pricing

    _load_prices(args.prices)
    provider = args.provider or _whatif.guess_provider(args.model) or "openai"
    info = _pricing.lookup(args.model, provider, None, 0, _pricing.served_tier(args.service_tier))
    if info is None:
        print(
            f"no price for {args.model!r} (provider {provider}): its calls are recorded as unpriced",
            file=sys.stderr,
        )
        return 1
    rates = info.rates
    data: dict[str, Any] = {
        "model": args.model,
        "provider": provider,
        "source": info.source,
        "matched": info.matched,
        # The tier whose own rates these are; None: the standard rates (also for a tier the
        # database has no rates for).
        "service_tier": info.service_tier,
        "usd_per_million_tokens": {
            "input": str(rates.input),
            "cache_read": str(rates.cache_read),
            "cache_write_5m": str(rates.cache_write),
            "cache_write_1h": str(rates.cache_write_1h),
            "output": str(rates.output),
            "reasoning": str(rates.reasoning),
            # Audio, image and video tokens with rates of their own (audio_input, ...).
            **{name: str(rate) for name, rate in rates.modalities},
        },
        "tiers": [
            {"above_input_tokens": t, "input": str(r.input), "output": str(r.output)} for t, r in info.tiers
        ],
        "per_request_usd": str(info.per_request),
        "per_web_search_usd": str(info.per_web_search),
        "per_file_search_usd": str(info.per_file_search),
        "usd_per_hour": str(info.usd_per_hour) if info.usd_per_hour is not None else None,
        "multiplier": str(info.multiplier),
    }
    if info.window is not None:
        # A price that changes with time (a dated change, off-peak hours): when this one holds.
        data["in_force"] = {
            name: _moment(bound) for name, bound in zip(("from", "until"), info.window, strict=True)
        }
    if args.format == "json":
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    from rich.table import Table

    table = Table(
        title=f"{args.model} ({provider}): {info.source}"
        + (f", matched {info.matched}" if info.matched else "")
        + (f", {info.service_tier} tier" if info.service_tier else ""),
        title_justify="left",
    )
    table.add_column("tokens")
    table.add_column("USD per million", justify="right")
    for name, value in data["usd_per_million_tokens"].items():
        table.add_row(name, value)
    for tier in data["tiers"]:
        table.add_row(f"input above {tier['above_input_tokens']:,}", tier["input"])
        table.add_row(f"output above {tier['above_input_tokens']:,}", tier["output"])
    if info.per_request:
        table.add_row("per request (USD)", data["per_request_usd"])
    if info.per_web_search:
        table.add_row("per web search (USD)", data["per_web_search_usd"])
    if info.per_file_search:
        table.add_row("per file search (USD)", data["per_file_search_usd"])
    if info.usd_per_hour is not None:
        table.add_row("per hour (USD)", data["usd_per_hour"])
    if info.multiplier != 1:
        table.add_row("discount multiplier", data["multiplier"])
    if "in_force" in data:
        span = data["in_force"]
        table.add_row(
            "in force", f"from {span['from'] or 'the start'} until {span['until'] or 'further notice'}"
        )
    console().print(table)
    return 0
