"""Mistral through the official mistralai SDK (built on httpx), replayed from recordings."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import mistralai.client
import mistralai.client.errors
from mistralai.client.utils import BackoffStrategy, RetryConfig

import tokentrace
from tests.support.cassettes import Interaction, Replay
from tests.support.clients import recorded, spliced_error
from tokentrace.testing import Capture

_DIR = "openllmetry/packages/opentelemetry-instrumentation-mistralai/tests/cassettes/"
CACHED = _DIR + "test_chat/test_mistralai_chat_with_cache_tokens.yaml"
STREAM = _DIR + "test_chat/test_mistralai_streaming_chat_legacy.yaml"
ASYNC_CHAT = _DIR + "test_chat/test_mistralai_async_chat_legacy.yaml"
ASYNC_STREAM = _DIR + "test_chat/test_mistralai_async_streaming_chat_legacy.yaml"
EMBEDDINGS = _DIR + "test_embeddings/test_mistral_embeddings_legacy.yaml"


def _client(replay: Replay, **kw: Any) -> Any:
    return mistralai.client.Mistral(
        api_key="test", client=replay.httpx_client(), async_client=replay.httpx_async_client(), **kw
    )


def _chat_kwargs(interaction: Interaction) -> dict[str, Any]:
    body = interaction.request_json()
    body.pop("stream", None)
    return body


def _attrs(cap: Capture) -> dict[str, Any]:
    (span,) = cap.call_spans()
    return dict(span.attributes or {})


def test_complete_reads_cached_tokens(cap: Capture) -> None:
    """mistral-tiny: 20 in (10 cached) and 18 out, all at $0.25 per million = $0.0000095."""
    (interaction,) = recorded(CACHED)
    with tokentrace.task("mistral") as task:
        _client(Replay([interaction])).chat.complete(**_chat_kwargs(interaction))
    attrs = _attrs(cap)
    assert attrs["gen_ai.provider.name"] == "mistral_ai"
    assert attrs["gen_ai.request.model"] == "mistral-tiny"
    assert attrs["gen_ai.usage.input_tokens"] == 20
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 10
    assert attrs["gen_ai.usage.output_tokens"] == 18
    assert attrs["tokentrace.cost.status"] == "priced"
    assert task.totals.cost_usd == Decimal("0.0000095")


def test_stream_takes_usage_from_its_last_event(cap: Capture) -> None:
    """``chat.stream()``: 11 in, 80 out at $0.25 per million = $0.00002275, from the last chunk."""
    (interaction,) = recorded(STREAM)
    with tokentrace.task("mistral-stream") as task:
        events = list(_client(Replay([interaction])).chat.stream(**_chat_kwargs(interaction)))
    assert events[-1].data.usage is not None
    attrs = _attrs(cap)
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["tokentrace.stream.end"] == "completed"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 80)
    assert "tokentrace.usage.estimated" not in attrs
    assert task.totals.cost_usd == Decimal("0.00002275")


def test_async_complete_and_stream(cap: Capture) -> None:
    """``complete_async`` (11 in, 99 out) and ``stream_async`` (11 in, 80 out) at $0.25 per million."""
    (chat,) = recorded(ASYNC_CHAT)
    (stream,) = recorded(ASYNC_STREAM)

    async def run() -> tokentrace.Totals:
        client = _client(Replay([chat, stream]))
        async with tokentrace.task("mistral-async") as task:
            await client.chat.complete_async(**_chat_kwargs(chat))
            async for _ in await client.chat.stream_async(**_chat_kwargs(stream)):
                pass
        return task.totals

    totals = asyncio.run(run())
    assert (totals.llm_calls, totals.input_tokens, totals.output_tokens) == (2, 22, 179)
    assert totals.cost_usd == Decimal("0.00005025")


def test_embeddings_are_input_only(cap: Capture) -> None:
    """mistral-embed: 10 tokens x $0.10 per million = $0.000001, operation 'embeddings'."""
    (interaction,) = recorded(EMBEDDINGS)
    body = interaction.request_json()
    with tokentrace.task("embed") as task:
        _client(Replay([interaction])).embeddings.create(model=body["model"], inputs=body["input"])
    attrs = _attrs(cap)
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (10, 0)
    assert task.totals.cost_usd == Decimal("0.000001")


def test_retry_after_a_503_counts_both_attempts(cap: Capture) -> None:
    """Spliced: a recorded body served as 503, then the recorded success. The SDK hides a retried
    attempt's status, so the first attempt reads 'unknown'; the count is exact."""
    (interaction,) = recorded(CACHED)
    replay = Replay([spliced_error(503, interaction), interaction])
    retry = RetryConfig("backoff", BackoffStrategy(1, 2, 1.0, 100), retry_connection_errors=True)
    with tokentrace.task("mistral-retry") as task:
        _client(replay, retry_config=retry).chat.complete(**_chat_kwargs(interaction))
    attrs = _attrs(cap)
    assert attrs["tokentrace.attempts"] == ("unknown", "200")
    assert attrs["tokentrace.retries"] == 1
    assert task.totals.retries == 1
    assert task.totals.cost_usd == Decimal("0.0000095")


def test_a_final_error_is_a_failed_call_without_usage(cap: Capture) -> None:
    """A 400: the user gets the SDK's own error; the call is recorded with its status and no usage."""
    (interaction,) = recorded(CACHED)
    replay = Replay([spliced_error(400, interaction)])
    with tokentrace.task("mistral-error") as task:
        try:
            _client(replay).chat.complete(**_chat_kwargs(interaction))
        except mistralai.client.errors.SDKError:
            pass
        else:
            raise AssertionError("the 400 did not raise")
    attrs = _attrs(cap)
    assert attrs["error.type"] == "SDKError"
    assert attrs["tokentrace.attempts"] == ("400",)
    assert attrs["tokentrace.cost.status"] == "no_usage"
    assert task.totals.llm_calls == 1
