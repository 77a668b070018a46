"""The dashboard's HTML and the one-file HTML report, from a ``view.Parts``.

Amounts are shown as the command's tables show them (``dollars``: rounded to a millionth of a
dollar); each amount's element carries the exact decimal text in ``data-usd``, as JSON gives it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from html import escape
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from tokentrace._cli.common import count, dollars
from tokentrace._cli.ui import charts
from tokentrace._cli.ui.view import BREAKDOWNS, BUCKETS, FILTERS, SPLITS, Parts, Query
from tokentrace.ledger import _economics, _report, _whatif

ROWS = 15  # a breakdown's costliest rows shown; the command lists them all
_TITLES = {"task": "Task", "feature": "Feature", "user": "User", "tenant": "Tenant", "model": "Model"}


def static(name: str) -> str:
    return resources.files("tokentrace._cli.ui").joinpath("static").joinpath(name).read_text(encoding="utf-8")


def _money(amount: Decimal | None, *, ident: str = "", unpriced: bool = False) -> str:
    if amount is None:
        return '<span class="muted">-</span>'
    id_attr = f' id="{ident}"' if ident else ""
    shown = "unpriced" if unpriced else dollars(amount)
    return f'<span class="usd"{id_attr} data-usd="{_report.text(amount)}">{shown}</span>'


def _all_unpriced(g: _report.Group) -> bool:
    return g.calls > 0 and g.unpriced_calls == g.calls


def _cards(cards: list[tuple[str, str]]) -> str:
    items = "".join(
        f'<div class="kpi"><div class="label">{k}</div><div class="value">{v}</div></div>' for k, v in cards
    )
    return f'<div class="cards">{items}</div>'


def _kpis(t: _report.Group) -> str:
    """The totals' cards (the report's total); the cost per successful run is ``_success``'s."""
    per_run = t.per_run.get("mean") if t.per_run and not _all_unpriced(t) else None
    return _cards(
        [
            ("Total cost", _money(t.cost_usd, ident="total-cost", unpriced=_all_unpriced(t))),
            ("LLM calls", f'<span id="total-calls">{count(t.calls)}</span>'),
            ("Task runs", f'<span id="total-runs">{count(t.runs)}</span>'),
            ("Cost per run", _money(per_run, ident="per-run")),
            ("Failed calls", f"{count(t.failed_calls)} · {_money(t.failed_cost_usd, ident='failed-cost')}"),
            ("Unpriced calls", f'<span id="unpriced-calls">{count(t.unpriced_calls)}</span>'),
        ]
    )


def _success(outcomes: tuple[Any, _economics.Economics] | None) -> str:
    """The cost per successful run (the outcomes' total), a card beside the totals."""
    per_success = outcomes[1].cost_per_success if outcomes else None
    return _cards([("Cost per successful run", _money(per_success, ident="per-success"))])


def _time_chart(series: list[_report.Group], q: Query) -> str:
    svg, legend = charts.cost_over_time(series, q.bucket, q.split)
    colour = charts.colours(legend)
    keys = "".join(
        f'<span class="key"><i style="background:{colour[name]}"></i>{escape(name)}</span>' for name in legend
    )
    return (
        f'<section class="panel wide"><h2>Cost by {q.bucket} (UTC), split by {q.split}</h2>'
        f'{svg}<div class="legend">{keys}</div></section>'
    )


def _breakdown(dim: str, groups: list[_report.Group], total: _report.Group) -> str:
    rows = []
    for g in groups[:ROWS]:
        name = g.key[dim]
        per = g.per_run.get("mean") if g.per_run and not _all_unpriced(g) else None
        rows.append(
            f'<tr><td class="key">{escape(str(name)) if name is not None else "-"}</td>'
            f'<td class="num">{_money(g.cost_usd, unpriced=_all_unpriced(g))}</td>'
            f'<td class="num">{count(g.calls)}</td><td class="num">{count(g.runs)}</td>'
            f'<td class="num">{_money(per)}</td><td class="num">{g.cached_share:.0%}</td>'
            f'<td class="bar">{charts.share_bar(g.cost_usd, total.cost_usd)}</td></tr>'
        )
    if len(groups) > ROWS:
        rows.append(
            f'<tr class="more"><td colspan="7" class="muted">and {len(groups) - ROWS:,} more: '
            f"<code>tokentrace report --by {dim}</code></td></tr>"
        )
    body = "".join(rows) or '<tr><td colspan="7" class="muted">No calls</td></tr>'
    return (
        f'<section class="panel" id="by-{dim}"><h2>Cost by {dim}</h2><table>'
        f"<thead><tr><th>{_TITLES[dim]}</th><th>cost</th><th>calls</th><th>runs</th><th>per-run</th>"
        f"<th>cached</th><th></th></tr></thead><tbody>{body}</tbody></table></section>"
    )


