"""The ``tokentrace`` command's tables in a real terminal (a pseudo-terminal of 80, 100 and 160
columns) and in a pipe, on a ledger with long task, model, user and tenant names, large and tiny
costs, and calls with no price: no name or amount is cut, and no line is wider than the window."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import re
import select
import struct
import subprocess
import termios
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len

from tests.support.proc import ROOT
from tests.test_cli import EXE, cli, cli_json
from tokentrace.ledger import _rows
from tokentrace.ledger import _writer as _ledger
from tokentrace.ledger._schema import CALL_COLUMNS, TASK_COLUMNS

RECONCILE = "reconcile_quarterly_invoices_against_purchase_orders"
EXTRACT = "extract_line_items_from_scanned_invoice_pdf"
DRAFT = "[draft] reply to [bold]customer[/bold]"  # rich markup, to be shown as it is
DIGEST = "要約_サポートチケット_月次"  # two cells a character
SONNET = "claude-sonnet-4-20250514"
HAIKU = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
MINI = "gpt-4o-mini-2024-07-18"
TUNED = "ft:gpt-4o-mini-2024-07-18:acme-corp:support-triage:9a8b7c6d"
ALICE = "user-8f14e45f-ceea-467f-a0e6-1f4e5e2b3c9d"
BOB = "ops@example-enterprise-customer.com"
GLOBEX = "globex-international-holdings-emea"
INITECH = "initech-north-america"
FEATURE = "invoice-reconciliation-backoffice"

# Task ids, as tokentrace writes them: 16 hex digits.
T1A = "9c8e7d6f5a4b3c21"
T1 = "4f1c2a9e7b3d5061"
T2 = "0d1e2f3a4b5c6d7e"
T3 = "7a6b5c4d3e2f1a0b"
T4 = "e1f2a3b4c5d6e7f8"
# (span, task, root, model, provider, cost or None: unpriced, input, cached, output)
CALLS = [
    ("c1", T1A, T1, SONNET, "anthropic", "1234.567891234567", 4_100_000, 2_000_000, 61_000),
    ("c2", T1A, T1, HAIKU, "aws.bedrock", None, 1_200, 0, 300),
    ("c3", T1, T1, TUNED, "openai", "0.000123456789", 41, 0, 12),
    ("c4", T2, T2, MINI, "openai", "98765.432109876543", 650_000_000, 0, 1_000_000),
    ("c5", T3, T3, SONNET, "anthropic", "0.000000412", 1, 0, 1),
    ("c6", T4, T4, HAIKU, "aws.bedrock", None, 800, 0, 90),
]
# (task, parent, root, name, user, tenant, units)
TASKS = [
    (T1, None, T1, RECONCILE, ALICE, GLOBEX, {"invoice": 3}),
    (T1A, T1, T1, EXTRACT, ALICE, GLOBEX, {}),
    (T2, None, T2, DRAFT, BOB, INITECH, {"reply": 1}),
    (T3, None, T3, DIGEST, BOB, GLOBEX, {}),
    (T4, None, T4, RECONCILE, ALICE, GLOBEX, {}),
]
NAMES = [RECONCILE, EXTRACT, DRAFT, DIGEST, SONNET, HAIKU, MINI, TUNED, ALICE, BOB, GLOBEX, INITECH, FEATURE]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)")


def _write_ledger(path: Path) -> None:
    conn = _ledger.connect(path)
    start = 1_790_000_000_000_000_000
    names = {task: name for task, _, _, name, *_ in TASKS}
    attribution = {task: (user, tenant) for task, _, _, _, user, tenant, _ in TASKS}
    for i, (span, task, root, model, provider, cost, tokens, cached, out) in enumerate(CALLS):
        user, tenant = attribution[task]
        row = dict.fromkeys(CALL_COLUMNS)
        row.update(
            span_id=span,
            trace_id=root,
            task_id=task,
            task_name=names[task],
            root_id=root,
            root_name=names[root],
            start_ns=start + i,
            end_ns=start + i + 1,
            day="2026-09-21",
            operation="chat",
            provider=provider,
            request_model=model,
            response_model=model,
            model=model,
            input_tokens=tokens,
            output_tokens=out,
            cache_read_tokens=cached,
            cache_write_tokens=0,
            reasoning_tokens=0,
            cost_usd=cost,
            cost_pico=_rows.pico(Decimal(cost)) if cost else None,
            cost_status="priced" if cost else "unpriced",
            usage_estimated=0,
            retries=0,
            feature=FEATURE,
            user_id=user,
            tenant=tenant,
            duplicate=0,
            web_search_requests=0,
            file_search_requests=0,
        )
        conn.execute(f"INSERT INTO calls VALUES ({', '.join('?' * len(row))})", list(row.values()))
    for i, (task, parent, root, name, user, tenant, units) in enumerate(TASKS):
        mine = [c for c in CALLS if c[1] == task or (parent is None and c[2] == task)]
        cost = sum((Decimal(c[5]) for c in mine if c[5]), Decimal(0))
        row = dict.fromkeys(TASK_COLUMNS, 0)
        row.update(
            task_id=task,
            parent_id=parent,
            root_id=root,
            root_name=names[root],
            name=name,
            trace_id=root,
            span_id=task,
            start_ns=start + i,
            end_ns=start + i + 2_500_000_000,
            day="2026-09-21",
            outcome="success",
            error_type=None,
            cost_usd=str(cost),
            llm_calls=len(mine),
            unpriced_calls=sum(1 for c in mine if c[5] is None),
            feature=FEATURE,
            user_id=user,
            tenant=tenant,
            service=None,
            environment=None,
            attributes="{}",
            units=json.dumps(units),
            duplicate_cost_usd="0",
            retry_waste_cost_usd="0",
            cost_input_usd=str(cost),
            cost_cache_read_usd="0",
            cost_cache_write_usd="0",
            cost_output_usd="0",
            cost_other_usd="0",
            budget_exceeded=None,
        )
        conn.execute(f"INSERT INTO tasks VALUES ({', '.join('?' * len(row))})", list(row.values()))
    conn.commit()
    conn.close()


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("tables") / "long-names.db"
    _write_ledger(path)
    return str(path)


def terminal(*args: str, columns: int) -> str:
    """What ``tokentrace ARGS`` shows in a terminal ``columns`` wide, escape codes removed."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "TOKENTRACE_")) and k not in {"COLUMNS", "LINES", "NO_COLOR"}
    }
    env["TERM"] = "xterm-256color"
    parent, child = os.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen(
        [EXE, *args], stdin=child, stdout=child, stderr=subprocess.PIPE, env=env, cwd=ROOT
    )
    os.close(child)
    chunks = []
    try:
        while select.select([parent], [], [], 60)[0]:
            try:
                chunk = os.read(parent, 65536)
            except OSError:  # EIO: the program ended and closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(parent)
        assert proc.stderr is not None
        stderr = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.wait(timeout=60) == 0, stderr
    text = b"".join(chunks).decode()
    assert "\x1b[" in text  # a terminal: rich styles the output
    return ANSI.sub("", text).replace("\r\n", "\n")


