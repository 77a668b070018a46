"""End to end: an instrumented example exports over OTLP to a real Arize Phoenix on 127.0.0.1,
and Phoenix's REST API returns the task and call spans with their cost attributes intact.

Phoenix runs from its own environment (``python -m tests.support.phoenix install``); ``.ci/run``
installs and starts it. Without it the test is skipped locally, and fails under CI.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.support import phoenix
from tests.support.proc import ROOT


def _load_queries() -> Any:
    spec = importlib.util.spec_from_file_location("phoenix_costs", ROOT / "examples" / "phoenix_costs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


queries = _load_queries()


@pytest.fixture(scope="module")
def phoenix_url() -> Iterator[str]:
    url = os.environ.get("TOKENTRACE_PHOENIX_URL")
    if url:
        yield url
        return
    exe = phoenix.executable()
    if exe is None:
        message = "Arize Phoenix is not installed: python -m tests.support.phoenix install"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = phoenix.start(exe)
    try:
        yield server.url
    finally:
        phoenix.stop(server.pid, server.workdir)


def _run_example(name: str, url: str, project: str) -> str:
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": url,
        "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={project}",
        "OTEL_SERVICE_NAME": "support-bot",
        "OTEL_METRICS_EXPORTER": "none",
    }
    env.pop("TOKENTRACE_EXPORTER", None)
    proc = subprocess.run(
        [sys.executable, str(Path(ROOT, "examples", name))],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr  # no export error, no dropped-span warning
    return proc.stdout


def _wait_for(url: str, project: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Phoenix stores spans a fraction of a second after they arrive: poll until all are there."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = queries.spans(url, project)
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{len(found)} of {count} spans reached Phoenix: {[s['name'] for s in found]}")


def test_task_and_call_spans_reach_phoenix_with_their_costs(phoenix_url: str) -> None:
    """support_agent.py: 4 task spans and 3 call spans, the roll-up exact at $0.004796."""
    project = f"tokentrace-{uuid.uuid4().hex[:12]}"
    out = _run_example("support_agent.py", phoenix_url, project)
    assert "task 'resolve_ticket' (support): $0.004796 for 3 LLM calls, 1 retry" in out

    found = _wait_for(phoenix_url, project, 7)
    by_name = {span["name"]: span for span in found}
    assert sorted(by_name) == [
        "chat claude-sonnet-4-20250514",
        "chat gpt-3.5-turbo",
        "chat gpt-4o",
        "classify",
        "draft_reply",
        "resolve_ticket",
        "summarise",
    ]
    root = by_name["resolve_ticket"]
    attrs = root["attributes"]
    assert root["parent_id"] is None
    assert attrs["tokentrace.task.cost.usd"] == 0.004796
    assert type(attrs["tokentrace.task.cost.usd"]) is float
    expected_ints = {
        "tokentrace.task.llm_calls": 3,
        "tokentrace.task.retries": 1,
        "tokentrace.task.input_tokens": 3299,
        "tokentrace.task.cache_read_tokens": 3207,
        "tokentrace.task.output_tokens": 220,
        "tokentrace.task.unpriced_calls": 0,
    }
    assert {name: attrs[name] for name in expected_ints} == expected_ints
    assert all(type(attrs[name]) is int for name in expected_ints)
    assert attrs["tokentrace.task.name"] == "resolve_ticket"
    assert attrs["tokentrace.feature"] == "support"
    assert "gen_ai.usage.input_tokens" not in attrs  # task spans never carry usage
    # Phoenix reads the GenAI agent conventions: the task is listed as an agent run, its calls
    # as LLM spans, the task's cost on it.
    assert root["span_kind"] == "AGENT"
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.agent.name"] == "resolve_ticket"
    assert {by_name[n]["span_kind"] for n in by_name if n.startswith("chat ")} == {"LLM"}

    calls = [span for span in found if span["name"].startswith("chat ")]
    assert {span["context"]["trace_id"] for span in found} == {root["context"]["trace_id"]}
    assert {span["attributes"]["tokentrace.task.root_id"] for span in calls} == {attrs["tokentrace.task.id"]}
    costs = [Decimal(str(span["attributes"]["tokentrace.cost.usd"])) for span in calls]
    assert sum(costs) == Decimal("0.004796")
    gpt4o = by_name["chat gpt-4o"]["attributes"]
    assert gpt4o["gen_ai.usage.input_tokens"] == 1220
    assert gpt4o["gen_ai.usage.cache_read.input_tokens"] == 1152
    assert gpt4o["gen_ai.usage.output_tokens"] == 100
    assert gpt4o["tokentrace.cost.usd"] == 0.00261
    assert gpt4o["tokentrace.cost.status"] == "priced"
    assert gpt4o["tokentrace.retries"] == 1
    assert by_name["classify"]["parent_id"] == root["context"]["span_id"]


def test_the_documented_phoenix_queries_answer_the_two_cost_questions(phoenix_url: str) -> None:
    """examples/phoenix_costs.py over two runs: cost by feature and the most expensive runs, exact."""
    project = f"tokentrace-{uuid.uuid4().hex[:12]}"
    _run_example("support_agent.py", phoenix_url, project)
    _run_example("rag_pipeline.py", phoenix_url, project)
    _wait_for(phoenix_url, project, 7 + 5)
    since = datetime.now(timezone.utc) - timedelta(days=7)
    assert queries.cost_by_feature(phoenix_url, project, since) == {
        "support": Decimal("0.004796"),
        "docs-qa": Decimal("0.0026102"),
    }
    top = queries.top_task_runs(phoenix_url, project, since)
    assert [(cost, name) for cost, name, _ in top] == [
        (Decimal("0.004796"), "resolve_ticket"),
        (Decimal("0.0026102"), "answer_question"),
    ]
    script = str(ROOT / "examples" / "phoenix_costs.py")
    out = subprocess.run(
        [sys.executable, script, "--url", phoenix_url, "--project", project],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "  support              $0.004796\n  docs-qa              $0.0026102\n" in out
    assert f"  $0.004796  resolve_ticket  trace {top[0][2]}\n" in out