def _tree(node: _report.Node) -> str:
    from tokentrace._cli.tasks import _call_parts

    items: list[tuple[int, str]] = []
    for call in node.calls:
        parts = [escape(str(p)) for p in _call_parts(call)]
        cost = _money(Decimal(call["cost_usd"])) if call["cost_usd"] is not None else parts[1]
        items.append(
            (call["start_ns"], f'<li class="call">{parts[0]} · {cost} · {" · ".join(parts[2:])}</li>')
        )
    for child in node.children:
        items.append((child.task["start_ns"], _tree(child)))
    inner = "".join(html for _, html in sorted(items, key=lambda pair: pair[0]))
    t = node.task
    return (
        f'<li class="task"><b>{escape(t["name"])}</b> · {_money(node.branch_cost_usd)} · '
        f'{node.branch_calls} call(s) <span class="muted">{escape(t["task_id"])} '
        f"{escape(t['outcome'] or '-')}</span><ul>{inner}</ul></li>"
    )


def _runs(runs: list[dict[str, Any]], trees: Mapping[str, _report.Node]) -> str:
    from tokentrace._cli.tasks import _task_cost, _when

    if not runs:
        return ""
    rows = []
    for r in runs:
        tree = trees.get(r["task_id"])
        rows.append(
            f'<details class="run" data-task-id="{escape(r["task_id"])}"><summary>'
            f'<span class="id">{escape(r["task_id"])}</span><span class="name">{escape(r["name"])}</span>'
            f'<span class="when">{_when(r["start_ns"])}</span>'
            f'<span class="num">{count(r["llm_calls"])} calls</span>'
            f'<span class="num usd" data-usd="{escape(r["cost_usd"])}">{_task_cost(r)}</span>'
            f'<span class="outcome">{escape(r["outcome"] or "-")}</span></summary>'
            f'<ul class="tree">{_tree(tree) if tree else ""}</ul></details>'
        )
    return (
        '<section class="panel wide" id="runs"><h2>Most expensive runs</h2>'
        f'<p class="muted">Open a run for its tree, each branch with its cost '
        f"(<code>tokentrace show ID</code>).</p>{''.join(rows)}</section>"
    )


def _outcome_row(name: str, g: _economics.Economics) -> str:
    per_unit = ", ".join(
        f"{_money(c)}/{escape(u)}" if c is not None else f"-/{escape(u)}"
        for u, c in sorted(g.cost_per_unit().items())
    )
    per_run = g.as_dict()["cost_per_run_usd"]
    return (
        f'<tr><td class="key">{escape(name)}</td><td class="num">{count(g.runs)}</td>'
        f'<td class="num">{f"{g.successes / g.runs:.0%}" if g.runs else "-"}</td>'
        f'<td class="num">{_money(g.cost_usd)}</td>'
        f'<td class="num">{_money(Decimal(per_run) if per_run else None)}</td>'
        f'<td class="num">{_money(g.cost_per_success)}</td><td class="num">{per_unit or "-"}</td>'
        f'<td class="num">{count(g.unpriced_runs)}</td></tr>'
    )


def _outcomes(outcomes: tuple[list[_economics.Economics], _economics.Economics] | None) -> str:
    if outcomes is None:
        return ""
    groups, o = outcomes
    rows = "".join(_outcome_row(str(g.key["task"]), g) for g in groups)
    return (
        '<section class="panel wide" id="outcomes"><h2>Outcomes by task '
        '<span class="muted">(every run of each task; the total counts root runs)</span></h2><table>'
        "<thead><tr><th>Task</th><th>runs</th><th>success</th><th>cost</th><th>per-run</th>"
        "<th>per-success</th><th>per-unit</th><th>runs with unpriced calls</th></tr></thead>"
        f"<tbody>{rows}</tbody><tfoot>{_outcome_row('TOTAL', o)}</tfoot></table></section>"
    )


