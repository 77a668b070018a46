"""Charts as inline SVG, drawn here in Python: the dashboard and the HTML report need no chart
library, no script and no file beside the page."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

from tokentrace._cli.common import dollars
from tokentrace.ledger import _report

# Okabe-Ito's colour-blind-safe palette, then a grey for the rest.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
OTHER = "#9a9a9a"
SERIES = 7  # split values drawn each in its colour; the rest is one "other" stack


def colours(names: Sequence[str]) -> dict[str, str]:
    return {name: PALETTE[i] if i < SERIES else OTHER for i, name in enumerate(names)}


def _nice_ceiling(value: float) -> float:
    """The axis top: 1, 2, 2.5 or 5 times a power of ten, at or above ``value``."""
    if value <= 0:
        return 1e-6
    exponent = int(f"{value:e}".split("e")[1])
    power = 10.0**exponent
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _axis_label(value: float) -> str:
    if value == 0:
        return "$0"
    if value >= 1:
        return f"${value:,.2f}".rstrip("0").rstrip(".")
    return f"${value:.6f}".rstrip("0")


def cost_over_time(series: Sequence[_report.Group], bucket: str, split: str) -> tuple[str, list[str]]:
    """A stacked bar per time bucket, one stack per ``split`` value (the costliest first), and the
    legend's names in their order. Each bar part's tooltip gives its exact amount."""
    spend: dict[str, Decimal] = {}
    for g in series:
        name = str(g.key[split] if g.key[split] is not None else "(none)")
        spend[name] = spend.get(name, Decimal(0)) + g.cost_usd
    names = sorted(spend, key=lambda n: (-spend[n], n))
    legend = names[:SERIES] + (["other"] if len(names) > SERIES else [])
    colour = colours(legend)
    buckets = sorted({str(g.key[bucket]) for g in series if g.key[bucket] is not None})
    stacks: dict[str, list[tuple[str, Decimal, int]]] = {b: [] for b in buckets}
    for g in series:
        if g.key[bucket] is None or not g.cost_usd:
            continue
        name = str(g.key[split] if g.key[split] is not None else "(none)")
        stacks[str(g.key[bucket])].append((name, g.cost_usd, g.calls))
    width, height, left, bottom, top = 860, 260, 78, 34, 12
    if not buckets:
        return (
            f'<svg class="chart" id="chart-time" viewBox="0 0 {width} {height}" role="img" '
            'aria-label="no spend">'
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="muted">'
            "No calls in this range</text></svg>",
            [],
        )
    heights = {b: float(sum((amount for _, amount, _ in parts), Decimal(0))) for b, parts in stacks.items()}
    ceiling = _nice_ceiling(max(heights.values()))
    plot_w, plot_h = width - left - 8, height - top - bottom
    slot = plot_w / len(buckets)
    bar_w = max(1.0, min(48.0, slot * 0.72))
    out = [
        f'<svg class="chart" id="chart-time" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="cost by {escape(bucket)}, split by {escape(split)}">'
    ]
    for i in range(5):
        value = ceiling * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line class="grid" x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_axis_label(value)}</text>'
        )
    every = max(1, -(-len(buckets) // 8))
    order = {name: k for k, name in enumerate(legend)}
    for index, b in enumerate(buckets):
        x = left + slot * index + (slot - bar_w) / 2
        y = top + plot_h
        for name, amount, calls in sorted(stacks[b], key=lambda p: order.get(p[0], SERIES)):
            h = plot_h * float(amount) / ceiling
            y -= h
            fill = colour.get(name, OTHER)
            out.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.2f}" width="{bar_w:.1f}" height="{max(h, 0.5):.2f}" '
                f'fill="{fill}" data-usd="{_report.text(amount)}"><title>{escape(b)} · {escape(name)}: '
                f"{dollars(amount)} ({calls:,} calls)</title></rect>"
            )
        if index % every == 0:
            label = b[5:] if bucket == "day" else b[5:].replace("T", " ")
            out.append(
                f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{height - 12}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    out.append("</svg>")
    return "".join(out), legend


def share_bar(part: Decimal, whole: Decimal) -> str:
    """A small bar of ``part``'s share of ``whole``, for a table row."""
    share = float(part / whole) if whole else 0.0
    return (
        f'<svg class="share" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">'
        f'<rect width="{max(share * 100, 0.0):.2f}" height="10"/></svg>'
    )