def assert_fits(text: str, columns: int) -> None:
    """No line wider than the window, and nothing cut short with an ellipsis."""
    wide = [line for line in text.splitlines() if cell_len(line) > columns]
    assert not wide, f"lines wider than {columns}:\n" + "\n".join(wide)
    assert "…" not in text


TOTAL = "$100,000.000125"  # 100,000.000124979899, rounded to a millionth of a dollar
# Per --by: the names a report groups under, and their costs as a table shows them.
REPORTS = {
    "task": ([RECONCILE, EXTRACT, DRAFT, DIGEST], ["$0.000123", "$1,234.567891", "$98,765.432110"]),
    "root": ([RECONCILE, DRAFT, DIGEST], ["$1,234.568015", "$98,765.432110", "$0.000000"]),
    "model": ([SONNET, HAIKU, MINI, TUNED], ["$1,234.567892", "unpriced", "$98,765.432110", "$0.000123"]),
    "task,model": (
        [RECONCILE, EXTRACT, DRAFT, DIGEST, SONNET, HAIKU, MINI, TUNED],
        ["$1,234.567891", "unpriced", "$0.000123", "$98,765.432110", "$0.000000"],
    ),
    "user": ([ALICE, BOB], ["$1,234.568015", "$98,765.432110"]),
    "tenant": ([GLOBEX, INITECH], ["$1,234.568015", "$98,765.432110"]),
    "feature": ([FEATURE], [TOTAL]),
    "user,tenant,model": (
        [ALICE, BOB, GLOBEX, INITECH, SONNET, HAIKU, MINI, TUNED],
        ["$1,234.567891", "unpriced", "$0.000123", "$98,765.432110", "$0.000000"],
    ),
}
# Per outcomes --by: the names of the groups of task runs, and their costs.
OUTCOMES = {
    "task": ([RECONCILE, EXTRACT, DRAFT, DIGEST], ["$1,234.568015*", "$1,234.567891*", "$98,765.432110"]),
    "root": ([RECONCILE, DRAFT, DIGEST], ["$1,234.568015*", "$98,765.432110", "$0.000000"]),
    "user": ([ALICE, BOB], ["$1,234.568015*", "$98,765.432110"]),
    "tenant": ([GLOBEX, INITECH], ["$1,234.568015*", "$98,765.432110"]),
    "feature": ([FEATURE], [TOTAL + "*"]),
}


