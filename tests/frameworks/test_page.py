"""docs/frameworks.md says what this run measured (the conftest runs this test last)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from tests.frameworks import matrix

PAGE = Path(__file__).resolve().parents[2] / "docs" / "frameworks.md"


def _page_rows() -> dict[tuple[str, str], dict[str, str]]:
    rows = {}
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == len(matrix.MODES) + 3 and cells[0] not in ("framework", "---"):
            rows[(cells[0], cells[1])] = dict(zip((*matrix.MODES, "notes"), cells[2:], strict=True))
    return rows


def test_the_frameworks_page_matches_the_run() -> None:
    """Each row of docs/frameworks.md this run measured has the outcomes measured (rerun
    scripts/frameworks_table.py when a case changes)."""
    measured = matrix.table([asdict(r) for r in matrix.RESULTS])
    # The matrix ran in this process before this test (the conftest orders it last): run
    # tests/frameworks whole, in one process (-n0).
    assert measured, "run tests/frameworks whole, in one process (pytest -n0 tests/frameworks)"
    page = _page_rows()
    for key, cells in measured.items():
        assert key in page, f"{key} is missing from docs/frameworks.md"
        for mode, cell in cells.items():
            assert page[key][mode] == cell, (key, mode)
