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


def _run_example(name: str) -> str:
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


def test_rag_pipeline_costs_each_step() -> None:
    """Embedding (2 tokens at $0.10/M) plus a cached gpt-4o answer ($0.00261) make $0.0026102."""
    out = _run_example("rag_pipeline.py")
    assert "answer_question: $0.0026102 for 2 calls, 1222 tokens in" in out
    assert "gpt-4o-2024-08-06             1220 in  100 out  $0.00261" in out


def test_async_batch_gives_the_exact_cost_per_document() -> None:
    """50 concurrent summaries roll up into the batch task: $0.1305, $0.00261 per document."""
    out = _run_example("async_batch.py")
    assert "nightly_batch: 50 calls, $0.1305, $0.00261 per document" in out


def test_two_services_share_one_task_tree() -> None:
    """The drafting service's task continues the front's tree (same root id); each process sums its own."""
    lines = _run_example("two_services.py").splitlines()
    front_id = lines[0].split()[1].rstrip(":")
    assert lines[0] == f"handle_ticket {front_id}: $0.00261 in this process"
    assert lines[1] == f"draft_reply in the drafting service: $0.00261, root {front_id}"
    assert lines[2] == f"the whole tree (root {front_id}): $0.00522"
