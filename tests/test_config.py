"""configure(): using the application's providers, building from OTEL_* variables, never twice."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

import tokentrace
from tests.support.proc import run_python
from tokentrace.exceptions import ConfigurationError

PRELUDE = """
import json, tokentrace
from tests.support.cassettes import Replay
from tests.support.clients import openai_client, recorded, request_kwargs
(interaction,) = recorded("dd-trace-py/tests/contrib/litellm/cassettes/completion_reasoning.yaml")
def one_call():
    with tokentrace.task("job") as task:
        openai_client(Replay([interaction])).chat.completions.create(**request_kwargs(interaction, "openai"))
    return task
"""


def test_configuring_twice_does_not_duplicate_spans_or_exporters() -> None:
    """Two configure() calls build one provider with one processor; each span is exported once."""
    out = run_python(
        PRELUDE
        + """
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter = InMemorySpanExporter()
tokentrace.configure(exporter=exporter)
tokentrace.configure(exporter=exporter)
tokentrace.configure()
tokentrace.instrument()
one_call()
provider = trace.get_tracer_provider()
provider.force_flush()
print(json.dumps({
    "processors": len(provider._active_span_processor._span_processors),
    "spans": sorted(s.name for s in exporter.get_finished_spans()),
}))
"""
    )
    assert json.loads(out) == {"processors": 1, "spans": ["chat o3-mini", "job"]}


def test_an_application_provider_is_used_and_nothing_is_added() -> None:
    """With a global SDK TracerProvider already set, configure() adds no processor of its own."""
    out = run_python(
        PRELUDE
        + """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
tokentrace.configure(exporter="console")
tokentrace.instrument()
one_call()
print(json.dumps({
    "processors": len(provider._active_span_processor._span_processors),
    "spans": len(exporter.get_finished_spans()),
}))
"""
    )
    assert json.loads(out) == {"processors": 1, "spans": 2}


def test_totals_are_exact_with_no_tracing_backend_at_all() -> None:
    """With OpenTelemetry's no-op provider (nothing configured), Task.totals are still exact."""
    out = run_python(
        PRELUDE
        + """
from opentelemetry import trace
tokentrace.instrument()
task = one_call()
print(json.dumps({"provider": type(trace.get_tracer_provider()).__name__,
                  "cost": str(task.totals.cost_usd), "calls": task.totals.llm_calls}))
"""
    )
    assert json.loads(out) == {"provider": "ProxyTracerProvider", "cost": "0.0001452", "calls": 1}


def test_totals_are_exact_when_a_sampler_drops_every_span() -> None:
    """A sampler that records nothing does not change the accounting."""
    out = run_python(
        PRELUDE
        + """
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
tokentrace.configure(tracer_provider=TracerProvider(sampler=ALWAYS_OFF))
tokentrace.instrument()
task = one_call()
print(json.dumps({"cost": str(task.totals.cost_usd), "output": task.totals.output_tokens}))
"""
    )
    assert json.loads(out) == {"cost": "0.0001452", "output": 30}


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.received.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    """A real OTLP/HTTP receiver on 127.0.0.1 that keeps what it is sent."""
    _Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Collector.received
    server.shutdown()


# Configure from the environment, make one call, flush: what an OTLP receiver then holds.
OTLP_ONE_CALL = (
    PRELUDE
    + """
from opentelemetry import trace
tokentrace.configure()
tokentrace.instrument()
one_call()
trace.get_tracer_provider().shutdown()
"""
)


