"""A count the provider did not report is never priced as 0; a cut stream is an estimate; fields
that disagree keep every billed token."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import anthropic
import boto3
import cohere
import groq
import httpx
import httpx2
import mistralai.client
import openai
import pytest
from google import genai
from google.genai import types as genai_types

import tokentrace
from tests.support.cassettes import Interaction, Replay, serve_botocore
from tests.support.clients import (
    anthropic_client,
    chat_completion_body,
    message_body,
    openai_client,
    synthetic,
)
from tokentrace import pricing
from tokentrace._tokens.tokenize import count_text
from tokentrace.testing import Capture

Call = Callable[[Any], Any]


def _attrs(cap: Capture) -> dict[str, Any]:
    (span,) = cap.call_spans()
    return dict(span.attributes or {})


# --- the provider's bodies, one per API, with the usage the test gives -----------------------


def _openai_chat(usage: Any) -> Call:
    replay = Replay(synthetic("https://api.openai.com/v1/chat/completions", chat_completion_body(usage)))
    return lambda _: openai_client(replay).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
    )


def _openai_responses(usage: Any) -> Call:
    body = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "model": "gpt-4o-mini",
        "status": "completed",
        "output": [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }
    replay = Replay(synthetic("https://api.openai.com/v1/responses", body))
    return lambda _: openai_client(replay).responses.create(model="gpt-4o-mini", input="x")


def _openai_completions(usage: Any) -> Call:
    body = {
        "id": "cmpl_1",
        "object": "text_completion",
        "created": 1,
        "model": "gpt-3.5-turbo-instruct",
        "choices": [{"text": "hi", "index": 0, "logprobs": None, "finish_reason": "stop"}],
        "usage": usage,
    }
    replay = Replay(synthetic("https://api.openai.com/v1/completions", body))
    return lambda _: openai_client(replay).completions.create(model="gpt-3.5-turbo-instruct", prompt="x")


def _openai_embeddings(usage: Any) -> Call:
    body = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}],
        "model": "text-embedding-3-small",
        "usage": usage,
    }
    replay = Replay(synthetic("https://api.openai.com/v1/embeddings", body))
    return lambda _: openai_client(replay).embeddings.create(model="text-embedding-3-small", input="x")


def _anthropic(usage: Any) -> Call:
    replay = Replay(synthetic("https://api.anthropic.com/v1/messages", message_body(usage)))
    return lambda _: anthropic_client(replay).messages.create(
        model="claude-sonnet-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
    )


def _groq(usage: Any) -> Call:
    body = chat_completion_body(usage, model="llama-3.3-70b-versatile")
    replay = Replay(synthetic("https://api.groq.com/openai/v1/chat/completions", body))
    return lambda _: groq.Groq(api_key="gsk-test", http_client=replay.httpx_client()).chat.completions.create(
        model="llama-3.3-70b-versatile", messages=[{"role": "user", "content": "x"}]
    )


def _mistral(usage: Any) -> Call:
    body = chat_completion_body(usage, model="mistral-small-latest")
    replay = Replay(synthetic("https://api.mistral.ai/v1/chat/completions", body))
    client = mistralai.client.Mistral(api_key="test", client=replay.httpx_client())
    return lambda _: client.chat.complete(
        model="mistral-small-latest", messages=[{"role": "user", "content": "x"}]
    )


def _mistral_embeddings(usage: Any) -> Call:
    body = {
        "id": "e1",
        "object": "list",
        "model": "mistral-embed",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}],
        "usage": usage,
    }
    replay = Replay(synthetic("https://api.mistral.ai/v1/embeddings", body))
    client = mistralai.client.Mistral(api_key="test", client=replay.httpx_client())
    return lambda _: client.embeddings.create(model="mistral-embed", inputs=["x"])


def _cohere(usage: Any) -> Call:
    body = {
        "id": "c1",
        "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "hi"}]},
        "usage": usage,
    }
    replay = Replay(synthetic("https://api.cohere.com/v2/chat", body))
    client = cohere.ClientV2(api_key="co-test", httpx_client=replay.httpx_client())
    return lambda _: client.chat(model="command-r-plus-08-2024", messages=[{"role": "user", "content": "x"}])


def _cohere_embed(meta: Any) -> Call:
    body = {
        "id": "e1",
        "embeddings": {"float": [[0.5]]},
        "texts": ["x"],
        "meta": meta,
    }
    replay = Replay(synthetic("https://api.cohere.com/v2/embed", body))
    client = cohere.ClientV2(api_key="co-test", httpx_client=replay.httpx_client())
    return lambda _: client.embed(
        model="embed-v4.0", texts=["x"], input_type="search_document", embedding_types=["float"]
    )


def _gemini(usage: Any) -> Call:
    body = {
        "candidates": [{"content": {"parts": [{"text": "hi"}], "role": "model"}, "finishReason": "STOP"}],
        "usageMetadata": usage,
        "modelVersion": "gemini-2.0-flash",
    }
    uri = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
    replay = Replay(synthetic(uri, body))
    http = genai_types.HttpOptions(api_version="v1beta", httpx_client=replay.httpx_client())
    client = genai.Client(api_key="g-test", http_options=http)
    return lambda _: client.models.generate_content(model="gemini-2.0-flash", contents="x")


_NOVA = "amazon.nova-lite-v1:0"


def _bedrock_client(interaction: Interaction) -> Any:
    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="AK", aws_secret_access_key="s"
    )
    return serve_botocore(Replay([interaction]), client)


def _converse(usage: Any) -> Call:
    body = {
        "output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
        "stopReason": "end_turn",
        "usage": usage,
        "metrics": {"latencyMs": 1},
    }
    uri = f"https://bedrock-runtime.us-east-1.amazonaws.com/model/{quote(_NOVA)}/converse"
    (interaction,) = synthetic(uri, body)
    return lambda _: _bedrock_client(interaction).converse(
        modelId=_NOVA, messages=[{"role": "user", "content": [{"text": "x"}]}]
    )


def _invoke(headers: dict[str, str]) -> Call:
    uri = f"https://bedrock-runtime.us-east-1.amazonaws.com/model/{quote(_NOVA)}/invoke"
    interaction = Interaction(
        "POST", uri, b"{}", 200, [("content-type", "application/json"), *headers.items()], b"{}"
    )
    return lambda _: _bedrock_client(interaction).invoke_model(modelId=_NOVA, body=b"{}")


MISSING = {
    "openai-chat": (_openai_chat, {"completion_tokens": 100}, "prompt_tokens is missing"),
    "openai-chat-null": (
        _openai_chat,
        {"prompt_tokens": 10, "completion_tokens": None},
        "completion_tokens is missing",
    ),
    "openai-responses": (_openai_responses, {"output_tokens": 5}, "input_tokens is missing"),
    "openai-responses-out": (_openai_responses, {"input_tokens": 5}, "output_tokens is missing"),
    "openai-completions": (_openai_completions, {"prompt_tokens": 5}, "completion_tokens is missing"),
    "anthropic-empty": (_anthropic, {}, "input_tokens is missing"),
    "anthropic-string": (_anthropic, "nonsense", "input_tokens is missing"),
    "anthropic-out": (
        _anthropic,
        {"input_tokens": 5, "cache_read_input_tokens": 3},
        "output_tokens is missing",
    ),
    "groq": (_groq, {"prompt_tokens": 5}, "completion_tokens is missing"),
    "mistral": (_mistral, {"completion_tokens": 5}, "prompt_tokens is missing"),
    "mistral-embeddings": (_mistral_embeddings, {"total_tokens": 5}, "prompt_tokens is missing"),
    "cohere-empty": (_cohere, {}, "usage has neither tokens nor billed_units"),
    "cohere-billed": (
        _cohere,
        {"billed_units": {"input_tokens": 5}},
        "billed_units.output_tokens is missing",
    ),
    "cohere-tokens": (_cohere, {"tokens": {"output_tokens": 5}}, "tokens.input_tokens is missing"),
    "cohere-embed": (_cohere_embed, {"billed_units": {}}, "billed_units.input_tokens is missing"),
    "gemini": (_gemini, {"candidatesTokenCount": 5}, "prompt_token_count is missing"),
    "bedrock-converse": (_converse, {"outputTokens": 5, "totalTokens": 5}, "inputTokens is missing"),
    "bedrock-converse-out": (_converse, {"inputTokens": 5, "totalTokens": 5}, "outputTokens is missing"),
    "bedrock-invoke": (
        _invoke,
        {"x-amzn-bedrock-input-token-count": "5"},
        "x-amzn-bedrock-output-token-count is missing",
    ),
}


@pytest.mark.parametrize(("call", "usage", "problem"), list(MISSING.values()), ids=list(MISSING))
def test_a_missing_input_or_output_count_is_invalid_usage_not_zero(
    call: Callable[[Any], Call], usage: Any, problem: str, cap: Capture
) -> None:
    """Every reader: a response that leaves out the input or the output count is invalid_usage,
    says which count is missing, and adds no tokens and no cost to its task."""
    make = call(usage)
    with tokentrace.task("missing") as task:
        make(None)
    attrs = _attrs(cap)
    assert attrs["tokentrace.cost.status"] == "invalid_usage"
    assert attrs["tokentrace.usage.problem"] == problem
    assert "tokentrace.cost.usd" not in attrs
    assert "gen_ai.usage.input_tokens" not in attrs
    totals = task.totals
    assert (totals.unpriced_calls, totals.input_tokens, totals.output_tokens) == (1, 0, 0)
    assert totals.cost_usd == 0


ZERO = {
    # Embeddings have no output: OpenAI's usage has no completion_tokens for them.
    "openai-embeddings": (_openai_embeddings, {"prompt_tokens": 8, "total_tokens": 8}, (8, 0), "0.00000016"),
    "mistral-embeddings": (
        _mistral_embeddings,
        {"prompt_tokens": 10, "total_tokens": 10},
        (10, 0),
        "0.000001",
    ),
    # Gemini's JSON leaves out a count that is 0 (proto3): a reply of no candidate tokens.
    "gemini-no-candidates": (_gemini, {"promptTokenCount": 9, "totalTokenCount": 9}, (9, 0), "0.0000009"),
    # Optional subsets absent: 0 cache reads, 0 cache writes.
    "bedrock-converse": (_converse, {"inputTokens": 10, "outputTokens": 5}, (10, 5), "0.0000018"),
    "anthropic": (_anthropic, {"input_tokens": 10, "output_tokens": 5}, (10, 5), "0.000105"),
}


@pytest.mark.parametrize(("call", "usage", "tokens", "cost"), list(ZERO.values()), ids=list(ZERO))
def test_a_count_defined_as_zero_for_its_api_may_be_left_out(
    call: Callable[[Any], Call], usage: Any, tokens: tuple[int, int], cost: str, cap: Capture
) -> None:
    """Where the API defines an absent count as 0 (embeddings' output, Gemini's zero counts, the
    cache subsets) the call stays exactly priced."""
    make = call(usage)
    with tokentrace.task("zero") as task:
        make(None)
    attrs = _attrs(cap)
    assert attrs["tokentrace.cost.status"] == "priced"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == tokens
    assert task.totals.cost_usd == Decimal(cost)


# --- streams ----------------------------------------------------------------------------------


class _Cut(httpx2.SyncByteStream):
    """A response body that breaks off after ``data``, as a dropped connection does."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self._data
        raise httpx2.ReadError("connection reset by peer")


