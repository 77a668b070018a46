"""tokentrace beside other GenAI instrumentations of the same SDK: the OTel contrib openai-v2
instrumentation, OpenLLMetry's and Logfire's. No crash, the user's results unchanged, tokentrace's
cost counted once, whichever is instrumented first."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.support.proc import run_python

PROGRAM = """
import asyncio, json, sys, warnings
warnings.simplefilter("ignore")
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import tokentrace
from tests.support.cassettes import Replay
from tests.support.clients import openai_client, recorded, request_kwargs

peer, order = sys.argv[1], sys.argv[2]
spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(provider)
tokentrace.configure(exporter="none")  # use the application's provider

(chat,) = recorded("CACHED")
(stream,) = recorded("dd-trace-py/tests/contrib/litellm/cassettes/completion_stream.yaml")

def calls():
    client = openai_client(Replay([chat, stream]))
    plain = client.chat.completions.create(**request_kwargs(chat, "openai")).model_dump()
    chunks = [c.model_dump() for c in client.chat.completions.create(**request_kwargs(stream, "openai"))]
    async def one():
        aclient = openai_client(Replay([chat]), use_async=True)
        return (await aclient.chat.completions.create(**request_kwargs(chat, "openai"))).model_dump()
    return plain, chunks, asyncio.run(one())

baseline = calls()

def instrument_peer():
    if peer == "otel-contrib":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
        OpenAIInstrumentor().instrument()
    elif peer == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
        OpenAIInstrumentor().instrument()
    else:
        import logfire
        logfire.configure(send_to_logfire=False, console=False, inspect_arguments=False)
        logfire.instrument_openai()

if order == "peer-first":
    instrument_peer()
tokentrace.instrument("openai")
if order == "tokentrace-first":
    instrument_peer()
spans.clear()
with tokentrace.task("coexist") as task:
    results = calls()
ours = [s for s in spans.get_finished_spans() if s.instrumentation_scope.name == "tokentrace"]
theirs = [s for s in spans.get_finished_spans() if s.instrumentation_scope.name != "tokentrace"]
print(json.dumps({
    "same_results": results == baseline,
    "calls": task.totals.llm_calls,
    "cost": str(task.totals.cost_usd),
    "our_call_spans": sorted(s.name for s in ours if s.kind.name == "CLIENT"),
    "their_spans": len(theirs),
    "cost_on_their_spans": any("tokentrace.cost.usd" in (s.attributes or {}) for s in theirs),
}))
""".replace(
    "CACHED", "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_prompt_caching_cache_read.yaml"
)


@pytest.mark.parametrize("order", ["peer-first", "tokentrace-first"])
@pytest.mark.parametrize("peer", ["otel-contrib", "openllmetry", "logfire"])
def test_tokentrace_beside_another_instrumentation(peer: str, order: str) -> None:
    """Sync, streamed and async calls return what they return uninstrumented; tokentrace records each
    call once with its exact cost, and puts its cost on no other instrumentation's span."""
    out = json.loads(run_python(PROGRAM.replace("sys.argv[1], sys.argv[2]", f"{peer!r}, {order!r}")))
    assert out["same_results"] is True
    assert out["calls"] == 3
    # 2 cached gpt-4o calls ($0.00261 each) and the streamed gpt-3.5-turbo call ($0.0000365)
    assert Decimal(out["cost"]) == Decimal("0.0052565")
    assert out["our_call_spans"] == ["chat gpt-3.5-turbo", "chat gpt-4o", "chat gpt-4o"]
    assert out["cost_on_their_spans"] is False
    if peer != "logfire":  # Logfire exports through its own provider
        assert out["their_spans"] >= 3
