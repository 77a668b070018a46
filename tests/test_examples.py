"""The examples run offline, on the recordings bundled for tokentrace demo."""

from __future__ import annotations

import os
import re
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


def _text_blocks(page: str) -> list[str]:
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    return re.findall(r"^```text\n(.*?)^```", text, re.S | re.M)


def test_the_fleet_walkthrough_gives_what_its_page_shows(postgres_url: str) -> None:
    """docs/fleet.md, followed as written on a real PostgreSQL server: replica A spends tenant
    acme's daily 6 calls, replica B (another process) is refused before its first request, and
    the report over their shared ledger is the page's, line for line."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TOKENTRACE_"))},
        "TOKENTRACE_LEDGER": postgres_url,
        "COLUMNS": "80",
    }
    replicas, report = _text_blocks("fleet.md")
    out = ""
    for name in ("A", "B"):
        out += subprocess.run(
            [
                sys.executable,
                str(ROOT / "examples" / "fleet_replica.py"),
                "--name",
                name,
                "--tenant",
                "acme",
                "--tickets",
                "2",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            env=env,
        ).stdout
    assert out == replicas
    table = subprocess.run(
        [sys.executable, "-m", "tokentrace", "report", "--by", "tenant"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
    ).stdout
    assert table.startswith(report)
