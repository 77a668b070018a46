"""``tokentrace tasks`` and ``tokentrace show``: task runs, and one run as a tree."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from decimal import Decimal
from typing import Any

from tokentrace._cli.common import console, count, dollars, emit, filters, open_ledger
from tokentrace._cli.tables import Column, Sheet, pack, pick, show
from tokentrace.exceptions import ConfigurationError
from tokentrace.ledger import _report

KEYS = ("id", "task")
COLUMNS = (
    Column("started", right=False, rank=3),
    Column("seconds"),
    Column("calls", rank=1),
    Column("retries"),
    Column("cost", rank=0),
    Column("outcome", right=False, rank=2),
    Column("feature", right=False),
    Column("user", right=False),
)
_GUIDE = 4  # the cells a tree level indents by ("├── ")


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")


def task_filters(args: argparse.Namespace, command: str) -> tuple[_report.Filters, dict[str, str]]:
    """The filters of a command that reads task runs, and the ``tasks`` columns of their dimensions."""
    from tokentrace.ledger._economics import DIMENSIONS

    chosen = filters(args)
    unknown = [dim for dim, _ in chosen.where if dim not in DIMENSIONS]
    if unknown:
        raise ConfigurationError(
            f"--where {unknown[0]}=...: {command} filters task runs on {', '.join(DIMENSIONS)}"
        )
    return chosen, DIMENSIONS


def cmd_tasks(args: argparse.Namespace) -> int:
    pick(COLUMNS, args, KEYS)
    chosen, columns = task_filters(args, "tasks")
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
    if args.format != "table":
        emit(args, rows)
        return 0
    sheet = Sheet("Task runs (newest first)", KEYS, COLUMNS)
    for r in rows:
        sheet.add(
            [r["task_id"], r["name"]],
            {
                "started": r["started"],
                "seconds": f"{r['duration_s']:.3f}",
                "calls": count(r["llm_calls"]),
                "retries": count(r["retries"]),
                "cost": _task_cost(r),
                "outcome": r["outcome"] or "-",
                "feature": r["feature"] or "-",
                "user": r["user_id"] or "-",
            },
        )
    show(sheet, args)
    return 0


def _task_cost(run: dict[str, Any]) -> str:
    unpriced = run["unpriced_calls"]
    if unpriced and unpriced == run["llm_calls"]:
        return "unpriced"
    return dollars(Decimal(run["cost_usd"])) + (f" +{unpriced} unpriced" if unpriced else "")


def _call_parts(call: dict[str, Any]) -> list[Any]:
    from rich.text import Text

    tokens = "no usage"
    if call["input_tokens"] is not None:
        cached = f" ({call['cache_read_tokens']:,} cached)" if call["cache_read_tokens"] else ""
        tokens = f"{call['input_tokens']:,} in{cached} / {call['output_tokens']:,} out"
    cost = dollars(Decimal(call["cost_usd"])) if call["cost_usd"] is not None else call["cost_status"].upper()
    parts = [f"{call['operation']} {call['model']}", cost, tokens]
    if call["retries"]:
        parts.append(f"retries {call['retries']}")
    if call["error_type"]:
        parts.append(f"error {call['error_type']}")
    if call["usage_estimated"]:
        parts.append("(estimated tokens)")
    return [Text(part) for part in parts]


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
    from rich.text import Text
    from rich.tree import Tree

    out = console()

    def label(parts: list[Any], depth: int) -> Any:
        """The parts on as many lines as the width left at this depth takes, none cut."""
        lines = pack(parts, max(out.width - _GUIDE * depth, 1))
        return Text("\n").join(Text("  ").join(line) for line in lines)

    def task_parts(node: _report.Node) -> list[Any]:
        outcome = node.task["outcome"] or "-"
        return [
            Text(node.task["name"], style="bold"),
            Text(dollars(node.branch_cost_usd)),
            Text(f"{node.branch_calls} call(s)"),
            Text(f"{node.task['task_id']} {outcome}", style="dim"),
        ]

    def build(tree: Any, node: _report.Node, depth: int) -> None:
        items: list[tuple[int, Any]] = [(c["start_ns"], c) for c in node.calls]
        items += [(child.task["start_ns"], child) for child in node.children]
        for _, item in sorted(items, key=lambda pair: pair[0]):
            if isinstance(item, _report.Node):
                build(tree.add(label(task_parts(item), depth + 1)), item, depth + 1)
            else:
                tree.add(label(_call_parts(item), depth + 1))

    tree = Tree(label(task_parts(root), 0))
    build(tree, root, 0)
    out.print(tree)
    return 0
