"""Reports from the ledger: the one-pass report the dashboard and the default table use gives
the numbers of the two-pass one (which adds percentiles), and the dashboard's are the command's."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.support import postgres
from tests.support.stores import STORES, copy_to_postgres
from tests.test_cli import EXE, cli, cli_json
from tokentrace._cli.common import dollars
from tokentrace._cli.ui import render, view
from tokentrace.ledger import _report
from tokentrace.ledger import _writer as _ledger
from tokentrace.ledger._read import open_read_only
from tokentrace.ledger._schema import CALL_COLUMNS

GROUPINGS = (
    [],
    ["task"],
    ["root"],
    ["model"],
    ["provider"],
    ["feature"],
    ["user"],
    ["tenant"],
    ["task", "model"],
    ["day", "model"],
    ["hour", "feature"],
)
WHERE = (
    (),
    (("model", "gpt-4o-2024-08-06"),),
    (("feature", "-"),),
    (("user", "user-17"), ("task", "classify")),
    (("tenant", "acme"),),
)
PERCENTILES = ("p50", "p95", "p99")


@pytest.fixture(scope="module")
def sqlite_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's ledger (two providers, an unpriced model, nested tasks, a retry) with calls
    added: estimated, failed with a cost, without usage, outside any task, of another tenant."""
    path = tmp_path_factory.mktemp("report") / "ledger.db"
    cli("demo", "--ledger", str(path))
    conn = _ledger.connect(path)
    try:
        rows = [dict(zip(CALL_COLUMNS, r, strict=True)) for r in conn.execute("SELECT * FROM calls")]
        priced = [r for r in rows if r["cost_status"] == "priced"]
        added = [
            {
                **priced[0],
                "span_id": "e1",
                "cost_status": "estimated",
                "usage_estimated": 1,
                "tenant": "acme",
            },
            {**priced[1], "span_id": "e2", "error_type": "RateLimitError", "retries": 2, "tenant": "acme"},
            {
                **priced[2],
                "span_id": "e3",
                "input_tokens": None,
                "output_tokens": None,
                "cost_usd": None,
                "cost_pico": None,
                "cost_status": "no_usage",
            },
            {
                **priced[3],
                "span_id": "e4",
                "task_id": None,
                "task_name": None,
                "root_id": None,
                "root_name": None,
            },
            {
                **priced[4],
                "span_id": "e5",
                "feature": None,
                "user_id": None,
                "start_ns": priced[4]["start_ns"] + 7200 * 10**9,
            },
        ]
        _ledger.write(conn, [tuple(r[c] for c in CALL_COLUMNS) for r in added], [])
    finally:
        conn.close()
    return path


@pytest.fixture(scope="module", params=STORES)
def ledger(request: pytest.FixtureRequest, sqlite_ledger: Path) -> Iterator[Path | str]:
    """``sqlite_ledger``, and the same rows in a PostgreSQL ledger: every test below runs on both."""
    if request.param == "sqlite":
        yield sqlite_ledger
        return
    with postgres.database(request.getfixturevalue("postgres_server")) as url:
        yield copy_to_postgres(sqlite_ledger, url)


def _without_percentiles(row: dict[str, Any]) -> dict[str, Any]:
    per_run = {k: v for k, v in row["cost_per_run_usd"].items() if k not in PERCENTILES}
    return {**row, "cost_per_run_usd": per_run}


def test_one_pass_equals_two_passes(ledger: Path | str) -> None:
    """Every row and the total of the one-pass report equal the two-pass one's, to the last
    digit, for each grouping and filter; only the percentiles are left out."""
    conn = open_read_only(ledger)
    try:
        (first, last) = conn.execute("SELECT MIN(start_ns), MAX(start_ns) FROM calls").fetchone()
        ranges = [_report.Filters(since_ns=first + 1), _report.Filters(until_ns=last)]
        for filters in [*(_report.Filters(where=where) for where in WHERE), *ranges]:
            where = filters.where
            for by in GROUPINGS:
                two, two_total = _report.report(conn, by, filters)
                one, one_total = _report.report(conn, by, filters, percentiles=False)
                assert [g.as_dict() for g in one] == [_without_percentiles(g.as_dict()) for g in two], (
                    by,
                    where,
                )
                assert one_total.as_dict() == _without_percentiles(two_total.as_dict()), (by, where)
                assert not any(set(g.per_run) & set(PERCENTILES) for g in [*one, one_total])
    finally:
        conn.close()


def test_a_filters_choices_are_its_breakdowns_values(ledger: Path | str) -> None:
    """A filter's choices are the values its dimension's report rows show, under the same filters."""
    conn = open_read_only(ledger)
    try:
        for where in WHERE:
            filters = _report.Filters(where=where)
            for dim in view.FILTERS:
                shown = sorted(
                    str(g.key[dim]) for g in _report.groups(conn, [dim], filters) if g.key[dim] is not None
                )
                assert _report.values(conn, dim, filters) == shown, (dim, where)
    finally:
        conn.close()


