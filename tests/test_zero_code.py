"""`opentelemetry-instrument python app.py` enables tokentrace with no code change."""

from __future__ import annotations

import json
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
from tokentrace._cli.demo import RECORDINGS
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


BUILTIN_SDKS = {
    "tokentrace_openai": "openai >= 1.40",
    "tokentrace_anthropic": "anthropic >= 0.34",
    "tokentrace_groq": "groq >= 0.9",
    "tokentrace_mistral": "mistralai >= 2.0",
    "tokentrace_cohere": "cohere >= 5.9",
    "tokentrace_google_genai": "google-genai >= 1.0",
    "tokentrace_bedrock": "botocore >= 1.34",
    "tokentrace_httpx": "httpx >= 0.23",
    "tokentrace_httpx2": "httpx2 >= 2.0",
    "tokentrace_litellm": "litellm >= 1.110",
    "tokentrace_requests": "requests >= 2.25",
    "tokentrace_lm15": "lm15 >= 1.0",
    "tokentrace_dspy": "dspy >= 3.4",
    "tokentrace_botocore": "botocore >= 1.31",
    "tokentrace_aiohttp": "aiohttp >= 3.9",
}


def test_each_builtin_has_its_own_entry_point_naming_its_sdk() -> None:
    """Every built-in integration has a tokentrace_<name> instrumentor whose dependencies name its
    SDK and the oldest version tokentrace supports, as contrib instrumentors' do."""
    from importlib.metadata import entry_points

    from tokentrace._core import registry as _registry

    found = {ep.name: ep.load() for ep in entry_points(group="opentelemetry_instrumentor")}
    ours = {name: cls for name, cls in found.items() if name.startswith("tokentrace_")}
    assert sorted(ours) == sorted(f"tokentrace_{n.replace('-', '_')}" for n in _registry.available())
    deps = {name: list(cls().instrumentation_dependencies()) for name, cls in ours.items()}
    assert deps == {
        **{name: [dep] for name, dep in BUILTIN_SDKS.items()},
        "tokentrace_threading": [],
        "tokentrace_processes": [],
    }
    assert list(found["tokentrace"]().instrumentation_dependencies()) == []


# What opentelemetry-instrument left patched: tokentrace's instrumented integrations once the app
# has imported both SDKs, and how many tokentrace wrappers sit on the openai method.
PATCHED_APP = """
import json, openai, anthropic, wrapt
from tokentrace._core import registry as _registry
from openai.resources.chat.completions import Completions

def ours(fn):
    n = 0
    while isinstance(fn, wrapt.FunctionWrapper):
        n += getattr(fn._self_wrapper, "__module__", "").startswith("tokentrace.")
        fn = fn.__wrapped__
    return n

applied = sorted(_registry._applied)
print(json.dumps({"openai": "openai" in applied, "anthropic": "anthropic" in applied,
                  "httpx2": "httpx2" in applied, "openai_wrappers": ours(Completions.__dict__["create"])}))
"""


@pytest.mark.parametrize(
    ("disabled", "expected"),
    [
        ("", {"openai": True, "anthropic": True, "httpx2": True, "openai_wrappers": 1}),
        ("tokentrace_openai", {"openai": False, "anthropic": True, "httpx2": True, "openai_wrappers": 0}),
        (
            " tokentrace_anthropic , tokentrace_httpx2",
            {"openai": True, "anthropic": False, "httpx2": False, "openai_wrappers": 1},
        ),
        ("tokentrace", {"openai": False, "anthropic": False, "httpx2": False, "openai_wrappers": 0}),
    ],
    ids=["none", "openai", "two", "all"],
)
def test_disabling_one_integration_by_name_leaves_the_others_on(
    disabled: str, expected: dict[str, object], tmp_path: Path
) -> None:
    """Under opentelemetry-instrument, both the tokentrace entry point and tokentrace_openai load:
    the SDK is patched once; tokentrace_openai disabled leaves openai unpatched and the rest on;
    tokentrace disabled leaves everything unpatched."""
    app = tmp_path / "app.py"
    app.write_text(PATCHED_APP)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TOKENTRACE_"))}
    proc = subprocess.run(
        [str(INSTRUMENT), sys.executable, str(app)],
        cwd=ROOT,
        env={
            **base,
            "PYTHONPATH": str(ROOT),
            "TOKENTRACE_EXPORTER": "none",
            # The other GenAI instrumentations installed for the coexistence tests stay out.
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": ",".join(filter(None, [disabled, "openai"])),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(proc.stdout) == expected
