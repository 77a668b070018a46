"""Cohere through the official cohere SDK's v2 client (built on httpx), replayed from recordings."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import cohere

import tokentrace
from tests.support.cassettes import Replay
from tests.support.clients import recorded
from tokentrace.testing import Capture

_OLL = "openllmetry/packages/opentelemetry-instrumentation-cohere/tests/cassettes/"
_LC = "openllmetry/packages/opentelemetry-instrumentation-langchain/tests/cassettes/"
CHAT = _OLL + "test_chat/test_cohere_v2_chat_legacy.yaml"
STREAM = _OLL + "test_chat/test_cohere_v2_chat_legacy_with_streaming.yaml"
EMBED = _OLL + "test_embed/test_cohere_v2_embed_legacy.yaml"
CACHED_STREAM = _LC + "test_chains/test_stream.yaml"
CACHED_ASTREAM = _LC + "test_chains/test_astream.yaml"


def _attrs(cap: Capture) -> dict[str, Any]:
    (span,) = cap.call_spans()
    return dict(span.attributes or {})


def _body(path: str) -> tuple[Replay, dict[str, Any]]:
    interactions = [i for i in recorded(path) if i.key[3].startswith("/v2/")]
    body = interactions[0].request_json()
    body.pop("stream", None)
    return Replay(interactions), body


def test_chat_reports_tokens_and_prices_billed_units(cap: Capture) -> None:
    """``command``: 69 tokens in, 89 out; billed 7 in x $1 + 88 out x $2 per million = $0.000183."""
    replay, body = _body(CHAT)
    with tokentrace.task("cohere") as task:
        cohere.ClientV2(api_key="co-test", httpx_client=replay.httpx_client()).chat(**body)
    attrs = _attrs(cap)
    assert attrs["gen_ai.provider.name"] == "cohere"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (69, 89)
    assert attrs["tokentrace.cost.status"] == "priced"
    assert attrs["tokentrace.cost.usd"] == 0.000183
    assert (task.totals.input_tokens, task.totals.cost_usd) == (69, Decimal("0.000183"))


def test_chat_stream_takes_usage_from_message_end(cap: Capture) -> None:
    """``chat_stream``: 69 in, 110 out; billed 7 x $1 + 109 x $2 per million = $0.000225."""
    replay, body = _body(STREAM)
    client = cohere.ClientV2(api_key="co-test", httpx_client=replay.httpx_client())
    with tokentrace.task("cohere-stream") as task:
        stream = client.chat_stream(**body)
        assert replay.sent == []  # a generator: nothing is sent until it is iterated
        kinds = [event.type for event in stream]
    assert kinds[-1] == "message-end"
    attrs = _attrs(cap)
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["tokentrace.stream.end"] == "completed"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (69, 110)
    assert task.totals.cost_usd == Decimal("0.000225")


def test_cached_tokens_are_reported_and_billing_follows_billed_units(cap: Capture) -> None:
    """command-r-08-2024: 212 in (208 cached), 64 out; billed 12 x $0.15 + 64 x $0.60 = $0.0000402."""
    replay, body = _body(CACHED_STREAM)
    with tokentrace.task("cached") as task:
        for _ in cohere.ClientV2(api_key="co-test", httpx_client=replay.httpx_client()).chat_stream(**body):
            pass
    attrs = _attrs(cap)
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 208
    assert task.totals.cost_usd == Decimal("0.0000402")


def test_async_chat_stream_is_an_async_generator_watched_too(cap: Capture) -> None:
    """AsyncClientV2.chat_stream returns an async generator from a plain call: billed 12/65 = $0.0000408."""
    replay, body = _body(CACHED_ASTREAM)

    async def run() -> tokentrace.Totals:
        client = cohere.AsyncClientV2(api_key="co-test", httpx_client=replay.httpx_async_client())
        async with tokentrace.task("cohere-async") as task:
            async for _ in client.chat_stream(**body):
                pass
        return task.totals

    totals = asyncio.run(run())
    assert (totals.llm_calls, totals.input_tokens, totals.output_tokens) == (1, 212, 65)
    assert totals.cost_usd == Decimal("0.0000408")
    assert _attrs(cap)["tokentrace.stream.end"] == "completed"


def test_embed_counts_billed_input_and_an_unknown_price_is_unpriced(cap: Capture) -> None:
    """``embed`` reports billed units only (208 in); embed-english-light-v3.0 has no price: unpriced."""
    replay, body = _body(EMBED)
    with tokentrace.task("embed") as task:
        cohere.ClientV2(api_key="co-test", httpx_client=replay.httpx_client()).embed(**body)
    attrs = _attrs(cap)
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (208, 0)
    assert attrs["tokentrace.cost.status"] == "unpriced"
    assert (task.totals.unpriced_calls, task.totals.cost_usd) == (1, Decimal(0))
