"""End to end: the examples export over OTLP to a real Jaeger on 127.0.0.1, and Jaeger's HTTP
query API returns their task and call spans with the totals, costs and parents that tokentrace
recorded in process.

Jaeger is built from its Go module (``python -m tests.support.jaeger install``); ``.ci/run``
builds and starts it. Without it the test is skipped locally, and fails under CI.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.support import jaeger
from tests.support.proc import ROOT, spawn_python


@dataclass(frozen=True)
class Server:
    otlp_url: str
    query_url: str


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    otlp_url = os.environ.get("TOKENTRACE_JAEGER_OTLP_URL")
    query_url = os.environ.get("TOKENTRACE_JAEGER_QUERY_URL")
    if otlp_url and query_url:
        yield Server(otlp_url, query_url)
        return
    exe = jaeger.executable()
    if exe is None:
        message = "Jaeger is not built: python -m tests.support.jaeger install (needs Go)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    started = jaeger.start(exe)
    try:
        yield Server(started.otlp_url, started.query_url)
    finally:
        jaeger.stop(started.pid, started.workdir)


# Runs an example unchanged, exporting over OTLP as configured by the environment, and writes
# every span tokentrace recorded in process (a second processor on the same provider) as JSON.
DRIVER = """
import json, runpy, sys
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import tokentrace

tokentrace.configure()
recorded = InMemorySpanExporter()
trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(recorded))
sys.argv = [example]
runpy.run_path(example, run_name="__main__")
spans = [
    {
        "name": s.name,
        "trace_id": format(s.context.trace_id, "032x"),
        "span_id": format(s.context.span_id, "016x"),
        "parent_id": format(s.parent.span_id, "016x") if s.parent else None,
        "kind": s.kind.name.lower(),
        "attributes": dict(s.attributes),
    }
    for s in recorded.get_finished_spans()
]
with open(out, "w") as f:
    json.dump(spans, f)
"""


@dataclass(frozen=True)
class Run:
    stdout: str
    spans: list[dict[str, Any]]
    """What tokentrace recorded in process: name, ids, kind and attributes of each span."""

    def span(self, name: str) -> dict[str, Any]:
        (found,) = [s for s in self.spans if s["name"] == name]
        return found


def _run_example(name: str, server: Server, service: str, out: Path) -> Run:
    """Run ``examples/<name>`` with OTLP pointed at Jaeger (traces only)."""
    setup = f"example = {str(ROOT / 'examples' / name)!r}\nout = {str(out)!r}\n"
    proc = spawn_python(
        setup + DRIVER,
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": server.otlp_url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": service,
            "OTEL_METRICS_EXPORTER": "none",  # Jaeger takes no OTLP metrics
        },
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr  # no export error, no dropped-span warning
    return Run(proc.stdout, json.loads(out.read_text()))


def _get(url: str, path: str, **params: str) -> Any:
    with urllib.request.urlopen(f"{url}{path}?{urllib.parse.urlencode(params)}", timeout=10) as response:
        return json.load(response)


def _traces(url: str, service: str, tags: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """``GET /api/traces``: the traces of ``service`` (those with a span matching ``tags``)."""
    params = {"service": service, "limit": "100"}
    if tags is not None:
        params["tags"] = json.dumps(tags)
    traces: list[dict[str, Any]] = _get(url, "/api/traces", **params)["data"] or []
    return traces


def _spans(traces: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every span of ``traces`` by span id, with its service name."""
    spans = {}
    for t in traces:
        for span in t["spans"]:
            spans[span["spanID"]] = {**span, "service": t["processes"][span["processID"]]["serviceName"]}
    return spans


def _wait_for(url: str, service: str, runs: list[Run], timeout: float = 30.0) -> dict[str, dict[str, Any]]:
    """Jaeger stores spans asynchronously, a batch at a time: poll until every span is there."""
    wanted = {s["span_id"] for run in runs for s in run.spans}
    deadline = time.monotonic() + timeout
    found: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        found = _spans(_traces(url, service))
        if wanted <= found.keys():
            return found
        time.sleep(0.2)
    raise AssertionError(f"{len(wanted & found.keys())} of {len(wanted)} spans reached Jaeger")


