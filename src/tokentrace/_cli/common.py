"""What the ``tokentrace`` command's subcommands share: opening the ledger, reading filters,
and printing tables (rich) or machine formats."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from tokentrace.exceptions import ConfigurationError
from tokentrace.ledger import _report

_CENT_MICROS = Decimal("0.000001")
_MAX_LIMIT = 2**63 - 1  # SQLite's largest integer: more rows than any ledger holds


def dollars(value: Decimal | None) -> str:
    if value is None:
        return "-"
    amount = value.quantize(_CENT_MICROS, rounding=ROUND_HALF_EVEN)
    return f"-${-amount:,}" if amount < 0 else f"${amount:,}"


def count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _ledger_path(args: argparse.Namespace) -> Path | str:
    from tokentrace.ledger._target import target_of

    return target_of(args.ledger or None)


def open_ledger(args: argparse.Namespace) -> Any:
    from tokentrace.ledger._read import open_read_only

    return open_read_only(_ledger_path(args))


def ledger_path(args: argparse.Namespace) -> Path | str:
    """The ledger a command reads: ``--ledger`` (a file or a PostgreSQL URL), else
    ``TOKENTRACE_LEDGER`` or the file in the data directory."""
    return _ledger_path(args)


def filters(args: argparse.Namespace) -> _report.Filters:
    return _report.Filters(
        since_ns=_report.parse_time(args.since) if args.since is not None else None,
        until_ns=_report.parse_time(args.until) if args.until is not None else None,
        where=_report.parse_where(args.where or ()),
    )


def dimensions(text: str) -> list[str]:
    """``--by``'s comma-separated dimensions, each once, in the order given."""
    chosen = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not chosen:
        raise ConfigurationError(f"--by {text!r} names no dimension: give one or more, separated by commas")
    return chosen


# --- argument types (argparse reports their ArgumentTypeError as "argument --x: <message>") ---


def text(value: str) -> str:
    """A text argument: not empty, and UTF-8, as the ledger's text is (a value the shell passed
    as other bytes reaches Python with surrogate escapes, which SQLite cannot take)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("empty: give a value")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "surrogateescape")
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not UTF-8 text: give it in UTF-8, the ledger's encoding"
        ) from None
    return value


def path(value: str) -> str:
    """A file argument: not empty (any bytes the file system takes)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("empty: give a file path")
    return value


def limit(value: str) -> int:
    """A positive count of rows; one above SQLite's largest integer means all of them."""
    try:
        number = int(value)
    except ValueError:
        digits = value.strip()
        # More digits than int() reads (4,300): more rows than any ledger holds.
        number = _MAX_LIMIT if digits.isascii() and digits.isdigit() else 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of rows: give a whole number from 1 up")
    return min(number, _MAX_LIMIT)


def width(*, wide: bool = False) -> int | None:
    """The width output must fit: ``COLUMNS``, else the terminal's; a pipe or a file gets 80
    columns, or no limit with ``--wide`` (None)."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        try:
            return os.get_terminal_size(sys.stdout.fileno()).columns or 80
        except OSError:  # a terminal that gives no size
            return 80
    return None if wide else 80


def console(*, wide: bool = False) -> Any:
    from rich.console import Console

    # No limit: wide enough for any table, one line per row.
    return Console(width=width(wide=wide) or 1_000_000)


def emit(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    """``rows`` in a machine format (``--format json`` or ``csv``), every field of each."""
    if args.format == "json":
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        flat = [{k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()} for row in rows]
        writer = csv.DictWriter(sys.stdout, fieldnames=list(flat[0]) if flat else ["calls"])
        writer.writeheader()
        writer.writerows(flat)


def key_cells(key: dict[str, Any]) -> list[str]:
    """A table row's group cells: the group's values, "-" for none."""
    return [str(v) if v is not None else "-" for v in key.values()]