def _waste(t: _report.Group, outcomes: tuple[Any, _economics.Economics] | None) -> str:
    o = outcomes[1] if outcomes else None
    rows = [
        ("Failed calls", f"{count(t.failed_calls)} calls", _money(t.failed_cost_usd, ident="waste-failed")),
        (
            "Retries",
            f"{count(t.retries)} retries",
            _money(o.retry_waste_cost_usd, ident="waste-retry") if o else "-",
        ),
        (
            "Duplicate calls",
            f"{count(o.duplicate_calls)} calls" if o else "-",
            _money(o.duplicate_cost_usd, ident="waste-duplicates") if o else "-",
        ),
    ]
    body = "".join(
        f'<tr><td class="key">{a}</td><td class="num">{b}</td><td class="num">{c}</td></tr>'
        for a, b, c in rows
    )
    return (
        '<section class="panel" id="waste"><h2>Waste</h2><table><thead><tr><th></th><th>count</th>'
        f"<th>cost</th></tr></thead><tbody>{body}</tbody></table></section>"
    )


def _whatif_section(whatif: tuple[list[_whatif.WhatIfGroup], _whatif.WhatIfGroup] | None, model: str) -> str:
    if whatif is None:
        return ""
    from tokentrace._cli.pricing import _whatif_cells

    groups, total = whatif
    names = ("calls", "recorded", "what-if", "difference", "change", "not-repriced")
    head = "".join(f"<th>{n}</th>" for n in names)

    def row(key: str, g: _whatif.WhatIfGroup) -> str:
        cells = _whatif_cells(g)
        exact = {"recorded": g.current_usd, "what-if": g.whatif_usd, "difference": g.difference_usd}
        tds = "".join(
            f'<td class="num"><span class="usd" data-usd="{_report.text(exact[n])}">{cells[n]}</span></td>'
            if n in exact
            else f'<td class="num">{cells[n]}</td>'
            for n in names
        )
        return f'<tr><td class="key">{escape(key)}</td>{tds}</tr>'

    rows = "".join(row(str(g.key["model"]), g) for g in groups)
    return (
        '<section class="panel wide" id="whatif">'
        f"<h2>What if every call ran on {escape(model)}</h2>"
        f"<table><thead><tr><th>Model</th>{head}</tr></thead><tbody>{rows}</tbody>"
        f"<tfoot>{row('TOTAL', total)}</tfoot></table></section>"
    )


# The page's sections, in the order the dashboard asks for them (the first screen first). On
# the page, the cost per successful run is a card beside the totals, and the breakdowns and the
# waste share a grid, the waste (made of the totals and the outcomes, so at no cost of its own)
# beside cost by task, where a window shows it at first.
GRID = ("by-task", "waste", *(f"by-{dim}" for dim in BREAKDOWNS[1:]))
SECTIONS = ("kpis", "time", "by-task", "success", "waste", *GRID[2:], "runs", "outcomes", "whatif")
_LOADING = {
    "kpis": "Totals",
    "success": "Cost per successful run",
    "time": "Cost over time",
    "waste": "Waste",
    "runs": "Most expensive runs",
}


def section(name: str, parts: Parts) -> str:
    """One section of the page, from ``parts`` (each computed on first use)."""
    if name == "kpis":
        return _kpis(parts.total())
    if name == "success":
        return _success(parts.outcomes())
    if name == "time":
        return _time_chart(parts.series(), parts.query)
    if name.startswith("by-") and name[3:] in BREAKDOWNS:
        return _breakdown(name[3:], parts.breakdown(name[3:]), parts.total())
    if name == "waste":
        return _waste(parts.total(), parts.outcomes())
    if name == "runs":
        notes = "".join(f'<p class="note">{escape(n)}</p>' for n in parts.notes())
        return notes + _runs(*parts.runs())
    if name == "outcomes":
        return _outcomes(parts.outcomes())
    if name == "whatif":
        return _whatif_section(parts.whatif(), parts.query.whatif or "")
    raise KeyError(name)


def _layout(fill: Callable[[str], str]) -> str:
    grid = "".join(fill(n) for n in GRID)
    return (
        f'<section class="kpis">{fill("kpis")}{fill("success")}</section>{fill("time")}'
        f'<div class="grid">{grid}</div>{fill("runs")}{fill("outcomes")}{fill("whatif")}'
    )