def test_otel_environment_variables_configure_an_otlp_exporter(
    collector: tuple[str, list[tuple[str, dict[str, str], bytes]]],
) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT/HEADERS, OTEL_SERVICE_NAME and resource attributes reach the receiver."""
    endpoint, received = collector
    run_python(
        OTLP_ONE_CALL,
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_HEADERS": "x-team=billing",
            "OTEL_SERVICE_NAME": "ticket-bot",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=staging",
            "OTEL_METRIC_EXPORT_INTERVAL": "60000",
        },
    )
    traces = [r for r in received if r[0] == "/v1/traces"]
    assert traces, [r[0] for r in received]
    body = b"".join(r[2] for r in traces)
    assert all(r[1].get("x-team") == "billing" for r in traces)
    for needle in (b"ticket-bot", b"staging", b"tokentrace.task.cost.usd", b"gen_ai.usage.input_tokens"):
        assert needle in body


def test_otel_metrics_exporter_none_sends_traces_only(
    collector: tuple[str, list[tuple[str, dict[str, str], bytes]]],
) -> None:
    """OTEL_METRICS_EXPORTER=none: the receiver gets /v1/traces and never /v1/metrics."""
    endpoint, received = collector
    run_python(
        OTLP_ONE_CALL,
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_METRICS_EXPORTER": "none"},
    )
    assert sorted({r[0] for r in received}) == ["/v1/traces"]


def test_bad_environment_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TOKENTRACE_* variable with a bad value raises ConfigurationError naming it."""
    monkeypatch.setenv("TOKENTRACE_EXPORTER", "kafka")
    with pytest.raises(ConfigurationError, match="TOKENTRACE_EXPORTER='kafka'"):
        tokentrace.configure()
    monkeypatch.delenv("TOKENTRACE_EXPORTER")
    monkeypatch.setenv("TOKENTRACE_CAPTURE_CONTENT", "maybe")
    with pytest.raises(ConfigurationError, match="TOKENTRACE_CAPTURE_CONTENT"):
        tokentrace.configure()


def test_bad_arguments_are_configuration_errors() -> None:
    """Bad configure() arguments raise ConfigurationError that says what to pass."""
    with pytest.raises(ConfigurationError, match="content_max_chars"):
        tokentrace.configure(content_max_chars=0)
    with pytest.raises(ConfigurationError, match="redact must be a callable"):
        tokentrace.configure(redact="yes")  # type: ignore[arg-type]


def test_a_configure_that_raised_changes_nothing(tmp_path: Path) -> None:
    """A configure() that raises ConfigurationError leaves the previous configuration in force (no
    setting of it applied) and does not count as configured: the default ledger is still built."""
    path = tmp_path / "after-error.db"
    out = run_python(
        PRELUDE
        + """
from tokentrace._telemetry import providers as _telemetry
from tokentrace.exceptions import ConfigurationError
for bad in ({"content_max_chars": 0}, {"capture_content": True, "budgets": {"job": 3}}):
    try:
        tokentrace.configure(**bad)
    except ConfigurationError:
        pass
settings = _telemetry.state.settings
print(json.dumps({"capture_content": settings.capture_content, "budgets": settings.budgets}))
tokentrace.instrument("openai")
one_call()
""",
        env={"TOKENTRACE_LEDGER": str(path)},
    )
    assert json.loads(out) == {"capture_content": False, "budgets": {}}
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*), SUM(cost_pico) FROM calls").fetchone() == (1, 145_200_000)
        assert conn.execute("SELECT name, llm_calls FROM tasks").fetchall() == [("job", 1)]


def test_disabled_records_nothing_and_leaves_calls_alone() -> None:
    """enabled=False (or TOKENTRACE_DISABLED=true) turns recording off without unpatching."""
    out = run_python(
        PRELUDE
        + """
tokentrace.configure(enabled=False)
tokentrace.instrument()
task = one_call()
print(task.totals.llm_calls)
"""
    )
    assert out.strip() == "0"