def _tags(span: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    return {tag["key"]: (tag["type"], tag["value"]) for tag in span["tags"]}


def _parent(span: dict[str, Any]) -> str | None:
    parents = [ref["spanID"] for ref in span["references"] if ref["refType"] == "CHILD_OF"]
    assert len(parents) <= 1, span["references"]
    return parents[0] if parents else None


def _as_jaeger(value: Any) -> tuple[str, Any]:
    """The (type, value) Jaeger shows for an OTLP attribute value (arrays become JSON text)."""
    if isinstance(value, list):
        return "string", json.dumps(value, separators=(",", ":"))
    return {bool: "bool", int: "int64", float: "float64", str: "string"}[type(value)], value


@dataclass(frozen=True)
class Stored:
    service: str
    support: Run
    rag: Run
    spans: dict[str, dict[str, Any]]
    """What Jaeger returned, by span id."""


@pytest.fixture(scope="module")
def stored(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Stored:
    service = f"tokentrace-{uuid.uuid4().hex[:12]}"
    out = tmp_path_factory.mktemp("jaeger")
    support = _run_example("support_agent.py", server, service, out / "support.json")
    rag = _run_example("rag_pipeline.py", server, service, out / "rag.json")
    return Stored(service, support, rag, _wait_for(server.query_url, service, [support, rag]))


def test_every_span_reaches_jaeger_as_recorded_in_process(stored: Stored) -> None:
    """Each span's name, trace, parent, kind and every attribute (value and type) are Jaeger's too."""
    for run in (stored.support, stored.rag):
        trace_ids = {s["trace_id"] for s in run.spans}
        assert len(trace_ids) == 1  # one trace per example run
        for recorded in run.spans:
            span = stored.spans[recorded["span_id"]]
            assert span["operationName"] == recorded["name"]
            assert span["traceID"] == recorded["trace_id"]
            assert _parent(span) == recorded["parent_id"]
            assert span["service"] == stored.service
            tags = _tags(span)
            assert tags["span.kind"] == ("string", recorded["kind"])
            expected = {key: _as_jaeger(value) for key, value in recorded["attributes"].items()}
            assert {key: tags.get(key) for key in expected} == expected
    assert len(stored.spans) == len(stored.support.spans) + len(stored.rag.spans)


def test_task_spans_carry_the_exact_totals_the_example_reported(stored: Stored) -> None:
    """support_agent.py's root task: $0.004796 for 3 calls (1 retry), in Jaeger as int64 and float64 tags."""
    assert "task 'resolve_ticket' (support): $0.004796 for 3 LLM calls, 1 retry" in stored.support.stdout
    assert "tokens: 3299 in (3207 cached), 220 out" in stored.support.stdout
    root = _tags(stored.spans[stored.support.span("resolve_ticket")["span_id"]])
    assert root["tokentrace.task.cost.usd"] == ("float64", 0.004796)
    assert {
        name: root[f"tokentrace.task.{name}"]
        for name in (
            "llm_calls",
            "retries",
            "input_tokens",
            "cache_read_tokens",
            "output_tokens",
            "unpriced_calls",
        )
    } == {
        "llm_calls": ("int64", 3),
        "retries": ("int64", 1),
        "input_tokens": ("int64", 3299),
        "cache_read_tokens": ("int64", 3207),
        "output_tokens": ("int64", 220),
        "unpriced_calls": ("int64", 0),
    }
    assert root["tokentrace.task.name"] == ("string", "resolve_ticket")
    assert root["tokentrace.feature"] == ("string", "support")
    assert "gen_ai.usage.input_tokens" not in root  # task spans never carry usage

    assert "answer_question: $0.0026102 for 2 calls, 1222 tokens in" in stored.rag.stdout
    answer = _tags(stored.spans[stored.rag.span("answer_question")["span_id"]])
    assert answer["tokentrace.task.cost.usd"] == ("float64", 0.0026102)
    assert answer["tokentrace.task.llm_calls"] == ("int64", 2)
    assert answer["tokentrace.task.input_tokens"] == ("int64", 1222)


def test_call_spans_carry_usage_and_cost(stored: Stored) -> None:
    """The gpt-4o call: 1220 tokens in (1152 cached), 100 out, $0.00261; the calls add up to the task."""
    gpt4o = _tags(stored.spans[stored.support.span("chat gpt-4o")["span_id"]])
    assert gpt4o["gen_ai.usage.input_tokens"] == ("int64", 1220)
    assert gpt4o["gen_ai.usage.cache_read.input_tokens"] == ("int64", 1152)
    assert gpt4o["gen_ai.usage.output_tokens"] == ("int64", 100)
    assert gpt4o["tokentrace.cost.usd"] == ("float64", 0.00261)
    assert gpt4o["tokentrace.cost.status"] == ("string", "priced")
    assert gpt4o["tokentrace.retries"] == ("int64", 1)
    assert gpt4o["span.kind"] == ("string", "client")
    for run, total in ((stored.support, "0.004796"), (stored.rag, "0.0026102")):
        calls = [stored.spans[s["span_id"]] for s in run.spans if s["kind"] == "client"]
        assert len(calls) == {"0.004796": 3, "0.0026102": 2}[total]
        assert sum(Decimal(str(_tags(span)["tokentrace.cost.usd"][1])) for span in calls) == Decimal(total)


def test_each_call_is_a_child_of_its_task_and_each_task_of_its_parent(stored: Stored) -> None:
    """resolve_ticket > classify, draft_reply, summarise > a call each; answer_question > embed, generate."""
    by_id = stored.spans

    def name_of_parent(run: Run, name: str) -> str | None:
        parent = _parent(by_id[run.span(name)["span_id"]])
        return None if parent is None else str(by_id[parent]["operationName"])

    assert {
        name: name_of_parent(stored.support, name)
        for name in (
            "resolve_ticket",
            "classify",
            "draft_reply",
            "summarise",
            "chat gpt-4o",
            "chat claude-sonnet-4-20250514",
            "chat gpt-3.5-turbo",
        )
    } == {
        "resolve_ticket": None,
        "classify": "resolve_ticket",
        "draft_reply": "resolve_ticket",
        "summarise": "resolve_ticket",
        "chat gpt-4o": "classify",
        "chat claude-sonnet-4-20250514": "draft_reply",
        "chat gpt-3.5-turbo": "summarise",
    }
    rag_calls = {s["name"] for s in stored.rag.spans if s["kind"] == "client"}
    assert {
        name: name_of_parent(stored.rag, name)
        for name in ("answer_question", "embed", "generate", *rag_calls)
    } == {
        "answer_question": None,
        "embed": "answer_question",
        "generate": "answer_question",
        "embeddings text-embedding-ada-002": "embed",
        "chat gpt-4o": "generate",
    }
    # Every call span also names its task tree's root task, for a search across services.
    for run, root in ((stored.support, "resolve_ticket"), (stored.rag, "answer_question")):
        root_id = _tags(by_id[run.span(root)["span_id"]])["tokentrace.task.id"]
        for recorded in run.spans:
            if recorded["kind"] == "client":
                assert _tags(by_id[recorded["span_id"]])["tokentrace.task.root_id"] == root_id


def test_the_documented_jaeger_searches_find_each_run(server: Server, stored: Stored) -> None:
    """/api/traces by service, by task name tag and by feature tag returns exactly the matching runs."""
    support_trace = stored.support.spans[0]["trace_id"]
    rag_trace = stored.rag.spans[0]["trace_id"]

    def trace_ids(tags: dict[str, str] | None = None) -> set[str]:
        return {t["traceID"] for t in _traces(server.query_url, stored.service, tags)}

    assert trace_ids() == {support_trace, rag_trace}
    assert trace_ids({"tokentrace.task.name": "resolve_ticket"}) == {support_trace}
    assert trace_ids({"tokentrace.task.name": "answer_question"}) == {rag_trace}
    assert trace_ids({"tokentrace.feature": "docs-qa"}) == {rag_trace}
    # Several tags must all match one span: a call span names its own task, the Claude call's is
    # draft_reply, so no span is both classify's and Claude's, though one trace holds both.
    assert trace_ids({"tokentrace.task.name": "classify", "gen_ai.request.model": "gpt-4o"}) == {
        support_trace
    }
    claude = "claude-sonnet-4-20250514"
    assert trace_ids({"tokentrace.task.name": "draft_reply", "gen_ai.request.model": claude}) == {
        support_trace
    }
    assert trace_ids({"tokentrace.task.name": "classify", "gen_ai.request.model": claude}) == set()

    # Cost by feature: sum the call spans (never the task spans) of the traces a feature tag finds.
    def cost(feature: str) -> Decimal:
        spans = _spans(_traces(server.query_url, stored.service, {"tokentrace.feature": feature}))
        return sum(
            (
                Decimal(str(tags["tokentrace.cost.usd"][1]))
                for tags in map(_tags, spans.values())
                if "tokentrace.cost.usd" in tags and tags.get("tokentrace.feature") == ("string", feature)
            ),
            Decimal(0),
        )

    assert cost("support") == Decimal("0.004796")
    assert cost("docs-qa") == Decimal("0.0026102")

    # Most expensive runs: the root task spans (no parent) of the service's traces, by their total.
    roots = [
        (tags["tokentrace.task.cost.usd"][1], tags["tokentrace.task.name"][1])
        for span in _spans(_traces(server.query_url, stored.service)).values()
        if _parent(span) is None and "tokentrace.task.cost.usd" in (tags := _tags(span))
    ]
    assert sorted(roots, reverse=True) == [(0.004796, "resolve_ticket"), (0.0026102, "answer_question")]

    # One trace by id, as the UI's trace view loads it.
    (one,) = _get(server.query_url, f"/api/traces/{support_trace}")["data"]
    assert {s["spanID"] for s in one["spans"]} == {s["span_id"] for s in stored.support.spans}
