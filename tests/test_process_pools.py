"""Process pools carry the submitting task: workers started by fork or spawn record their calls
into the submitter's task tree (ledger rows share its root)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.proc import run_python

PROGRAM = """
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
import tokentrace
from tests.support import pool_work

tokentrace.instrument()
for method in ("fork", "spawn"):
    ctx = multiprocessing.get_context(method)
    with tokentrace.task(f"batch-{method}", feature="etl") as task:
        with ProcessPoolExecutor(2, mp_context=ctx) as pool:
            assert sorted(i for i, _ in pool.map(pool_work.one_call, range(4))) == [0, 1, 2, 3]
        pool = ctx.Pool(2)
        assert pool.map(pool_work.bare_call, range(2)) == [0, 1]
        assert pool.apply_async(pool_work.bare_call, (2,)).get(timeout=60) == 2
        pool.close()
        pool.join()
    print(method, task.id, task.totals.llm_calls)
"""


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("pools") / "ledger.db"
    out = run_python(PROGRAM, env={"TOKENTRACE_LEDGER": str(path)}, timeout=180)
    ids = {}
    for line in out.splitlines():
        method, task_id, calls = line.split()
        assert calls == "0"  # in-process totals: the workers' calls are in other processes
        ids[method] = task_id
    return path, ids


def _rows(path: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_tasks_in_pool_workers_join_the_submitters_tree(
    method: str, ledger: tuple[Path, dict[str, str]]
) -> None:
    """Each task a worker opens is a child of the submitting task: its parent and root, its feature."""
    path, ids = ledger
    rows = _rows(
        path,
        "SELECT parent_id, root_id, root_name, feature, llm_calls, cost_usd FROM tasks WHERE name = 'item' "
        "AND root_id = ?",
        ids[method],
    )
    assert rows == [(ids[method], ids[method], f"batch-{method}", "etl", 1, "0.0001452")] * 4


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_calls_outside_tasks_in_workers_are_attributed_to_the_submitter(
    method: str, ledger: tuple[Path, dict[str, str]]
) -> None:
    """A worker's call outside any task carries the submitting task's id and root (pool.map and
    apply_async)."""
    path, ids = ledger
    rows = _rows(path, "SELECT task_name, root_id FROM calls WHERE task_id = ?", ids[method])
    assert rows == [(f"batch-{method}", ids[method])] * 3


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_the_whole_tree_sums_by_root_in_the_ledger(method: str, ledger: tuple[Path, dict[str, str]]) -> None:
    """Every call the pool made, in tasks or not, sums under the submitting task's root: 7 calls."""
    path, ids = ledger
    assert _rows(path, "SELECT COUNT(*), SUM(cost_pico) FROM calls WHERE root_id = ?", ids[method]) == [
        (7, 7 * 145_200_000)
    ]