def content(parts: Parts) -> str:
    """Every section's numbers and charts: the HTML report's body."""
    return _layout(lambda name: section(name, parts))


def slots(query: Query) -> str:
    """The dashboard's sections as places the page's script fills, each from its own request."""

    def slot(name: str) -> str:
        if name == "whatif" and not query.whatif:
            return ""
        title = _LOADING.get(name) or (f"Cost by {name[3:]}" if name.startswith("by-") else name.title())
        return (
            f'<div class="slot" data-section="{name}" data-rank="{SECTIONS.index(name)}">'
            f'<p class="muted loading">{escape(title)}: loading…</p></div>'
        )

    return _layout(slot)


def _filters_form(q: Query, choices: Mapping[str, list[str]]) -> str:
    chosen = dict(q.where)

    def select(name: str, options: Iterable[str], current: str | None, blank: str | None) -> str:
        opts = [f'<option value="">{blank}</option>'] if blank is not None else []
        opts += [
            f'<option value="{escape(o)}"{" selected" if o == current else ""}>{escape(o)}</option>'
            for o in options
        ]
        return f'<label>{name}<select name="{name}">{"".join(opts)}</select></label>'

    def field(name: str, value: str | None, hint: str) -> str:
        return (
            f'<label>{name}<input name="{name}" value="{escape(value or "")}" '
            f'placeholder="{hint}" size="11"></label>'
        )

    parts = [
        field("since", q.since, "7d, 2026-11-01"),
        field("until", q.until, "2026-11-30"),
        *(select(dim, choices.get(dim, []), chosen.get(dim), "all") for dim in FILTERS),
        select("bucket", BUCKETS, q.bucket, None),
        select("split", SPLITS, q.split, None),
        field("whatif", q.whatif, "gpt-4o-mini"),
        '<button type="submit">Apply</button><a class="reset" href="?">Reset</a>',
    ]
    return f'<form id="filters" method="get">{"".join(parts)}</form>'


def _heading(ledger: str, query: Any) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in query.params().items()) or "all calls"
    return (
        f'<header><h1>tokentrace</h1><span class="muted">ledger {escape(ledger)} · '
        f'<span id="scope">{escape(shown)}</span> · updated <span id="updated">'
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M:%S')} UTC</span></span></header>"
    )


def page(query: Query, *, ledger: str, refresh: float, stamp: str, workers: int) -> str:
    """The dashboard: the filters, then the sections, which its script loads (``workers`` at a
    time, in order) and loads again when the ledger changes. A filter's choices come with them."""
    params = urlencode(query.params())
    chosen = {dim: [value] for dim, value in query.where}
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<title>tokentrace</title><link rel="stylesheet" href="/static/ui.css"></head>'
        f'<body data-refresh="{refresh}" data-stamp="{escape(stamp)}" data-query="{escape(params)}" '
        f'data-workers="{workers}">{_heading(ledger, query)}'
        f'{_filters_form(query, chosen)}<main id="content" aria-busy="true">{slots(query)}</main>'
        '<noscript><p class="note">The dashboard loads its numbers with a script: allow it, or write '
        "the same page with <code>tokentrace report --html FILE</code>.</p></noscript>"
        '<script src="/static/ui.js"></script></body></html>'
    )


def error_page(message: str, *, ledger: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>tokentrace</title>'
        f'<link rel="stylesheet" href="/static/ui.css"></head><body><header><h1>tokentrace</h1>'
        f'<span class="muted">ledger {escape(ledger)}</span></header>'
        f'<p class="note error">{escape(message)}</p>'
        '<p><a href="?">Back to all calls</a></p></body></html>'
    )


def report_file(parts: Parts, *, ledger: str) -> str:
    """The shareable report: one file, its style inline, no script and no external URL."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>tokentrace report</title><style>{static('ui.css')}</style></head>"
        f'<body class="report">{_heading(ledger, parts.query)}<main id="content">{content(parts)}</main>'
        "<footer>Written by <code>tokentrace report --html</code>; amounts are rounded to a millionth of a "
        "dollar, the exact ones are in each amount's tooltip source (data-usd).</footer></body></html>"
    )