WIDTHS = [80, 100, 160]


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("by", list(REPORTS))
def test_report_shows_every_key_and_amount_whole(ledger: str, by: str, columns: int) -> None:
    """report --by each dimension, in a terminal of 80, 100 and 160 columns, fits the window and
    shows every group's key and cost whole, and the total."""
    text = terminal("report", "--ledger", ledger, "--by", by, columns=columns)
    assert_fits(text, columns)
    names, amounts = REPORTS[by]
    for name in [*names, *amounts, TOTAL, "2 call(s) could not be priced"]:
        assert name in text


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("by", list(OUTCOMES))
def test_outcomes_show_every_key_and_amount_whole(ledger: str, by: str, columns: int) -> None:
    """outcomes --by each dimension fits the window, with every key and cost whole."""
    text = terminal("outcomes", "--ledger", ledger, "--by", by, columns=columns)
    assert_fits(text, columns)
    names, amounts = OUTCOMES[by]
    for name in [*names, *amounts, TOTAL + "*"]:
        assert name in text


@pytest.mark.parametrize("columns", WIDTHS)
def test_tasks_show_and_whatif_fit_the_window(ledger: str, columns: int) -> None:
    """tasks, show and whatif, in a terminal of 80, 100 and 160 columns, fit it and cut nothing."""
    runs = terminal("tasks", "--ledger", ledger, columns=columns)
    assert_fits(runs, columns)
    for name in (RECONCILE, DRAFT, DIGEST, T1, T2, T3, T4, "$1,234.568015 +1 unpriced", "$98,765.432110"):
        assert name in runs
    tree = terminal("show", "--ledger", ledger, T1, columns=columns)
    assert_fits(tree, columns)
    for name in (RECONCILE, EXTRACT, T1, T1A, SONNET, HAIKU, TUNED, "$1,234.568015", "$1,234.567891"):
        assert name in tree
    assert "UNPRICED" in tree
    assert "4,100,000 in (2,000,000 cached) / 61,000 out" in tree
    whatif = terminal("whatif", "--ledger", ledger, "--model", "gpt-4o-mini", columns=columns)
    assert_fits(whatif, columns)
    for name in (SONNET, HAIKU, MINI, TUNED, "$98,765.432110", "$1,234.567892", TOTAL, "$98.601614"):
        assert name in whatif


@pytest.mark.parametrize("columns", WIDTHS)
def test_wide_and_chosen_columns_stack_rows_that_do_not_fit(ledger: str, columns: int) -> None:
    """--wide gives every column, and --columns those named in their order; rows that do not fit
    the window become blocks, with nothing cut."""
    wide = terminal("report", "--ledger", ledger, "--by", "task,model", "--wide", columns=columns)
    assert_fits(wide, columns)
    names, amounts = REPORTS["task,model"]
    for name in [*names, *amounts, TOTAL, "p95", "out-tokens", "failed"]:
        assert name in wide
    assert "More columns" not in wide
    chosen = terminal("report", "--ledger", ledger, "--by", "model", "--columns", "p95,cost", columns=columns)
    assert_fits(chosen, columns)
    assert any(re.search(r"\bp95\b.*\bcost\b", line) for line in chosen.splitlines()[1:])
    assert "calls" not in chosen


def test_narrow_window_gives_up_the_least_telling_columns_first(ledger: str) -> None:
    """The default report shows cost, calls, runs, per-run and cached share where they fit; a
    narrower window gives up cached share, then runs, then per-run, then calls, never the cost;
    when even the cost does not fit beside the keys, each row becomes a block with all five."""
    headers = {}
    for columns in WIDTHS:
        text = terminal("report", "--ledger", ledger, "--by", "model", columns=columns)
        headers[columns] = next(line for line in text.splitlines() if line.startswith("model ")).split()
    assert headers == {
        80: ["model", "cost"],
        100: ["model", "calls", "cost", "per-run"],
        160: ["model", "calls", "cost", "runs", "per-run", "cached"],
    }
    narrow = terminal("report", "--ledger", ledger, "--by", "task,model", columns=80)
    assert f"task {EXTRACT}  model {SONNET}" in narrow
    assert f"calls 6  cost {TOTAL}  runs 4  per-run $25,000.000031  cached 0%" in narrow
    assert "More columns: p50, p95, p99, in-tokens, out-tokens, retries, failed, unpriced" in narrow