# One call under a task, its call span's cost and content attributes printed: what the
# environment's switches turn on, read by configure() (or instrument()'s first use) once.
SWITCHES_ONE_CALL = """
import json, tokentrace, openai
from tests.support.cassettes import Replay
from tests.support.clients import recorded, request_kwargs
from tokentrace.testing import capture
CALL = {
    "local": "dd-trace-py/tests/contrib/litellm/cassettes/completion_reasoning.yaml",
    "provider": "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_openrouter.yaml",
}
CONFIGURE
tokentrace.instrument("openai")
out = {}
for source, path in CALL.items():
    (interaction,) = recorded(path)
    client = openai.OpenAI(
        api_key="sk-test", base_url="https://openrouter.ai/api/v1" if source == "provider" else None,
        http_client=Replay([interaction]).sync_client(),
    )
    with capture() as cap, tokentrace.task("job"):
        client.chat.completions.create(**request_kwargs(interaction, "openai"))
    (span,) = cap.call_spans()
    out[source] = {
        k: v for k, v in span.attributes.items()
        if k.startswith("gen_ai.usage.cost") or k in ("tokentrace.cost.usd", "gen_ai.input.messages")
    }
    out[source]["content"] = out[source].pop("gen_ai.input.messages", None) is not None
print(json.dumps(out))
"""


def _switches(env: dict[str, str], configure: str = 'tokentrace.configure(exporter="none")') -> Any:
    return json.loads(run_python(SWITCHES_ONE_CALL.replace("CONFIGURE", configure), env=env))


@pytest.mark.parametrize(
    "configure", ['tokentrace.configure(exporter="none")', ""], ids=["configure", "first-use"]
)
def test_semconv_opt_in_adds_the_proposed_gen_ai_cost_attributes(configure: str) -> None:
    """OTEL_SEMCONV_STABILITY_OPT_IN listing gen_ai_latest_experimental adds gen_ai.usage.cost.*
    beside tokentrace.cost.usd: the amount as a double, USD, provider- or locally-priced."""
    env = {"OTEL_SEMCONV_STABILITY_OPT_IN": "http, gen_ai_latest_experimental", "TOKENTRACE_EXPORTER": "none"}
    out = _switches(env, configure)
    assert out == {
        "local": {
            "tokentrace.cost.usd": 0.0001452,
            "gen_ai.usage.cost.amount": 0.0001452,
            "gen_ai.usage.cost.currency": "USD",
            "gen_ai.usage.cost.source": "local",
            "content": False,
        },
        "provider": {
            "tokentrace.cost.usd": 0.00000537,
            "gen_ai.usage.cost.amount": 0.00000537,
            "gen_ai.usage.cost.currency": "USD",
            "gen_ai.usage.cost.source": "provider",
            "content": False,
        },
    }


@pytest.mark.parametrize("opt_in", [None, "http", "gen_ai_latest_experimental_x"])
def test_without_the_opt_in_call_spans_carry_only_tokentrace_cost(opt_in: str | None) -> None:
    """Without gen_ai_latest_experimental in the list, no gen_ai.usage.cost.* attribute is set."""
    env = {} if opt_in is None else {"OTEL_SEMCONV_STABILITY_OPT_IN": opt_in}
    out = _switches(env)
    assert out["local"] == {"tokentrace.cost.usd": 0.0001452, "content": False}
    assert out["provider"] == {"tokentrace.cost.usd": 0.00000537, "content": False}


@pytest.mark.parametrize(
    ("env", "configure", "captured"),
    [
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}, "", True),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT"}, "", True),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "NO_CONTENT"}, "", False),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"}, "", False),
        (
            {
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
                "TOKENTRACE_CAPTURE_CONTENT": "false",
            },
            "",
            False,
        ),
        (
            {
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false",
                "TOKENTRACE_CAPTURE_CONTENT": "true",
            },
            "",
            True,
        ),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}, "capture_content=False", False),
        ({"TOKENTRACE_CAPTURE_CONTENT": "false"}, "capture_content=True", True),
    ],
    ids=["otel", "otel-mode", "otel-no-content", "otel-false", "ours-off", "ours-on", "arg-off", "arg-on"],
)
def test_content_capture_precedence(env: dict[str, str], configure: str, captured: bool) -> None:
    """configure(capture_content=...) wins, then TOKENTRACE_CAPTURE_CONTENT, then the OTel variable."""
    args = ", ".join(filter(None, ['exporter="none"', configure]))
    out = _switches(env, f"tokentrace.configure({args})")
    assert out["local"]["content"] is captured
