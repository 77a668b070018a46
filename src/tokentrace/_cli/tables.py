"""Tables that fit the window they are printed in, with no cell ever cut.

A table shows each cell whole. The default view of a command picks its most telling columns
and, when they do not fit, gives up the least telling ones; ``--columns`` and ``--wide`` pick
columns, and when those do not fit, each row becomes a block of its own (its key on a line,
then ``name value`` pairs flowed to the width). A name longer than the whole width is the only
text ever broken, onto more lines.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tokentrace._cli.common import console
from tokentrace.exceptions import ConfigurationError


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a table: its header, which is also its name for ``--columns``."""

    name: str
    right: bool = True
    """Numbers and money align right, text left."""
    rank: int | None = None
    """In the default view: 0 always shown, higher ranks given up first when the width is short;
    None: shown only with ``--wide`` or ``--columns``."""


@dataclass(slots=True)
class Sheet:
    """A table's title, group columns (shown whole, whatever the width), value columns and rows."""

    title: str
    keys: Sequence[str]
    columns: Sequence[Column]
    rows: list[tuple[list[str], dict[str, str]]] = field(default_factory=list)
    total: dict[str, str] | None = None
    """The TOTAL row's cells, shown below a rule."""

    def add(self, key: Sequence[str], cells: dict[str, str]) -> None:
        self.rows.append(([*key], cells))


def pick(columns: Sequence[Column], args: argparse.Namespace, keys: Sequence[str] = ()) -> list[Column]:
    """The columns ``--columns`` names, in its order; all of them with ``--wide``; else the default
    ones. An unknown name is refused with the list of valid ones."""
    spec = getattr(args, "columns", None)
    if spec is None:
        if getattr(args, "wide", False):
            return list(columns)
        return [c for c in columns if c.rank is not None]
    by_name = {c.name: c for c in columns}
    names = [part.strip().lower() for part in spec.split(",") if part.strip()]
    unknown = [n for n in names if n not in by_name and n not in keys]
    if unknown or not names:
        what = f"unknown column {unknown[0]!r}" if unknown else "names no column"
        raise ConfigurationError(f"--columns {spec!r}: {what}; choose from {', '.join(by_name)}")
    return [by_name[n] for n in dict.fromkeys(names) if n in by_name]


def explicit(args: argparse.Namespace) -> bool:
    """Whether the columns were chosen (``--columns``, ``--wide``) rather than the default view."""
    return getattr(args, "columns", None) is not None or bool(getattr(args, "wide", False))


def show(sheet: Sheet, args: argparse.Namespace, *, hint: bool = True) -> None:
    """Print ``sheet`` as a table that fits the width, else as one block per row."""
    out = console(wide=bool(getattr(args, "wide", False)))
    width = out.width
    chosen = pick(sheet.columns, args, sheet.keys)
    shown = chosen
    if not explicit(args):
        # Give up the highest-ranked columns first, down to the rank-0 ones.
        while _measure(out, _table(sheet, shown)) > width and any(c.rank for c in shown):
            worst = max(c.rank or 0 for c in shown)
            shown = [c for c in shown if c.rank != worst]
    out.print(_line(sheet.title, "bold"))
    table = _table(sheet, shown)
    if _measure(out, table) <= width:
        out.print(table)
    else:
        shown = chosen
        _blocks(out, sheet, chosen, width)
    hidden = [c.name for c in sheet.columns if c not in shown]
    if hint and hidden and not explicit(args):
        more = f"More columns: {', '.join(hidden)} (--columns NAME,... picks them, --wide shows all)"
        out.print(_line(more, "dim"))


def pack(parts: Sequence[Any], width: int, gap: int = 2) -> list[list[Any]]:
    """``parts`` (texts) flowed into lines of at most ``width`` cells, ``gap`` apart; a part is
    never split, and one wider than ``width`` gets a line of its own."""
    from rich.cells import cell_len

    lines: list[list[Any]] = []
    used = 0
    for part in parts:
        size = cell_len(str(part))
        if lines and lines[-1] and used + gap + size <= width:
            lines[-1].append(part)
            used += gap + size
        else:
            lines.append([part])
            used = size
    return lines


def _line(text: str, style: str) -> Any:
    from rich.text import Text

    return Text(text, style=style)


def _table(sheet: Sheet, shown: Sequence[Column]) -> Any:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        box=box.SIMPLE,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
        show_footer=sheet.total is not None,
        header_style="bold",
        footer_style="bold",
    )
    total = sheet.total or {}
    for i, name in enumerate(sheet.keys):
        table.add_column(name, footer=Text("TOTAL" if i == 0 else ""), overflow="fold")
    for column in shown:
        table.add_column(
            column.name,
            footer=Text(total.get(column.name, "")),
            justify="right" if column.right else "left",
            overflow="fold",
        )
    for key, cells in sheet.rows:
        # Text, not markup: a task named "[draft]" is shown as it is.
        table.add_row(*(Text(k) for k in key), *(Text(cells.get(c.name, "")) for c in shown))
    return table


def _measure(out: Any, table: Any) -> int:
    """The table's width with every cell whole."""
    return int(out.measure(table, options=out.options.update_width(1_000_000)).maximum)


def _blocks(out: Any, sheet: Sheet, shown: Sequence[Column], width: int) -> None:
    """One block per row: the key's parts, then ``name value`` pairs, each flowed to ``width``."""
    from rich.text import Text

    rows: list[tuple[list[str], dict[str, str], bool]] = [(k, c, False) for k, c in sheet.rows]
    if sheet.total is not None:
        rows.append((["TOTAL"], sheet.total, True))
    for key, cells, is_total in rows:
        out.print()
        heads: list[str] = (
            key if is_total else [f"{name} {value}" for name, value in zip(sheet.keys, key, strict=True)]
        )
        for line in pack(heads, width):
            out.print(Text("  ".join(line), style="bold"))
        pairs = [
            Text.assemble((c.name, "dim"), " ", cells.get(c.name, ""))
            for c in shown
            if cells.get(c.name, "") != ""
        ]
        for parts in pack(pairs, width - 2):
            out.print(Text("  ") + Text("  ").join(parts))