def _run(*args: str, **env: str) -> str:
    """The command's output into a pipe, with ``env`` set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TOKENTRACE_", "COLUMNS"))}
    return subprocess.run(
        [EXE, *args], capture_output=True, text=True, env={**clean, **env}, cwd=ROOT, check=True
    ).stdout


def test_a_pipe_gets_80_columns_or_columns_and_wide_keeps_one_line_a_row(ledger: str) -> None:
    """Piped, a table fits 80 columns, or COLUMNS when it is set, with no escape codes; --wide
    piped keeps each row on one line however long, for grep and less -S."""
    piped = _run("report", "--ledger", ledger, "--by", "model")
    assert_fits(piped, 80)
    assert "\x1b[" not in piped
    assert any(line.split() == ["model", "cost"] for line in piped.splitlines())
    roomy = _run("report", "--ledger", ledger, "--by", "model", COLUMNS="200")
    assert_fits(roomy, 200)
    assert any(
        line.split() == ["model", "calls", "cost", "runs", "per-run", "cached"] for line in roomy.splitlines()
    )
    wide = _run("report", "--ledger", ledger, "--by", "task,model", "--wide")
    row = next(line for line in wide.splitlines() if line.startswith(DRAFT))
    assert row.split()[-13:] == [
        "1",
        "$98,765.432110",
        "1",
        *["$98,765.432110"] * 4,
        "650,000,000",
        "0%",
        "1,000,000",
        "0",
        "-",
        "0",
    ]
    assert len(row) > 160


def test_unknown_column_is_one_line_naming_the_valid_ones(ledger: str) -> None:
    """--columns with a name the table lacks gets one line listing its columns, and exit code 2."""
    bad = cli("report", "--ledger", ledger, "--columns", "cost,colour", ok=False)
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == (
        "tokentrace: --columns 'cost,colour': unknown column 'colour'; choose from calls, cost, runs, "
        "per-run, p50, p95, p99, in-tokens, cached, out-tokens, retries, failed, unpriced\n"
    )
    for command in (("outcomes",), ("tasks",), ("whatif", "--model", "gpt-4o-mini")):
        refused = cli(*command, "--ledger", ledger, "--columns", "colour", ok=False)
        assert refused.returncode == 2
        assert refused.stderr.startswith(
            "tokentrace: --columns 'colour': unknown column 'colour'; choose from "
        )
        assert len(refused.stderr.splitlines()) == 1
    blank = cli("report", "--ledger", ledger, "--columns", ",", ok=False)
    assert (blank.returncode, blank.stderr.count("\n")) == (2, 1)


def test_machine_formats_keep_every_field(ledger: str) -> None:
    """--format json and csv give every field of every group, whatever --columns and the window."""
    rows = cli_json("report", "--ledger", ledger, "--by", "model", "--columns", "cost")
    assert list(rows[0]) == [
        "model",
        "calls",
        "cost_usd",
        "runs",
        "cost_per_run_usd",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "cached_share",
        "retries",
        "failed_calls",
        "failed_cost_usd",
        "unpriced_calls",
        "estimated_calls",
    ]
    assert {r["model"]: r["cost_usd"] for r in rows} == {
        MINI: "98765.432109876543",
        SONNET: "1234.567891646567",
        TUNED: "0.000123456789",
        HAIKU: "0",
        "TOTAL": "100000.000124979899",
    }
    table = csv.DictReader(
        io.StringIO(cli("report", "--ledger", ledger, "--by", "model", "--format", "csv").stdout)
    )
    assert list(table.fieldnames or []) == list(rows[0])
    assert [r["model"] for r in table] == [r["model"] for r in rows]
    outcomes: list[dict[str, Any]] = cli_json("outcomes", "--ledger", ledger, "--columns", "cost")
    assert {r["task"] for r in outcomes} == {RECONCILE, EXTRACT, DRAFT, DIGEST, "TOTAL"}
    assert "cost_share" in outcomes[0]
    runs = cli_json("tasks", "--ledger", ledger, "--columns", "cost")
    assert list(runs[0]) == [
        "task_id",
        "name",
        "started",
        "duration_s",
        "llm_calls",
        "retries",
        "cost_usd",
        "unpriced_calls",
        "outcome",
        "feature",
        "user_id",
    ]
    whatif = cli_json("whatif", "--ledger", ledger, "--model", "gpt-4o-mini", "--columns", "change")
    assert {"current_usd", "whatif_usd", "difference_usd", "not_repriced"} <= set(whatif[0])


def test_demo_report_fits_80_columns_and_names_the_next_commands(tmp_path: Path) -> None:
    """tokentrace demo in an 80-column terminal: its tables fit with every name and amount whole,
    and it ends with the commands to try next."""
    text = terminal("demo", "--ledger", str(tmp_path / "demo.db"), columns=80)
    assert_fits(text, 80)
    for name in ("claude-sonnet-4-20250514", "davinci:2023-07-21-v2", "resolve_ticket", "$0.014388"):
        assert name in text
    for command in ("tokentrace tasks", "tokentrace show TASK_ID", "tokentrace outcomes --by feature"):
        assert command in text
