"""Unit economics from the ledger: ``tokentrace outcomes`` on runs a real program recorded."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.proc import run_python
from tests.test_cli import cli, cli_json
from tokentrace.ledger import _economics
from tokentrace.ledger import _writer as _ledger
from tokentrace.ledger._report import Filters

# Four triage runs of a cached gpt-4o call ($0.00261 each): the first asks twice (a duplicate),
# each handles 2 emails, the last one fails.
PROGRAM = """
import tokentrace
from tokentrace._cli import demo as _demo
tokentrace.instrument("openai")
with _demo.replay_server() as url:
    oa, _ = _demo.offline_clients(url)
    ask = dict(model="gpt-4o", messages=[{"role": "user", "content": "Classify: refund"}])
    for i in range(4):
        with tokentrace.task("triage", feature="support") as t:
            with tokentrace.task("classify"):
                oa.chat.completions.create(**ask)
                if i == 0:
                    oa.chat.completions.create(**ask)
            t.add_units(2, unit="email")
            if i == 3:
                t.set_outcome("failure")
"""


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("economics") / "triage.db"
    run_python(PROGRAM, env={"TOKENTRACE_LEDGER": str(path)})
    return str(path)


def _by(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {r[key]: r for r in rows}


def test_outcomes_by_task_give_cost_per_success_and_per_unit(ledger: str) -> None:
    """5 calls x $0.00261 over 3 successes and 8 emails: $0.00435 a success, $0.00163125 an email."""
    rows = _by(cli_json("outcomes", "--ledger", ledger, "--by", "task"), "task")
    triage = rows["triage"]
    assert (triage["runs"], triage["outcomes"], triage["success_rate"]) == (
        4,
        {"failure": 1, "success": 3},
        0.75,
    )
    assert (triage["cost_usd"], triage["cost_per_run_usd"]) == ("0.01305", "0.0032625")
    assert triage["cost_per_success_usd"] == "0.00435"
    assert (triage["units"], triage["cost_per_unit_usd"]) == ({"email": 8}, {"email": "0.00163125"})
    assert (triage["duplicate_calls"], triage["duplicate_cost_usd"]) == (1, "0.00261")
    assert triage["retry_waste_cost_usd"] == "0"
    # gpt-4o: 68 fresh input tokens at $2.50, 1,152 cached at $1.25, 100 output at $10 per million.
    assert triage["cost_share"] == {
        "input": 0.0651,
        "cache_read": 0.5517,
        "cache_write": 0.0,
        "output": 0.3831,
        "other": 0.0,
    }
    classify = rows["classify"]
    assert (classify["runs"], classify["cost_usd"], classify["duplicate_calls"]) == (4, "0.01305", 1)
    assert rows["TOTAL"]["cost_usd"] == "0.01305"  # root runs only: nested tasks are not counted twice
    assert rows["TOTAL"]["runs"] == 4


def test_outcomes_by_feature_count_root_runs_once(ledger: str) -> None:
    """Grouped by feature, each root run counts once with its nested tasks inside it."""
    rows = _by(cli_json("outcomes", "--ledger", ledger, "--by", "feature"), "feature")
    assert (rows["support"]["runs"], rows["support"]["cost_usd"]) == (4, "0.01305")
    assert rows["support"]["cost_per_unit_usd"] == {"email": "0.00163125"}


def test_outcomes_table_and_filters(ledger: str) -> None:
    """The table shows cost per success and per unit; --where narrows the runs."""
    out = cli("outcomes", "--ledger", ledger).stdout
    assert "$0.004350" in out
    assert "$0.001631/email" in out
    filtered = cli_json("outcomes", "--ledger", ledger, "--where", "feature=nothing")
    assert filtered == []
    bad = cli("outcomes", "--ledger", ledger, "--by", "model", ok=False)
    assert bad.returncode == 2
    assert "cannot group outcomes by model" in bad.stderr


def test_a_version_1_ledger_is_migrated_in_place(tmp_path: Path) -> None:
    """A ledger written before waste and units existed gains their columns and keeps its rows."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(_ledger.SCHEMA_V1)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute(
            "INSERT INTO tasks (task_id, root_id, name, trace_id, span_id, start_ns, end_ns, day, outcome, "
            "cost_usd) VALUES ('t1', 't1', 'old', 'x', 'y', 1, 2, '1970-01-01', 'success', '0.5')"
        )
    conn = _ledger.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
        str(_ledger.SCHEMA_VERSION),
    )
    columns = [row[1] for row in conn.execute("PRAGMA table_info(tasks)")]
    assert tuple(columns) == _ledger.TASK_COLUMNS
    call_columns = [row[1] for row in conn.execute("PRAGMA table_info(calls)")]
    assert tuple(call_columns) == _ledger.CALL_COLUMNS
    assert {"duplicate", "web_search_requests", "file_search_requests", "modalities", "base_url"} <= set(
        call_columns
    )
    (group,), total = _economics.outcomes(conn, ["task"], Filters())
    assert (group.runs, group.cost_usd, group.cost_per_success, group.units) == (1, 0.5, 0.5, {})
    assert total.cost_usd == group.cost_usd
