"""The ``tokentrace`` command (also ``python -m tokentrace``): where the money went, from the ledger."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

from tokentrace import _report, _safety
from tokentrace._cli_common import (
    console,
    count,
    dimensions,
    emit,
    filters,
    key_cells,
    ledger_path,
    limit,
    open_ledger,
    path,
    text,
    usd,
)
from tokentrace._cli_pricing import cmd_prices, cmd_whatif
from tokentrace.exceptions import ConfigurationError

# --- report ----------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    by = dimensions(args.by)
    conn = open_ledger(args)
    groups, total = _report.report(conn, by, filters(args))
    rows = [g.as_dict() for g in groups]
    if args.format != "table":
        emit(args, [*rows, {**{d: "TOTAL" for d in by}, **total.as_dict()}] if rows else [], None)
        return 0
    from rich.table import Table

    table = Table(title=f"LLM cost by {', '.join(by) or 'everything'}", title_justify="left")
    for d in by:
        width = max([len(d), *(len(str(g.key[d])) for g in groups)])
        table.add_column(d, min_width=min(width, 28))
    for name in (
        "calls",
        "cost",
        "runs",
        "mean/run",
        "p50",
        "p95",
        "p99",
        "in tokens",
        "cached",
        "out tokens",
        "retries",
        "failed",
        "unpriced",
    ):
        table.add_column(name, justify="right", no_wrap=True)
    for g in [*groups, total]:
        is_total = g is total
        key = key_cells(g.key, len(by), is_total)
        all_unpriced = g.calls > 0 and g.unpriced_calls == g.calls
        per = g.per_run
        table.add_row(
            *key,
            count(g.calls),
            "unpriced" if all_unpriced else usd(g.cost_usd),
            count(g.runs),
            *("-" if all_unpriced or not per else usd(per[k]) for k in ("mean", "p50", "p95", "p99")),
            count(g.input_tokens),
            f"{g.cached_share:.0%}",
            count(g.output_tokens),
            count(g.retries),
            usd(g.failed_cost_usd) if g.failed_calls else "-",
            count(g.unpriced_calls),
            end_section=bool(groups) and g is groups[-1],
            style="bold" if is_total else None,
        )
    console().print(table)
    if total.unpriced_calls:
        console().print(
            f"[yellow]{total.unpriced_calls} call(s) could not be priced: their tokens are counted, "
            "their cost is not (see: tokentrace report --by model --where model=...).[/yellow]"
        )
    return 0


# --- outcomes --------------------------------------------------------------------------------


def cmd_outcomes(args: argparse.Namespace) -> int:
    from tokentrace import _economics

    by = dimensions(args.by)
    conn = open_ledger(args)
    groups, total = _economics.outcomes(conn, by, filters(args))
    rows = [g.as_dict() for g in groups]
    if args.format != "table":
        emit(args, [*rows, {**{d: "TOTAL" for d in by}, **total.as_dict()}] if rows else [], None)
        return 0
    from rich.table import Table

    scope = "every run of each task" if "task" in by else "root task runs"
    table = Table(title=f"Unit economics by {', '.join(by)} ({scope})", title_justify="left")
    for d in by:
        table.add_column(d)
    for name in ("runs", "success", "cost", "per success", "units", "per unit", "duplicates", "retry waste"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("input / cached / output", justify="right", no_wrap=True)
    for g in [*groups, total]:
        is_total = g is total
        key = key_cells(g.key, len(by), is_total)
        per_unit = g.cost_per_unit()
        shares = g.shares()
        unpriced = bool(g.unpriced_runs) and not g.cost_usd
        mark = "*" if g.unpriced_runs and g.cost_usd else ""
        fresh_input = shares["input"] + shares["cache_write"]
        mix = f"{fresh_input:.0%} / {shares['cache_read']:.0%} / {shares['output']:.0%}"
        table.add_row(
            *key,
            count(g.runs),
            f"{g.successes / g.runs:.0%}" if g.runs else "-",
            "unpriced" if unpriced else usd(g.cost_usd) + mark,
            "unpriced" if unpriced else usd(g.cost_per_success) + mark,
            ", ".join(f"{n.normalize():f} {u}" for u, n in sorted(g.units.items())) or "-",
            ", ".join(f"{'unpriced' if unpriced else usd(c) + mark}/{u}" for u, c in sorted(per_unit.items()))
            or "-",
            f"{g.duplicate_calls} ({usd(g.duplicate_cost_usd)})" if g.duplicate_calls else "-",
            usd(g.retry_waste_cost_usd) if g.retry_waste_cost_usd else "-",
            "-" if unpriced else mix,
            end_section=bool(groups) and g is groups[-1],
            style="bold" if is_total else None,
        )
    console().print(table)
    if total.unpriced_runs:
        console().print(
            f"[yellow]* {total.unpriced_runs} run(s) include calls that could not be priced: "
            "their cost is left out, not counted as $0.[/yellow]"
        )
    return 0


# --- tasks / show ----------------------------------------------------------------------------


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")


def _task_filters(args: argparse.Namespace, command: str) -> tuple[_report.Filters, dict[str, str]]:
    """The filters of a command that reads task runs, and the ``tasks`` columns of their dimensions."""
    from tokentrace._economics import DIMENSIONS

    chosen = filters(args)
    unknown = [dim for dim, _ in chosen.where if dim not in DIMENSIONS]
    if unknown:
        raise ConfigurationError(
            f"--where {unknown[0]}=...: {command} filters task runs on {', '.join(DIMENSIONS)}"
        )
    return chosen, DIMENSIONS


def cmd_tasks(args: argparse.Namespace) -> int:
    chosen, columns = _task_filters(args, "tasks")
    conn = open_ledger(args)
    runs = _report.task_runs(
        conn, chosen, name=args.name, nested=args.nested, limit=args.limit, columns=columns
    )
    rows = [
        {
            "task_id": r["task_id"],
            "name": r["name"],
            "started": _when(r["start_ns"]),
            "duration_s": round((r["end_ns"] - r["start_ns"]) / 1e9, 3),
            "llm_calls": r["llm_calls"],
            "retries": r["retries"],
            "cost_usd": r["cost_usd"],
            "unpriced_calls": r["unpriced_calls"],
            "outcome": r["outcome"],
            "feature": r["feature"],
            "user_id": r["user_id"],
        }
        for r in runs
    ]
    from rich.table import Table

    table = Table(title="Task runs (newest first)", title_justify="left")
    for name in (
        "task id",
        "name",
        "started",
        "seconds",
        "calls",
        "retries",
        "cost",
        "outcome",
        "feature",
        "user",
    ):
        table.add_column(name, justify="right" if name in {"seconds", "calls", "retries", "cost"} else "left")
    for r in rows:
        table.add_row(
            r["task_id"],
            r["name"],
            r["started"],
            f"{r['duration_s']:.3f}",
            count(r["llm_calls"]),
            count(r["retries"]),
            _task_cost(r),
            r["outcome"] or "-",
            r["feature"] or "-",
            r["user_id"] or "-",
        )
    emit(args, rows, table)
    return 0


def _task_cost(run: dict[str, Any]) -> str:
    unpriced = run["unpriced_calls"]
    if unpriced and unpriced == run["llm_calls"]:
        return "unpriced"
    return usd(Decimal(run["cost_usd"])) + (f" +{unpriced} unpriced" if unpriced else "")


def _call_label(call: dict[str, Any]) -> str:
    tokens = "no usage"
    if call["input_tokens"] is not None:
        cached = f" ({call['cache_read_tokens']:,} cached)" if call["cache_read_tokens"] else ""
        tokens = f"{call['input_tokens']:,} in{cached} / {call['output_tokens']:,} out"
    cost = usd(Decimal(call["cost_usd"])) if call["cost_usd"] is not None else call["cost_status"].upper()
    extra = f"  retries {call['retries']}" if call["retries"] else ""
    if call["error_type"]:
        extra += f"  error {call['error_type']}"
    if call["usage_estimated"]:
        extra += "  (estimated tokens)"
    return f"{call['operation']} {call['model']}  {cost}  {tokens}{extra}"


def _tree_dict(node: _report.Node) -> dict[str, Any]:
    return {
        "task_id": node.task["task_id"],
        "name": node.task["name"],
        "branch_cost_usd": _report.text(node.branch_cost_usd),
        "branch_llm_calls": node.branch_calls,
        "outcome": node.task["outcome"],
        "calls": [
            {
                k: c[k]
                for k in (
                    "span_id",
                    "operation",
                    "provider",
                    "model",
                    "input_tokens",
                    "output_tokens",
                    "cache_read_tokens",
                    "reasoning_tokens",
                    "cost_usd",
                    "cost_status",
                    "retries",
                )
            }
            for c in node.calls
        ],
        "children": [_tree_dict(child) for child in node.children],
    }


def cmd_show(args: argparse.Namespace) -> int:
    conn = open_ledger(args)
    root = _report.task_tree(conn, _report.resolve_task_id(conn, args.task_id))
    if args.format == "json":
        json.dump(_tree_dict(root), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    from rich.tree import Tree

    def label(node: _report.Node) -> str:
        outcome = node.task["outcome"] or "-"
        return (
            f"[bold]{node.task['name']}[/bold]  {usd(node.branch_cost_usd)}  "
            f"{node.branch_calls} call(s)  [dim]{node.task['task_id']} {outcome}[/dim]"
        )

    def build(tree: Any, node: _report.Node) -> None:
        items: list[tuple[int, Any]] = [(c["start_ns"], c) for c in node.calls]
        items += [(child.task["start_ns"], child) for child in node.children]
        for _, item in sorted(items, key=lambda pair: pair[0]):
            if isinstance(item, _report.Node):
                build(tree.add(label(item)), item)
            else:
                tree.add(_call_label(item))

    tree = Tree(label(root))
    build(tree, root)
    console().print(tree)
    return 0


# --- export / demo ---------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from tokentrace._ledger import iter_rows

    if args.table == "calls":
        where, params = filters(args).sql()
    else:
        chosen, columns = _task_filters(args, "export --table tasks")
        where, params = chosen.sql(columns=columns)
    conn = open_ledger(args)
    for row in iter_rows(conn, args.table, f"WHERE {where}" if where else "", params):
        sys.stdout.write(json.dumps(row, separators=(",", ":")) + "\n")
    return 0


def _demo_ledger(args: argparse.Namespace) -> Path:
    return (
        Path(args.ledger).expanduser() if args.ledger else Path(tempfile.gettempdir()) / "tokentrace-demo.db"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from tokentrace import _demo

    ledger = _demo_ledger(args)
    out = console()
    out.print("Running a support agent offline against recorded OpenAI and Anthropic responses...")
    _demo.run(ledger)
    out.print(f"Ledger: {ledger}\n")
    report_args = argparse.Namespace(
        ledger=str(ledger), by="task,model", since=None, until=None, where=None, format="table"
    )
    cmd_report(report_args)
    out.print()
    cmd_outcomes(argparse.Namespace(**{**vars(report_args), "by": "task"}))
    out.print(
        "\nTry next:\n"
        f"  tokentrace report --ledger {ledger} --by user\n"
        f"  tokentrace outcomes --ledger {ledger} --by feature\n"
        f"  tokentrace tasks --ledger {ledger}\n"
        f"  tokentrace show --ledger {ledger} TASK_ID\n"
        f"  tokentrace whatif --ledger {ledger} --model gpt-4o-mini\n"
        "  tokentrace prices claude-sonnet-4-20250514"
    )
    return 0


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
        p: argparse.ArgumentParser, *, filters: bool = True, formats: Sequence[str] = ("table", "json", "csv")
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

    p = sub.add_parser("report", help="cost and tokens grouped by task, feature, user, model, ...")
    p.add_argument(
        "--by", type=text, default="task", help=f"comma-separated dimensions ({dims}); default: task"
    )
    common(p)
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("outcomes", help="cost per successful run and per unit of work, waste, context share")
    p.add_argument(
        "--by",
        type=text,
        default="task",
        help="comma-separated: task, root, feature, user, tenant, environment, service, day",
    )
    common(p)
    p.set_defaults(fn=cmd_outcomes)

    p = sub.add_parser("tasks", help="recent task runs with their inclusive cost")
    p.add_argument("--name", type=text, help="only runs of this task")
    p.add_argument("--nested", action="store_true", help="include nested tasks, not only root runs")
    p.add_argument("--limit", type=limit, default=20, help="at most this many runs (default: 20)")
    common(p)
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
    common(p)
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
    return top


# What to do about a ledger SQLite cannot read, by SQLite's error name (its primary code).
_REMEDIES = {
    "SQLITE_CORRUPT": "the file is damaged: restore it from a backup, or rescue its rows with the "
    "sqlite3 shell's .recover",
    "SQLITE_NOTADB": "it is not a SQLite database: check --ledger",
    "SQLITE_ERROR": "it lacks tables or columns of a tokentrace ledger (another program's file, or "
    "changed by hand): check --ledger",
    "SQLITE_BUSY": "another program holds it locked: try again when it is done",
    "SQLITE_LOCKED": "another program holds it locked: try again when it is done",
}


def _unreadable(args: argparse.Namespace, exc: sqlite3.DatabaseError) -> str:
    """One line on a ledger SQLite failed to read: which file, SQLite's reason, what to do."""
    file = _demo_ledger(args) if args.fn is cmd_demo else ledger_path(args)
    name = (getattr(exc, "sqlite_errorname", None) or "").split("_")[:2]
    remedy = _REMEDIES.get("_".join(name), "check the file, its folder and the disk")
    return f"tokentrace: cannot read ledger {file}: {exc}; {remedy}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except ConfigurationError as exc:
        print(f"tokentrace: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # piped into head, say
        return 0
    except sqlite3.DatabaseError as exc:
        # A damaged, foreign or locked ledger file. A ProgrammingError is tokentrace misusing
        # SQLite, and in tokentrace's own test suite (strict mode) every error shows its traceback.
        if isinstance(exc, sqlite3.ProgrammingError) or _safety.strict():
            raise
        print(_unreadable(args, exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