def _cut_http(data: bytes) -> httpx2.Client:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=_Cut(data))

    return httpx2.Client(transport=httpx2.MockTransport(handler))


def _sse(events: list[dict[str, Any]], named: bool = False) -> bytes:
    return "".join(
        (f"event: {e['type']}\n" if named else "") + f"data: {json.dumps(e)}\n\n" for e in events
    ).encode()


_MESSAGE_START = {
    "type": "message_start",
    "message": {
        "id": "m1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": 25, "cache_read_input_tokens": 0, "output_tokens": 1},
    },
}
_TEXT = "The quick brown fox jumps over the lazy dog, and then it runs far away."


def _anthropic_events(text: str) -> list[dict[str, Any]]:
    words = text.split(" ")
    return [
        _MESSAGE_START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
            for piece in [words[0], *(" " + w for w in words[1:])]
        ),
    ]


def test_an_anthropic_stream_cut_before_message_delta_is_estimated_from_its_text(cap: Capture) -> None:
    """Cut after its text and before ``message_delta``: 25 input tokens (from ``message_start``),
    the output counted offline from the text seen (not the placeholder 1), flagged estimated."""
    http = _cut_http(_sse(_anthropic_events(_TEXT), named=True))
    client = anthropic.Anthropic(api_key="sk-ant-test", http_client=http, max_retries=0)
    seen: list[str] = []

    def read() -> None:
        stream = client.messages.create(
            model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "x"}], stream=True
        )
        seen.extend(event.delta.text for event in stream if event.type == "content_block_delta")

    # The SDK raises the dropped connection as its own APIConnectionError.
    with tokentrace.task("cut") as task, pytest.raises(anthropic.APIConnectionError):
        read()
    assert "".join(seen) == _TEXT
    output = count_text(_TEXT, "claude-sonnet-4-5")
    assert output == 17
    attrs = _attrs(cap)
    assert attrs["tokentrace.stream.end"] == "error"
    assert attrs["tokentrace.cost.status"] == "estimated"
    assert attrs["tokentrace.usage.estimated"] is True
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (25, output)
    # claude-sonnet-4-5: 25 x $3 + 17 x $15 per million
    assert task.totals.cost_usd == Decimal("0.00033")
    assert task.totals.estimated_calls == 1


