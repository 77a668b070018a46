"""What each framework case measured, kept for docs/frameworks.md.

A case calls ``check``: it reads the call spans and the task a framework call left, records
the outcome (``exact``, ``estimated``, ``double``, ``not seen``) under the case's row and
column, and then asserts what the case expects. At the end of the run the results are written
as JSON to ``$TOKENTRACE_FRAMEWORKS_RESULTS`` when it is set (``scripts/frameworks_table.py``
sets it and renders the page).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.frameworks.recordings import Server
    from tokentrace.testing import Capture

MODES = ("sync", "async", "stream", "async stream")


@dataclass(frozen=True)
class Result:
    framework: str
    surface: str
    mode: str
    outcome: str
    requests: int
    calls: int
    note: str = ""


RESULTS: list[Result] = []


def note(
    framework: str, surface: str, mode: str, outcome: str, requests: int, calls: int, text: str = ""
) -> None:
    """Record an outcome measured some other way than ``check`` (a known gap, a budget stop)."""
    assert mode in MODES, mode
    RESULTS.append(Result(framework, surface, mode, outcome, requests, calls, text))


def outcome(spans: list[Any], requests: int) -> str:
    """How the calls were recorded: one span per request, read exactly or estimated."""
    if not spans:
        return "not seen"
    if len(spans) > requests:
        return "double"
    if len(spans) < requests:
        return "partly seen"
    estimated = any((span.attributes or {}).get("tokentrace.usage.estimated") for span in spans)
    return "estimated" if estimated else "exact"


def check(
    cap: Capture,
    task: Any,
    server: Server,
    *,
    framework: str,
    surface: str,
    mode: str,
    requests: int = 1,
    text: str = "",
) -> str:
    """Record the case's outcome, then assert it: one call span per request the server saw, each
    with the served recording's usage (or flagged estimated, where the body has none because the
    request did not ask for it), and the task's totals and cost equal to the provider's usage
    priced by genai-prices. Returns the outcome."""
    spans = cap.call_spans()
    seen = len(server.requests)
    result = outcome(spans, seen)
    note(framework, surface, mode, result, seen, len(spans), text)
    assert seen == requests, server.requests
    assert len(server.served) == seen
    estimated = not all(recording.has_usage for recording in server.served)
    assert result == ("estimated" if estimated else "exact"), [dict(s.attributes or {}) for s in spans]
    totals = task.totals
    assert totals.llm_calls == requests
    if estimated:
        assert totals.estimated_calls == sum(not r.has_usage for r in server.served)
        return result
    for span, recording in zip(sorted(spans, key=lambda s: s.start_time or 0), server.served, strict=True):
        attrs = dict(span.attributes or {})
        assert attrs["gen_ai.usage.input_tokens"] == recording.input_tokens, attrs
        assert attrs.get("gen_ai.usage.output_tokens", 0) == recording.output_tokens, attrs
    assert totals.input_tokens == sum(r.input_tokens for r in server.served)
    assert totals.output_tokens == sum(r.output_tokens for r in server.served)
    assert totals.estimated_calls == 0
    assert totals.unpriced_calls == 0
    assert isinstance(totals.cost_usd, Decimal)
    assert totals.cost_usd == sum((r.cost() for r in server.served), Decimal(0))
    return result


def table(results: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, str]]:
    """The page's cells: per (framework, surface), per mode, the outcomes measured (distinct,
    sorted, joined with " / "), and under "notes" the cases' notes."""
    outcomes: dict[tuple[str, str], dict[str, set[str]]] = {}
    for r in results:
        cells = outcomes.setdefault((r["framework"], r["surface"]), {})
        cells.setdefault(r["mode"], set()).add(r["outcome"])
        if r.get("note"):
            cells.setdefault("notes", set()).add(r["note"])
    return {
        key: {mode: (" / " if mode != "notes" else "; ").join(sorted(v)) for mode, v in cells.items()}
        for key, cells in outcomes.items()
    }


def write() -> None:
    target = os.environ.get("TOKENTRACE_FRAMEWORKS_RESULTS")
    if target:
        Path(target).write_text(json.dumps([asdict(r) for r in RESULTS], indent=1), encoding="utf-8")
