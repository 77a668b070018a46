"""The re-pricing identity: ``whatif --model M --where model=M`` gives back what was recorded."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan

from tokentrace.ledger import LedgerExporter
from tokentrace.ledger._report import Filters
from tokentrace.ledger._whatif import whatif


def assert_reprices_to_itself(spans: Sequence[ReadableSpan], folder: Path) -> int:
    """Write ``spans`` to a ledger in ``folder`` and re-price each model's calls under that same
    model: every priced call is re-priced, to exactly its recorded cost. Returns how many were."""
    path = folder / "reprice.db"
    exporter = LedgerExporter(path)
    exporter.export(spans)
    exporter.shutdown()
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT model, count(*), count(usage_cost), group_concat(usage_cost, ' ') FROM "
            "(SELECT model, CASE WHEN input_tokens IS NOT NULL THEN cost_usd END AS usage_cost FROM calls) "
            "GROUP BY model"
        ).fetchall()
        repriced = 0
        for model, calls, priced, costs in rows:
            recorded = sum((Decimal(c) for c in (costs or "").split()), Decimal(0))
            _, total = whatif(conn, ["model"], Filters(where=(("model", model),)), model=model, provider=None)
            assert (total.whatif_usd, total.current_usd) == (recorded, recorded), model
            assert total.not_repriced == calls - priced, model
            repriced += priced
        return repriced
    finally:
        conn.close()