def test_the_ledger_has_what_the_comparison_needs(ledger: Path | str) -> None:
    """The ledger mixes providers, unpriced, estimated, failed and usage-less calls, calls outside
    any task and nested tasks, so the comparisons above cover them."""
    total = cli_json("report", "--ledger", str(ledger), "--by", "provider")[-1]
    assert (total["unpriced_calls"], total["estimated_calls"], total["failed_calls"]) == (1, 1, 1)
    assert total["failed_cost_usd"] != "0"
    assert {r["provider"] for r in cli_json("report", "--ledger", str(ledger), "--by", "provider")} >= {
        "openai",
        "anthropic",
    }
    conn = open_read_only(ledger)
    try:
        assert tuple(conn.execute("SELECT COUNT(*) FROM calls WHERE root_id IS NULL").fetchone()) == (1,)
        assert conn.execute("SELECT COUNT(*) FROM tasks WHERE parent_id IS NOT NULL").fetchone()[0] > 0
    finally:
        conn.close()


def _cli_rows(ledger: Path | str, *args: str) -> list[dict[str, Any]]:
    return [_without_percentiles(r) for r in cli_json("report", "--ledger", str(ledger), *args)]


# What a breakdown on the page shows of a report row (it reads no more).
SHOWN = ("calls", "cost_usd", "runs", "cost_per_run_usd", "cached_share", "unpriced_calls", "input_tokens")


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k in SHOWN or k in view.BREAKDOWNS}


@pytest.mark.parametrize("where", [(), (("feature", "support"),), (("model", "gpt-4o-2024-08-06"),)])
def test_the_dashboard_shows_the_commands_numbers(
    ledger: Path | str, where: tuple[tuple[str, str], ...]
) -> None:
    """Each of the page's parts is what ``tokentrace report``, ``outcomes`` and ``whatif`` give
    for the same filters, to the last digit."""
    args = [arg for dim, value in where for arg in ("--where", f"{dim}={value}")]
    conn = open_read_only(ledger)
    try:
        parts = view.Parts(conn, view.Query(where=where, whatif="gpt-4o-mini"))
        command = _cli_rows(ledger, *args)
        assert {**command[-1], "task": None} == {"task": None, **parts.total().as_dict()}
        for dim in view.BREAKDOWNS:
            rows = _cli_rows(ledger, "--by", dim, *args)[:-1]
            assert [_shown(g.as_dict()) for g in parts.breakdown(dim)] == [_shown(r) for r in rows], dim
        chart = _cli_rows(ledger, "--by", "day,model", *args)[:-1]
        assert [(g.key, g.calls, g.cost_usd) for g in parts.series()] == [
            ({"day": r["day"], "model": r["model"]}, r["calls"], Decimal(r["cost_usd"])) for r in chart
        ]
        outcomes = parts.outcomes()
        if "model" in dict(where):
            assert outcomes is None
            assert parts.notes()
        else:
            assert outcomes is not None
            command_outcomes = cli_json("outcomes", "--ledger", str(ledger), "--by", "task", *args)
            assert [g.as_dict() for g in outcomes[0]] + [
                {"task": "TOTAL", **outcomes[1].as_dict()}
            ] == command_outcomes
        whatif = parts.whatif()
        assert whatif is not None
        command_whatif = cli_json("whatif", "--ledger", str(ledger), "--model", "gpt-4o-mini", *args)
        assert [g.as_dict() for g in whatif[0]] + [
            {"model": "TOTAL", **whatif[1].as_dict()}
        ] == command_whatif
        for name in render.SECTIONS:  # and each section renders from them
            assert isinstance(render.section(name, parts), str)
    finally:
        conn.close()


def _table(*args: str) -> str:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [EXE, *args], capture_output=True, text=True, env=env, check=True, timeout=120
    ).stdout


def test_the_default_table_shows_the_json_per_run(ledger: Path | str) -> None:
    """The default table, made in one pass, shows each row's runs and cost per run as the JSON
    (made in two, with the percentiles) gives them."""
    default = _table("report", "--ledger", str(ledger), "--by", "task")
    for row in cli_json("report", "--ledger", str(ledger), "--by", "task")[:-1]:
        line = next(line for line in default.splitlines() if f" {row['task'] or '-'} " in f" {line} ")
        mean = row["cost_per_run_usd"].get("mean")  # none for the calls outside any task
        shown = dollars(Decimal(mean)) if mean and row["unpriced_calls"] < row["calls"] else "-"
        assert shown in line.split(), row["task"]
        assert f"{row['runs']:,}" in line.split()
    wide = _table("report", "--ledger", str(ledger), "--by", "task", "--columns", "cost,p95")
    p95 = cli_json("report", "--ledger", str(ledger))[-1]["cost_per_run_usd"]["p95"]
    assert dollars(Decimal(p95)) in wide


def test_a_schema_4_ledger_gives_the_same_reports(sqlite_ledger: Path, tmp_path: Path) -> None:
    """A ledger file of schema 4 (without the filter indexes of version 5) is read as it is,
    with the same numbers, and left unchanged."""
    ledger = sqlite_ledger
    old = tmp_path / "old.db"
    shutil.copy(ledger, old)
    conn = sqlite3.connect(old)
    try:
        for index in ("calls_feature", "calls_user", "calls_tenant"):
            conn.execute(f"DROP INDEX {index}")
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
        conn.commit()
    finally:
        conn.close()
    before = old.read_bytes()
    for args in (("--by", "task"), ("--by", "user", "--where", "user=user-17"), ("--where", "tenant=acme")):
        assert cli_json("report", "--ledger", str(old), *args) == cli_json(
            "report", "--ledger", str(ledger), *args
        )
    assert old.read_bytes() == before
