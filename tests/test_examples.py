"""The examples run offline, on the recordings bundled for tokentrace demo."""

from __future__ import annotations

import subprocess
import sys

from tests.support.proc import ROOT


def test_support_agent_example_reports_exact_costs_offline() -> None:
    """The support agent replays recorded responses and prints the exact cost of each model."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "support_agent.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert "task 'resolve_ticket' (support): $0.004796 for 3 LLM calls, 1 retry" in out
    assert "tokens: 3299 in (3207 cached), 220 out" in out
    assert "claude-sonnet-4-20250514         1 call(s)  $0.0021495" in out
    assert "gpt-4o-2024-08-06                1 call(s)  $0.00261" in out