def test_an_anthropic_stream_whose_message_delta_has_no_output_count_is_estimated(cap: Capture) -> None:
    """A ``message_delta`` without ``output_tokens`` leaves the placeholder unconfirmed: estimated."""
    events = [
        *_anthropic_events(_TEXT),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}},
        {"type": "message_stop"},
    ]
    body = _sse(events, named=True)
    headers = [("content-type", "text/event-stream")]
    replay = Replay([Interaction("POST", "https://api.anthropic.com/v1/messages", b"{}", 200, headers, body)])
    with tokentrace.task("no-final") as task:
        stream = anthropic_client(replay).messages.create(
            model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "x"}], stream=True
        )
        list(stream)
    attrs = _attrs(cap)
    assert attrs["tokentrace.cost.status"] == "estimated"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (25, 17)
    assert task.totals.estimated_calls == 1


def test_an_openai_stream_cut_before_its_usage_chunk_is_estimated(cap: Capture) -> None:
    """Cut mid-answer (include_usage asked, usage chunk never sent): estimated, never priced."""
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "usage": None,
    }
    words = _TEXT.split(" ")
    events = [
        {**chunk, "choices": [{"index": 0, "delta": {"content": piece}}]}
        for piece in [words[0], *(" " + w for w in words[1:])]
    ]
    client = openai.OpenAI(api_key="sk-test", http_client=_cut_http(_sse(events)), max_retries=0)

    def read() -> None:
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        list(stream)

    with tokentrace.task("cut") as task, pytest.raises(openai.APIConnectionError):
        read()
    attrs = _attrs(cap)
    assert attrs["tokentrace.stream.end"] == "error"
    assert attrs["tokentrace.cost.status"] == "estimated"
    assert attrs["tokentrace.usage.estimated"] is True
    assert attrs["gen_ai.usage.output_tokens"] == len(events)  # one token per chunk received
    assert task.totals.estimated_calls == 1


