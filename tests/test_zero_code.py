"""`opentelemetry-instrument python app.py` enables tokentrace with no code change."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.support.proc import ROOT
from tests.support.servers import otlp_receiver
from tokentrace._demo import RECORDINGS
from tokentrace.testing import Recorded, ReplayServer

APP = ROOT / "examples" / "zero_code_app.py"
INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"


@pytest.fixture
def api() -> Iterator[str]:
    """The OpenAI API on 127.0.0.1, answering two chat calls with a recorded response ($0.00261)."""
    body = (RECORDINGS / "openai_chat_cached.json").read_bytes()
    with ReplayServer({"/v1/chat/completions": [Recorded(body), Recorded(body)]}) as server:
        yield server.url + "/v1"


def _run(api: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TOKENTRACE_"))}
    return subprocess.run(
        [str(INSTRUMENT), sys.executable, str(APP)],
        cwd=ROOT,
        env={**base, "OPENAI_BASE_URL": api, "OPENAI_API_KEY": "offline", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_the_entry_point_is_registered() -> None:
    """tokentrace is an opentelemetry_instrumentor entry point that loads a BaseInstrumentor."""
    from importlib.metadata import entry_points

    from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

    (ep,) = [ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.name == "tokentrace"]
    assert issubclass(ep.load(), BaseInstrumentor)


def test_an_unchanged_app_records_to_the_ledger(api: str, tmp_path: Path) -> None:
    """With nothing but environment variables, the app's two calls land priced in the ledger."""
    ledger = tmp_path / "ledger.db"
    _run(api, TOKENTRACE_LEDGER=str(ledger))
    with sqlite3.connect(ledger) as conn:
        rows = conn.execute("SELECT provider, response_model, cost_pico FROM calls").fetchall()
    assert rows == [("openai", "gpt-4o-2024-08-06", 2_610_000_000)] * 2


def test_an_unchanged_app_exports_over_otlp(api: str) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT sends the call spans, with their cost, to a real OTLP receiver."""
    with otlp_receiver() as (endpoint, bodies):
        _run(api, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_SERVICE_NAME="zero-code")
        traces = [ExportTraceServiceRequest.FromString(b) for path, b in bodies if path == "/v1/traces"]
    # Other instrumentations installed beside tokentrace (the coexistence tests' peers) are loaded
    # by opentelemetry-instrument too: tokentrace's spans are those of its scope.
    spans = [
        (span.name, {a.key: a.value for a in span.attributes}, rs.resource)
        for request in traces
        for rs in request.resource_spans
        for ss in rs.scope_spans
        if ss.scope.name == "tokentrace"
        for span in ss.spans
    ]
    assert [name for name, _, _ in spans] == ["chat gpt-4o", "chat gpt-4o"]
    for _, attrs, resource in spans:
        assert attrs["tokentrace.cost.usd"].double_value == 0.00261
        assert attrs["gen_ai.usage.input_tokens"].int_value == 1220
        service = {a.key: a.value.string_value for a in resource.attributes}["service.name"]
        assert service == "zero-code"


def test_it_can_be_disabled_like_any_instrumentation(api: str, tmp_path: Path) -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=tokentrace leaves the app uninstrumented."""
    ledger = tmp_path / "ledger.db"
    _run(api, TOKENTRACE_LEDGER=str(ledger), OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="tokentrace")
    assert not ledger.exists()
