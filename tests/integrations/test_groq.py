"""Groq through the official groq SDK (built on httpx), replayed from recordings."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import groq

import tokentrace
from tests.support.cassettes import Interaction, Replay
from tests.support.clients import recorded, spliced_error, synthetic
from tokentrace.testing import Capture

_DIR = "openllmetry/packages/opentelemetry-instrumentation-groq/tests/traces/cassettes/test_chat_tracing/"
CHAT = _DIR + "test_chat_legacy.yaml"
STREAM = _DIR + "test_chat_streaming_legacy.yaml"


def _client(replay: Replay, *, use_async: bool = False, max_retries: int = 0) -> Any:
    if use_async:
        return groq.AsyncGroq(
            api_key="gsk-test", http_client=replay.httpx_async_client(), max_retries=max_retries
        )
    return groq.Groq(api_key="gsk-test", http_client=replay.httpx_client(), max_retries=max_retries)


def _kwargs(interaction: Interaction) -> dict[str, Any]:
    return interaction.request_json()


def _attrs(cap: Capture) -> dict[str, Any]:
    (span,) = cap.call_spans()
    return dict(span.attributes or {})


def test_chat_is_priced_from_groqs_table(cap: Capture) -> None:
    """llama3-8b-8192 on Groq: 18 in x $0.05 + 43 out x $0.08 per million = $0.00000434."""
    interaction = recorded(CHAT)[0]
    with tokentrace.task("groq") as task:
        _client(Replay([interaction])).chat.completions.create(**_kwargs(interaction))
    attrs = _attrs(cap)
    assert attrs["gen_ai.provider.name"] == "groq"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (18, 43)
    assert attrs["tokentrace.cost.status"] == "priced"
    assert task.totals.cost_usd == Decimal("0.00000434")


def test_stream_usage_comes_from_x_groq(cap: Capture) -> None:
    """The last chunk's ``x_groq.usage`` is the stream's usage: 18 in, 73 out, $0.00000674, not estimated."""
    (interaction,) = recorded(STREAM)
    with tokentrace.task("groq-stream") as task:
        for _ in _client(Replay([interaction])).chat.completions.create(**_kwargs(interaction)):
            pass
    attrs = _attrs(cap)
    assert attrs["tokentrace.stream.end"] == "completed"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (18, 73)
    assert "tokentrace.usage.estimated" not in attrs
    assert task.totals.cost_usd == Decimal("0.00000674")


def test_async_client_records_the_same(cap: Capture) -> None:
    """AsyncGroq, plain and streamed, gives the same numbers as the sync client."""
    chat = recorded(CHAT)[0]
    (stream,) = recorded(STREAM)

    async def run() -> tokentrace.Totals:
        client = _client(Replay([chat, stream]), use_async=True)
        async with tokentrace.task("groq-async") as task:
            await client.chat.completions.create(**_kwargs(chat))
            async for _ in await client.chat.completions.create(**_kwargs(stream)):
                pass
        return task.totals

    totals = asyncio.run(run())
    assert (totals.llm_calls, totals.input_tokens, totals.output_tokens) == (2, 36, 116)
    assert totals.cost_usd == Decimal("0.00000434") + Decimal("0.00000674")


def test_retry_after_a_503_counts_both_attempts(cap: Capture) -> None:
    """Spliced: a recorded body served as 503, then the recorded success; two attempts, one retry."""
    interaction = recorded(CHAT)[0]
    replay = Replay([spliced_error(503, interaction), interaction])
    with tokentrace.task("groq-retry") as task:
        _client(replay, max_retries=2).chat.completions.create(**_kwargs(interaction))
    attrs = _attrs(cap)
    assert attrs["tokentrace.attempts"] == ("503", "200")
    assert attrs["tokentrace.retries"] == 1
    assert task.totals.retries == 1
    assert task.totals.cost_usd == Decimal("0.00000434")


def test_a_final_error_is_a_failed_call_without_usage(cap: Capture) -> None:
    """A 400 that is not retried: the user gets the SDK's error; the call is recorded, no usage."""
    interaction = recorded(CHAT)[0]
    replay = Replay([spliced_error(400, interaction)])
    with tokentrace.task("groq-error") as task:
        try:
            _client(replay).chat.completions.create(**_kwargs(interaction))
        except groq.BadRequestError:
            pass
        else:
            raise AssertionError("the 400 did not raise")
    attrs = _attrs(cap)
    assert attrs["error.type"] == "BadRequestError"
    assert attrs["tokentrace.attempts"] == ("400",)
    assert attrs["tokentrace.cost.status"] == "no_usage"
    assert task.totals.llm_calls == 1


def test_embeddings_are_input_only_calls(cap: Capture) -> None:
    """``embeddings.create`` is recorded as an input-only call (operation embeddings). No recording
    holds a Groq embedding, so the response is written by the test; Groq's price table has no
    embedding model, so the call is counted unpriced, never $0."""
    body = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
        "model": "nomic-embed-text-v1_5",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
    replay = Replay(synthetic("https://api.groq.com/openai/v1/embeddings", body))
    with tokentrace.task("groq-embed") as task:
        _client(replay).embeddings.create(model="nomic-embed-text-v1_5", input="hello world")
    attrs = _attrs(cap)
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (8, 0)
    assert attrs["tokentrace.cost.status"] == "unpriced"
    assert (task.totals.input_tokens, task.totals.unpriced_calls) == (8, 1)
