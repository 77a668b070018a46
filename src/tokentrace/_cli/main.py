"""The ``tokentrace`` command (also ``python -m tokentrace``): where the money went, from the ledger."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

from tokentrace._cli.common import (
    console,
    count,
    dimensions,
    dollars,
    emit,
    filters,
    key_cells,
    ledger_path,
    limit,
    open_ledger,
    path,
    text,
)
from tokentrace._cli.pricing import WHATIF_COLUMNS, cmd_prices, cmd_whatif
from tokentrace._cli.tables import Column, Sheet, pick, show
from tokentrace._cli.tasks import COLUMNS as TASK_COLUMNS
from tokentrace._cli.tasks import cmd_show, cmd_tasks, task_filters
from tokentrace._foundation import safety as _safety
from tokentrace.exceptions import ConfigurationError
from tokentrace.ledger import _report
from tokentrace.ledger._read import remedy
from tokentrace.ledger._target import shown

# The columns of each table, in their order; the ranked ones make the default view, rank 0 is
# kept at any width and the highest rank is given up first.
REPORT_COLUMNS = (
    Column("calls", rank=1),
    Column("cost", rank=0),
    Column("runs", rank=3),
    Column("per-run", rank=2),
    Column("p50"),
    Column("p95"),
    Column("p99"),
    Column("in-tokens"),
    Column("cached", rank=4),
    Column("out-tokens"),
    Column("retries"),
    Column("failed"),
    Column("unpriced"),
)
OUTCOMES_COLUMNS = (
    Column("runs", rank=2),
    Column("success", rank=3),
    Column("cost", rank=0),
    Column("per-run"),
    Column("per-success", rank=1),
    Column("units"),
    Column("per-unit", rank=4),
    Column("duplicates"),
    Column("retry-waste"),
    Column("in/cached/out"),
)

# --- report ----------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    if getattr(args, "html", None):
        from tokentrace._cli.ui.command import write_html

        return write_html(args)
    by = dimensions(args.by)
    shown = {c.name for c in pick(REPORT_COLUMNS, args, by)}
    # The percentiles cost a second pass over the calls: only when they are printed.
    percentiles = args.format != "table" or bool(shown & {"p50", "p95", "p99"})
    conn = open_ledger(args)
    groups, total = _report.report(conn, by, filters(args), percentiles=percentiles)
    rows = [g.as_dict() for g in groups]
    if args.format != "table":
        emit(args, [*rows, {**{d: "TOTAL" for d in by}, **total.as_dict()}] if rows else [])
        return 0
    sheet = Sheet(f"LLM cost by {', '.join(by)}", by, REPORT_COLUMNS)
    for g in groups:
        sheet.add(key_cells(g.key), _report_cells(g))
    sheet.total = _report_cells(total)
    show(sheet, args, hint=getattr(args, "hint", True))
    if total.unpriced_calls:
        console().print(
            f"[yellow]{total.unpriced_calls} call(s) could not be priced: their tokens are counted, "
            "their cost is not (see: tokentrace report --by model --where model=...).[/yellow]"
        )
    return 0


def _report_cells(g: _report.Group) -> dict[str, str]:
    all_unpriced = g.calls > 0 and g.unpriced_calls == g.calls
    per = {k: "-" if all_unpriced or not g.per_run else dollars(v) for k, v in g.per_run.items()}
    return {
        "calls": count(g.calls),
        "cost": "unpriced" if all_unpriced else dollars(g.cost_usd),
        "runs": count(g.runs),
        "per-run": per.get("mean", "-"),
        "p50": per.get("p50", "-"),
        "p95": per.get("p95", "-"),
        "p99": per.get("p99", "-"),
        "in-tokens": count(g.input_tokens),
        "cached": f"{g.cached_share:.0%}",
        "out-tokens": count(g.output_tokens),
        "retries": count(g.retries),
        "failed": dollars(g.failed_cost_usd) if g.failed_calls else "-",
        "unpriced": count(g.unpriced_calls),
    }


# --- outcomes --------------------------------------------------------------------------------


def cmd_outcomes(args: argparse.Namespace) -> int:
    from tokentrace.ledger import _economics

    by = dimensions(args.by)
    pick(OUTCOMES_COLUMNS, args, by)
    conn = open_ledger(args)
    groups, total = _economics.outcomes(conn, by, filters(args))
    rows = [g.as_dict() for g in groups]
    if args.format != "table":
        emit(args, [*rows, {**{d: "TOTAL" for d in by}, **total.as_dict()}] if rows else [])
        return 0
    scope = "every run of each task" if "task" in by else "root task runs"
    sheet = Sheet(f"Unit economics by {', '.join(by)} ({scope})", by, OUTCOMES_COLUMNS)
    for g in groups:
        sheet.add(key_cells(g.key), _outcome_cells(g))
    sheet.total = _outcome_cells(total)
    show(sheet, args, hint=getattr(args, "hint", True))
    if total.unpriced_runs:
        console().print(
            f"[yellow]* {total.unpriced_runs} run(s) include calls that could not be priced: "
            "their cost is left out, not counted as $0.[/yellow]"
        )
    return 0


def _outcome_cells(g: Any) -> dict[str, str]:
    per_unit = g.cost_per_unit()
    shares = g.shares()
    unpriced = bool(g.unpriced_runs) and not g.cost_usd
    mark = "*" if g.unpriced_runs and g.cost_usd else ""
    per_run = g.as_dict()["cost_per_run_usd"]
    fresh_input = shares["input"] + shares["cache_write"]
    return {
        "runs": count(g.runs),
        "success": f"{g.successes / g.runs:.0%}" if g.runs else "-",
        "cost": "unpriced" if unpriced else dollars(g.cost_usd) + mark,
        "per-run": "unpriced" if unpriced else (dollars(Decimal(per_run)) + mark if per_run else "-"),
        "per-success": "unpriced" if unpriced else dollars(g.cost_per_success) + mark,
        "units": ", ".join(f"{n.normalize():f} {u}" for u, n in sorted(g.units.items())) or "-",
        "per-unit": ", ".join(
            f"{'unpriced' if unpriced else dollars(c) + mark}/{u}" for u, c in sorted(per_unit.items())
        )
        or "-",
        "duplicates": f"{g.duplicate_calls} ({dollars(g.duplicate_cost_usd)})" if g.duplicate_calls else "-",
        "retry-waste": dollars(g.retry_waste_cost_usd) if g.retry_waste_cost_usd else "-",
        "in/cached/out": "-"
        if unpriced
        else f"{fresh_input:.0%} / {shares['cache_read']:.0%} / {shares['output']:.0%}",
    }


# --- export / demo ---------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from tokentrace.ledger._writer import iter_rows

    if args.table == "calls":
        where, params = filters(args).sql()
    else:
        chosen, columns = task_filters(args, "export --table tasks")
        where, params = chosen.sql(columns=columns)
    conn = open_ledger(args)
    for row in iter_rows(conn, args.table, f"WHERE {where}" if where else "", params):
        sys.stdout.write(json.dumps(row, separators=(",", ":")) + "\n")
    return 0


def _demo_ledger(args: argparse.Namespace) -> Path | str:
    from tokentrace.ledger._target import target_of

    return target_of(args.ledger) if args.ledger else Path(tempfile.gettempdir()) / "tokentrace-demo.db"


def cmd_demo(args: argparse.Namespace) -> int:
    from tokentrace._cli import demo as _demo

    ledger = _demo_ledger(args)
    out = console()
    out.print("Running a support agent offline against recorded OpenAI and Anthropic responses...")
    _demo.run(ledger)
    out.print(f"Ledger: {shown(ledger)}\n")
    report_args = argparse.Namespace(
        ledger=str(ledger),
        by="task,model",
        since=None,
        until=None,
        where=None,
        format="table",
        columns=None,
        wide=False,
        hint=False,
    )
    cmd_report(report_args)
    out.print()
    cmd_outcomes(argparse.Namespace(**{**vars(report_args), "by": "task"}))
    out.print("\nTry next, on the demo's ledger:")
    for command in (
        "tokentrace tasks",
        "tokentrace show TASK_ID",
        "tokentrace outcomes --by feature",
        "tokentrace report --by user --wide",
        "tokentrace whatif --model gpt-4o-mini",
    ):
        _print_command(out, f"{command} --ledger {shown(ledger)}")
    _print_command(out, "tokentrace prices claude-sonnet-4-20250514")
    out.print(
        "Tables show the columns that fit the window: --wide shows them all, --columns NAME,... "
        "picks them (each command's --help lists them)."
    )
    out.print("\nSee it as charts:")
    _print_command(out, f"pip install 'tokentrace[ui]' && tokentrace ui --ledger {shown(ledger)}")
    return 0


def _print_command(out: Any, command: str) -> None:
    """A command to copy, indented, with its --ledger on a continued line when it is too long."""
    from rich.text import Text

    head, sep, rest = command.partition(" --ledger ")
    if not sep or len(command) + 2 <= out.width:
        out.print(Text(f"  {command}"))
    else:
        out.print(Text(f"  {head} \\\n      --ledger {rest}"))


# --- parser ----------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse with each error on one line, which points to ``--help`` for the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"tokentrace: {message} (see: {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    dims = ", ".join(_report.DIMENSIONS)
    top = _Parser(prog="tokentrace", description="What each task of your LLM application costs.")
    from tokentrace._version import __version__

    top.add_argument("--version", action="version", version=f"tokentrace {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(
        p: argparse.ArgumentParser,
        *,
        filters: bool = True,
        formats: Sequence[str] = ("table", "json", "csv"),
        columns: Sequence[Column] = (),
    ) -> None:
        p.add_argument(
            "--ledger",
            type=path,
            help="the ledger file (default: TOKENTRACE_LEDGER or the user data directory)",
        )
        if filters:
            p.add_argument(
                "--since",
                type=text,
                help="from this time: 2026-11-01, 2026-11-01T12:00, or back from now: 30m, 24h, 7d",
            )
            p.add_argument(
                "--until", type=text, help="up to (not including) this time, same forms as --since"
            )
            p.add_argument(
                "--where",
                action="append",
                type=text,
                metavar="DIM=VALUE",
                help=f"only these calls (repeatable); DIM is one of {dims}",
            )
        p.add_argument("--format", choices=formats, default="table")
        if columns:
            default = ",".join(c.name for c in columns if c.rank is not None)
            p.add_argument(
                "--columns",
                type=text,
                metavar="NAMES",
                help=f"the table's columns, comma-separated, in order: {', '.join(c.name for c in columns)} "
                f"(default: {default}, less what does not fit)",
            )
            p.add_argument(
                "--wide",
                action="store_true",
                help="every column; a row that does not fit the window becomes a block of its own "
                "(piped, one line per row however long, unless COLUMNS is set)",
            )

    p = sub.add_parser("report", help="cost and tokens grouped by task, feature, user, model, ...")
    p.add_argument(
        "--by", type=text, default="task", help=f"comma-separated dimensions ({dims}); default: task"
    )
    p.add_argument(
        "--html",
        type=path,
        metavar="FILE",
        help="write the dashboard's charts and tables for these filters to one self-contained HTML file",
    )
    common(p, columns=REPORT_COLUMNS)
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("outcomes", help="cost per successful run and per unit of work, waste, context share")
    p.add_argument(
        "--by",
        type=text,
        default="task",
        help="comma-separated: task, root, feature, user, tenant, environment, service, day",
    )
    common(p, columns=OUTCOMES_COLUMNS)
    p.set_defaults(fn=cmd_outcomes)

    p = sub.add_parser("tasks", help="recent task runs with their inclusive cost")
    p.add_argument("--name", type=text, help="only runs of this task")
    p.add_argument("--nested", action="store_true", help="include nested tasks, not only root runs")
    p.add_argument("--limit", type=limit, default=20, help="at most this many runs (default: 20)")
    common(p, columns=TASK_COLUMNS)
    p.set_defaults(fn=cmd_tasks)

    p = sub.add_parser("show", help="one task run as a tree of nested tasks and calls")
    p.add_argument("task_id", type=text, help="a task id (or its first characters) from 'tokentrace tasks'")
    common(p, filters=False, formats=("table", "json"))
    p.set_defaults(fn=cmd_show)

    p = sub.add_parser("whatif", help="re-price recorded usage under another model or price sheet")
    p.add_argument("--model", type=text, help="the model to price every call as")
    p.add_argument("--provider", type=text, help="its provider (guessed from the model name when left out)")
    p.add_argument(
        "--prices", type=path, help="a JSON price file (negotiated rates, self-hosting); see docs/pricing.md"
    )
    p.add_argument(
        "--by", type=text, default="model", help=f"comma-separated dimensions ({dims}); default: model"
    )
    common(p, columns=WHATIF_COLUMNS)
    p.set_defaults(fn=cmd_whatif)

    p = sub.add_parser("prices", help="the rates tokentrace uses for a model, and where they come from")
    p.add_argument("model", type=text)
    p.add_argument("--provider", type=text, help="the provider (guessed from the model name when left out)")
    p.add_argument("--prices", type=path, help="a JSON price file to apply first")
    p.add_argument(
        "--service-tier", type=text, help="the rates for calls served at this tier (OpenAI's flex, priority)"
    )
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(fn=cmd_prices)

    p = sub.add_parser("export", help="the ledger's rows as JSON lines, for other tools")
    p.add_argument("--table", choices=("calls", "tasks"), default="calls")
    common(p, formats=("jsonl",))
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("demo", help="run an offline agent on recorded responses, fill a ledger, report")
    p.add_argument(
        "--ledger", type=path, help="where to write the demo ledger (default: a file in the temp directory)"
    )
    p.set_defaults(fn=cmd_demo)

    from tokentrace._cli.ui.command import PUBLIC_FLAG, cmd_ui

    p = sub.add_parser("ui", help="a dashboard of the ledger in your browser, on 127.0.0.1 (the ui extra)")
    p.add_argument(
        "--ledger", type=path, help="the ledger file (default: TOKENTRACE_LEDGER or the user data directory)"
    )
    p.add_argument("--port", type=int, default=8321, help="the port (default: 8321; 0 picks a free one)")
    p.add_argument("--host", type=text, default="127.0.0.1", help="the interface (default: 127.0.0.1)")
    p.add_argument(
        PUBLIC_FLAG,
        dest="public",
        action="store_true",
        help="allow a --host other than loopback: the page shows spend per user and tenant, with no login",
    )
    p.add_argument(
        "--refresh",
        type=float,
        default=5.0,
        help="seconds between checks for new calls (default: 5; 0: never)",
    )
    p.set_defaults(fn=cmd_ui)
    return top


def _unreadable(args: argparse.Namespace, exc: sqlite3.DatabaseError) -> str:
    """One line on a ledger SQLite failed to read: which file, SQLite's reason, what to do."""
    file = _demo_ledger(args) if args.fn is cmd_demo else ledger_path(args)
    return f"tokentrace: cannot read ledger {file}: {exc}; {remedy(exc)}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except ConfigurationError as exc:
        print(f"tokentrace: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # piped into head, say
        return 0
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "rich":
            raise
        print(
            "tokentrace: tables need rich, which is not installed: pip install 'tokentrace[cli]'",
            file=sys.stderr,
        )
        return 2
    except sqlite3.DatabaseError as exc:
        # A damaged, foreign or locked ledger file. A ProgrammingError is tokentrace misusing
        # SQLite, and in tokentrace's own test suite (strict mode) every error shows its traceback.
        if isinstance(exc, sqlite3.ProgrammingError) or _safety.strict():
            raise
        print(_unreadable(args, exc), file=sys.stderr)
        return 2
    except Exception as exc:
        # psycopg's errors (a PostgreSQL ledger that went away mid-report, say): one line, the
        # URL's password masked; anything else is tokentrace's bug and shows its traceback.
        if not type(exc).__module__.startswith("psycopg") or _safety.strict():
            raise
        from tokentrace.ledger._postgres import masked

        print(
            f"tokentrace: cannot read ledger {shown(ledger_path(args))}: {masked(str(exc))}", file=sys.stderr
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