@pytest.mark.parametrize(
    "usage",
    [{}, {"prompt_tokens": None, "completion_tokens": None}, {"completion_tokens": 3}],
    ids=["empty", "nulls", "no-prompt"],
)
def test_an_openai_stream_whose_final_usage_lacks_a_count_is_estimated(usage: Any, cap: Capture) -> None:
    """A final usage chunk of ``{}``, nulls or no ``prompt_tokens``: the missing counts are counted
    offline (what it did report is kept), flagged estimated, never priced at $0."""
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    events = [
        {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": _TEXT}}]},
        {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**chunk, "choices": [], "usage": usage},
    ]
    body = _sse(events) + b"data: [DONE]\n\n"
    interaction = Interaction(
        "POST", "https://api.openai.com/v1/chat/completions", b"{}", 200,
        [("content-type", "text/event-stream")], body,
    )  # fmt: skip
    messages = [{"role": "user", "content": "x"}]
    with tokentrace.task("partial") as task:
        list(openai_client(Replay([interaction])).chat.completions.create(
            model="gpt-4o-mini", messages=messages, stream=True
        ))  # fmt: skip
    attrs = _attrs(cap)
    assert attrs["tokentrace.cost.status"] == "estimated"
    assert attrs["tokentrace.usage.estimated"] is True
    expected_output = usage.get("completion_tokens") or count_text(_TEXT, "gpt-4o-mini")
    assert expected_output == (3 if usage.get("completion_tokens") else 17)
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (8, expected_output)
    assert task.totals.cost_usd > 0
    assert task.totals.estimated_calls == 1


def test_a_gemini_stream_cut_before_its_last_chunk_is_estimated(cap: Capture) -> None:
    """Gemini's chunks before the last carry the prompt count only: a stream cut before its
    ``finishReason`` chunk is estimated from its text (9 input tokens as reported), never priced
    with 0 output tokens."""
    words = _TEXT.split(" ")
    chunks = [
        {
            "candidates": [{"content": {"parts": [{"text": piece}], "role": "model"}}],
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
            "modelVersion": "gemini-2.0-flash",
        }
        for piece in [words[0], *(" " + w for w in words[1:])]
    ]

    class Cut(httpx.SyncByteStream):  # the google-genai SDK is built on httpx
        def __iter__(self) -> Iterator[bytes]:
            yield _sse(chunks)
            raise httpx.ReadError("connection reset by peer")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Cut())

    http = genai_types.HttpOptions(
        api_version="v1beta", httpx_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    client = genai.Client(api_key="g-test", http_options=http)
    seen: list[str] = []

    def read() -> None:
        stream = client.models.generate_content_stream(model="gemini-2.0-flash", contents="x")
        seen.extend(chunk.text or "" for chunk in stream)

    with tokentrace.task("cut") as task, pytest.raises(httpx.ReadError):
        read()
    assert "".join(seen) == _TEXT
    attrs = _attrs(cap)
    assert attrs["tokentrace.stream.end"] == "error"
    assert attrs["tokentrace.cost.status"] == "estimated"
    assert attrs["tokentrace.usage.estimated"] is True
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (9, 17)
    # gemini-2.0-flash: 9 x $0.10 + 17 x $0.40 per million
    assert task.totals.cost_usd == Decimal("0.0000077")
    assert task.totals.estimated_calls == 1


# --- cache reads and writes over the same tokens ------------------------------------------------

_GATEWAY_USAGE = {
    "prompt_tokens": 2168,
    "completion_tokens": 100,
    "total_tokens": 2268,
    "prompt_tokens_details": {"cached_tokens": 2161, "cache_write_tokens": 2161},
}
_OVERLAP = "cache reads and cache writes together exceed input tokens"


def _gateway_call(usage: dict[str, Any], cap: Capture) -> tuple[dict[str, Any], tokentrace.Totals]:
    body = chat_completion_body(usage, model="google/gemini-2.5-flash")
    replay = Replay(synthetic("https://openrouter.ai/api/v1/chat/completions", body))
    client = openai.OpenAI(
        api_key="sk-test", base_url="https://openrouter.ai/api/v1", http_client=replay.sync_client()
    )
    with tokentrace.task("gateway") as task:
        client.chat.completions.create(
            model="google/gemini-2.5-flash", messages=[{"role": "user", "content": "x"}]
        )
    return _attrs(cap), task.totals


def test_a_gateway_reporting_reads_and_writes_over_the_same_tokens_keeps_the_call(cap: Capture) -> None:
    """OpenRouter serving Gemini: 2,161 cache reads and 2,161 cache writes of a 2,168-token prompt,
    and its own cost $0.000497. The counts are kept as reported, the cost is the gateway's, and
    the disagreement is noted on the span."""
    attrs, totals = _gateway_call({**_GATEWAY_USAGE, "cost": 0.000497}, cap)
    assert attrs["gen_ai.provider.name"] == "openrouter"
    assert attrs["tokentrace.cost.status"] == "priced"
    assert attrs["tokentrace.cost.source"] == "provider"
    assert attrs["tokentrace.cost.usd"] == 0.000497
    assert attrs["tokentrace.usage.problem"].startswith(_OVERLAP)
    assert (
        attrs["gen_ai.usage.input_tokens"],
        attrs["gen_ai.usage.cache_read.input_tokens"],
        attrs["gen_ai.usage.cache_write.input_tokens"],
        attrs["gen_ai.usage.output_tokens"],
    ) == (2168, 2161, 2161, 100)
    assert (totals.input_tokens, totals.output_tokens, totals.cost_usd) == (2168, 100, Decimal("0.000497"))
    assert (totals.unpriced_calls, totals.estimated_calls) == (0, 0)


def test_reads_and_writes_over_the_same_tokens_without_a_reported_cost_follow_the_overlap_rule(
    cap: Capture,
) -> None:
    """Without a reported cost the writes are taken to overlap the reads: the 7 input tokens not
    read from the cache at $0.30, 2,161 reads at $0.03, 2,161 writes at $0.25 and 100 output at
    $2.50 per million, flagged estimated (how the gateway billed the overlap is not known)."""
    pricing.set_prices(
        [
            pricing.Rates(
                model="google/gemini-2.5-flash",
                provider="openrouter",
                input=Decimal("0.30"),
                output=Decimal("2.50"),
                cache_read=Decimal("0.03"),
                cache_write=Decimal("0.25"),
            )
        ]
    )
    attrs, totals = _gateway_call(_GATEWAY_USAGE, cap)
    assert attrs["tokentrace.cost.status"] == "estimated"
    assert attrs["tokentrace.usage.problem"].startswith(_OVERLAP)
    assert "tokentrace.usage.estimated" not in attrs  # the counts are the gateway's own
    # 7 x 0.30 + 2,161 x 0.03 + 2,161 x 0.25 + 100 x 2.50 = 857.18 per million
    assert totals.cost_usd == Decimal("0.00085718")
    assert (totals.input_tokens, totals.output_tokens, totals.estimated_calls) == (2168, 100, 1)
