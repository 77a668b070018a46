"""OpenAI Chat Completions through the real openai SDK, replayed from recordings."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
from decimal import Decimal
from pathlib import Path

import openai
import pytest

import tokentrace
from tests.support.cassettes import Interaction, Replay
from tests.support.clients import (
    chat_completion_body,
    openai_client,
    recorded,
    request_kwargs,
    spliced_error,
    synthetic,
    with_connect_error_first,
)
from tests.support.clock import set_price_clock
from tests.support.repricing import assert_reprices_to_itself
from tokentrace import pricing
from tokentrace.integrations.openai import gateway_for
from tokentrace.testing import Capture

CACHED = "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_prompt_caching_cache_read.yaml"
REASONING = "dd-trace-py/tests/contrib/litellm/cassettes/completion_reasoning.yaml"
STREAM_USAGE = "dd-trace-py/tests/contrib/litellm/cassettes/completion_stream.yaml"
STREAM_NO_USAGE = "dd-trace-py/tests/cassettes/openai/openai_chat_completions_post_01c947d6.yaml"
ERROR_401 = "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_error.yaml"


def _attrs(cap: Capture) -> dict[str, object]:
    (span,) = cap.call_spans()
    return dict(span.attributes or {})


def test_cached_input_is_priced_at_the_cached_rate(cap: Capture) -> None:
    """gpt-4o: 68 uncached x $2.50 + 1,152 cached x $1.25 + 100 output x $10 per million = $0.00261."""
    (interaction,) = recorded(CACHED)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("cached") as task:
        client.chat.completions.create(**request_kwargs(interaction, "openai"))
    attrs = _attrs(cap)
    assert attrs["gen_ai.usage.input_tokens"] == 1220
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1152
    assert attrs["gen_ai.usage.output_tokens"] == 100
    assert attrs["tokentrace.cost.usd"] == 0.00261
    assert attrs["tokentrace.cost.status"] == "priced"
    assert attrs["tokentrace.cost.source"] == "genai-prices"
    assert task.totals.cost_usd == Decimal("0.00261")
    assert task.totals.cache_read_tokens == 1152


def test_with_raw_response_is_priced_from_the_parsed_body(cap: Capture) -> None:
    """``with_raw_response.create``: the same $0.00261, and ``parse()`` returns the object tokentrace read."""
    (interaction,) = recorded(CACHED)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("raw") as task:
        raw = client.chat.completions.with_raw_response.create(**request_kwargs(interaction, "openai"))
        completion = raw.parse()
    assert raw.headers is not None
    assert completion.usage.prompt_tokens == 1220
    assert raw.parse() is completion
    attrs = _attrs(cap)
    assert attrs["gen_ai.usage.input_tokens"] == 1220
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1152
    assert attrs["tokentrace.cost.status"] == "priced"
    assert task.totals.cost_usd == Decimal("0.00261")


def test_async_with_raw_response_is_priced_too(cap: Capture) -> None:
    (interaction,) = recorded(CACHED)
    client = openai_client(Replay([interaction]), use_async=True)

    async def main() -> Decimal:
        async with tokentrace.task("raw-async") as task:
            create = client.chat.completions.with_raw_response.create
            raw = await create(**request_kwargs(interaction, "openai"))
            raw.parse()
        return task.totals.cost_usd

    assert asyncio.run(main()) == Decimal("0.00261")
    assert _attrs(cap)["tokentrace.cost.status"] == "priced"


def test_streamed_with_raw_response_is_read_from_the_parsed_stream(cap: Capture) -> None:
    """A streamed raw response's ``parse()`` returns the stream, watched: its usage chunk's 13
    input and 20 output tokens, priced (tests/integrations/test_raw_streams.py covers the rest)."""
    (interaction,) = recorded(STREAM_USAGE)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("raw-stream") as task:
        raw = client.chat.completions.with_raw_response.create(**request_kwargs(interaction, "openai"))
        assert len(list(raw.parse())) == 22
    attrs = _attrs(cap)
    assert attrs["tokentrace.cost.status"] == "priced"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (13, 20)
    assert task.totals.llm_calls == 1
    assert task.totals.unpriced_calls == 0


def test_async_with_streaming_response_is_priced_from_the_applications_parse(cap: Capture) -> None:
    """``AsyncOpenAI ... with_streaming_response`` over real HTTP: priced when ``await parse()``
    reads the body: gpt-4o-mini, 123 in x $0.15 + 17 out x $0.60 per million = $0.00002865."""
    from tokentrace._cli.demo import RECORDINGS
    from tokentrace.testing import Recorded, ReplayServer

    body = (RECORDINGS / "openai_chat.json").read_bytes()

    async def main() -> tokentrace.Task:
        with ReplayServer({"/v1/chat/completions": [Recorded(body)]}) as server:
            client = openai.AsyncOpenAI(api_key="sk-test", base_url=server.url + "/v1", max_retries=0)
            messages = [{"role": "user", "content": "hi"}]
            async with tokentrace.task("streaming-response") as task:
                create = client.chat.completions.with_streaming_response.create
                async with create(model="gpt-4o-mini", messages=messages) as raw:
                    completion = await raw.parse()
        assert completion.usage is not None
        return task

    task = asyncio.run(main())
    assert _attrs(cap)["tokentrace.cost.status"] == "priced"
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, Decimal("0.00002865"))


def test_reasoning_tokens_are_inside_output_and_reported_beside_it(cap: Capture) -> None:
    """o3-mini: 12 input x $1.10 + 30 output (15 of them reasoning) x $4.40 per million = $0.0001452."""
    (interaction,) = recorded(REASONING)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("reasoning") as task:
        client.chat.completions.create(**request_kwargs(interaction, "openai"))
    attrs = _attrs(cap)
    assert attrs["gen_ai.usage.output_tokens"] == 30
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 15
    assert attrs["gen_ai.response.model"] == "o3-mini-2025-01-31"
    assert task.totals.reasoning_tokens == 15
    assert task.totals.cost_usd == Decimal("0.0001452")


def test_call_span_is_named_and_typed_per_the_genai_convention(cap: Capture) -> None:
    """The call span is a CLIENT span named '{operation} {request model}' with int token counts."""
    (interaction,) = recorded(REASONING)
    with tokentrace.task("naming"):
        openai_client(Replay([interaction])).chat.completions.create(**request_kwargs(interaction, "openai"))
    (span,) = cap.call_spans()
    assert span.name == "chat o3-mini"
    assert span.kind.name == "CLIENT"
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["tokentrace.task.name"] == "naming"
    assert type(attrs["tokentrace.retries"]) is int
    assert type(attrs["tokentrace.cost.usd"]) is float


def test_stream_usage_comes_from_the_final_usage_chunk(cap: Capture) -> None:
    """A stream that asked for usage reports the provider's numbers, not an estimate."""
    (interaction,) = recorded(STREAM_USAGE)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("stream") as task:
        chunks = list(client.chat.completions.create(**request_kwargs(interaction, "openai")))
    assert chunks
    attrs = _attrs(cap)
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (13, 20)
    assert "tokentrace.usage.estimated" not in attrs
    assert attrs["tokentrace.stream.end"] == "completed"
    assert task.totals.estimated_calls == 0
    assert task.totals.output_tokens == 20


def test_stream_without_usage_is_counted_offline_and_flagged(cap: Capture) -> None:
    """Without a usage chunk the tokens are counted with the o200k/cl100k tokenizer and marked estimated."""
    (interaction,) = recorded(STREAM_NO_USAGE)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("estimate") as task:
        text = "".join(
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(**request_kwargs(interaction, "openai"))
            if c.choices
        )
    attrs = _attrs(cap)
    assert attrs["tokentrace.usage.estimated"] is True
    assert attrs["tokentrace.cost.status"] == "estimated"
    from tokentrace._tokens.tokenize import count_text

    assert attrs["gen_ai.usage.output_tokens"] == count_text(text, "gpt-3.5-turbo") > 0
    assert task.totals.estimated_calls == 1


def test_stream_that_asked_for_usage_and_closed_early_counts_one_token_per_chunk(cap: Capture) -> None:
    """Read lightly (usage only), a stream cut before its usage chunk estimates 1 token per chunk seen."""
    (interaction,) = recorded(STREAM_USAGE)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("early") as task:
        stream = client.chat.completions.create(**request_kwargs(interaction, "openai"))
        for _ in zip(range(3), stream, strict=False):
            pass
        stream.close()
    attrs = _attrs(cap)
    assert attrs["tokentrace.stream.end"] == "closed"
    assert attrs["tokentrace.usage.estimated"] is True
    assert attrs["gen_ai.usage.output_tokens"] == 3
    assert task.totals.output_tokens == 3
    assert task.totals.estimated_calls == 1


def test_stream_that_asked_for_usage_from_a_server_that_ignores_it_is_counted_from_its_text(
    cap: Capture,
) -> None:
    """Chunks without a ``usage`` field: the text is kept and counted, as for a stream that never asked."""
    (interaction,) = recorded(STREAM_NO_USAGE)
    client = openai_client(Replay([interaction]))
    kwargs = request_kwargs(interaction, "openai")
    kwargs["stream_options"] = {"include_usage": True}
    with tokentrace.task("ignored"):
        text = "".join(
            c.choices[0].delta.content or "" for c in client.chat.completions.create(**kwargs) if c.choices
        )
    attrs = _attrs(cap)
    from tokentrace._tokens.tokenize import count_text

    assert attrs["tokentrace.usage.estimated"] is True
    assert attrs["gen_ai.usage.output_tokens"] == count_text(text, "gpt-3.5-turbo") > 3


def test_breaking_out_of_a_loop_and_iterating_again_accounts_the_whole_stream(cap: Capture) -> None:
    """A ``for`` loop left with ``break`` does not end the call: the next loop gets the usage chunk."""
    (interaction,) = recorded(STREAM_USAGE)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("resume") as task:
        stream = client.chat.completions.create(**request_kwargs(interaction, "openai"))
        first = []
        for chunk in stream:
            first.append(chunk)
            if len(first) == 5:
                break
        rest = list(stream)
    assert len(first) + len(rest) == 22
    attrs = _attrs(cap)
    assert attrs["tokentrace.stream.end"] == "completed"
    assert "tokentrace.usage.estimated" not in attrs
    assert task.totals.output_tokens == 20


def test_chat_completions_stream_helper_is_priced_exactly(cap: Capture) -> None:
    """``chat.completions.stream()`` runs ``create(stream=True)`` underneath: 13 in, 20 out, $0.0000365."""
    (interaction,) = recorded(STREAM_USAGE)
    client = openai_client(Replay([interaction]))
    kwargs = request_kwargs(interaction, "openai")
    del kwargs["stream"]
    with tokentrace.task("helper") as task, client.chat.completions.stream(**kwargs) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_completion()
    assert "content.done" in events
    assert final.usage is not None
    assert final.usage.completion_tokens == 20
    attrs = _attrs(cap)
    assert attrs["tokentrace.stream.end"] == "completed"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (13, 20)
    assert task.totals.cost_usd == Decimal("0.0000365")


def test_stream_closed_early_ends_its_span_once_with_what_was_seen(cap: Capture) -> None:
    """Closing a stream half-way ends the call span once, marked 'closed'."""
    (interaction,) = recorded(STREAM_NO_USAGE)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("early") as task:
        stream = client.chat.completions.create(**request_kwargs(interaction, "openai"))
        next(iter(stream))
        next(stream)
        stream.close()
        stream.close()
    attrs = _attrs(cap)
    assert attrs["tokentrace.stream.end"] == "closed"
    assert task.totals.llm_calls == 1


def test_stream_abandoned_half_way_still_ends_its_span(cap: Capture) -> None:
    """A stream dropped unfinished is accounted when it is garbage-collected."""
    (interaction,) = recorded(STREAM_NO_USAGE)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("abandon") as task:
        stream = client.chat.completions.create(**request_kwargs(interaction, "openai"))
        for _ in zip(range(2), stream, strict=False):
            pass
        del stream
        gc.collect()
    attrs = _attrs(cap)
    assert attrs["tokentrace.stream.end"] == "abandoned"
    assert task.totals.llm_calls == 1


def test_stream_used_as_context_manager_ends_once(cap: Capture) -> None:
    """Leaving the stream's with-block ends its span exactly once."""
    (interaction,) = recorded(STREAM_USAGE)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("ctx"), client.chat.completions.create(**request_kwargs(interaction, "openai")) as s:
        for _ in s:
            pass
    assert len(cap.call_spans()) == 1
    assert _attrs(cap)["tokentrace.stream.end"] == "completed"


def test_a_recorded_error_is_a_failed_call_without_usage(cap: Capture) -> None:
    """A 401 raises the SDK's own error unchanged; the call span says error.type and no_usage."""
    import openai

    (interaction,) = recorded(ERROR_401)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("fails") as task, pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(**request_kwargs(interaction, "openai"))
    attrs = _attrs(cap)
    assert attrs["error.type"] == "AuthenticationError"
    assert attrs["tokentrace.cost.status"] == "no_usage"
    assert attrs["tokentrace.attempts"] == ("401",)
    assert task.totals.llm_calls == 1
    assert task.totals.unpriced_calls == 0


def test_retry_after_a_429_counts_both_attempts(cap: Capture) -> None:
    """Spliced: a recorded error body served as 429, then a recorded success; the SDK retries once."""
    (success,) = recorded(CACHED)
    (error,) = recorded(ERROR_401)
    client = openai_client(Replay([spliced_error(429, error), success]), max_retries=2)
    with tokentrace.task("retry") as task:
        client.chat.completions.create(**request_kwargs(success, "openai"))
    (span,) = cap.call_spans()
    attrs = dict(span.attributes or {})
    assert attrs["tokentrace.retries"] == 1
    assert attrs["tokentrace.attempts"] == ("429", "200")
    assert [e.attributes["tokentrace.attempt.outcome"] for e in span.events] == ["429", "200"]
    assert attrs["gen_ai.usage.input_tokens"] == 1220
    assert task.totals.retries == 1
    assert task.totals.llm_calls == 1
    assert task.totals.cost_usd == Decimal("0.00261")


def test_retry_after_a_connection_error_counts_both_attempts(cap: Capture) -> None:
    """A real httpx2.ConnectError on the first attempt is retried by the SDK and counted."""
    (success,) = recorded(CACHED)
    client = openai_client(with_connect_error_first([success]), max_retries=1)
    with tokentrace.task("retry") as task:
        client.chat.completions.create(**request_kwargs(success, "openai"))
    assert _attrs(cap)["tokentrace.attempts"] == ("ConnectError", "200")
    assert task.totals.retries == 1


def test_async_client_records_the_same_as_sync(cap: Capture) -> None:
    """The async client gives the same span attributes and totals as the sync one."""
    (interaction,) = recorded(CACHED)

    async def run() -> tokentrace.Totals:
        client = openai_client(Replay([interaction]), use_async=True)
        async with tokentrace.task("async") as task:
            await client.chat.completions.create(**request_kwargs(interaction, "openai"))
        return task.totals

    totals = asyncio.run(run())
    assert totals.cost_usd == Decimal("0.00261")
    assert _attrs(cap)["gen_ai.usage.cache_read.input_tokens"] == 1152


def test_async_stream_is_accounted_when_exhausted(cap: Capture) -> None:
    """An async stream with a usage chunk reports the provider's numbers."""
    (interaction,) = recorded(STREAM_USAGE)

    async def run() -> tokentrace.Totals:
        client = openai_client(Replay([interaction]), use_async=True)
        async with tokentrace.task("astream") as task:
            stream = await client.chat.completions.create(**request_kwargs(interaction, "openai"))
            async for _ in stream:
                pass
        return task.totals

    totals = asyncio.run(run())
    assert (totals.input_tokens, totals.output_tokens) == (13, 20)


def test_async_retry_counts_attempts(cap: Capture) -> None:
    """The async client's retries are counted like the sync client's."""
    (success,) = recorded(CACHED)
    (error,) = recorded(ERROR_401)

    async def run() -> int:
        client = openai_client(Replay([spliced_error(500, error), success]), use_async=True, max_retries=1)
        async with tokentrace.task("aretry") as task:
            await client.chat.completions.create(**request_kwargs(success, "openai"))
        return task.totals.retries

    assert asyncio.run(run()) == 1
    assert _attrs(cap)["tokentrace.attempts"] == ("500", "200")


def test_application_level_reinvocations_are_separate_calls(cap: Capture) -> None:
    """Calling create() twice in one task is two LLM calls with no retries."""
    (interaction,) = recorded(REASONING)
    client = openai_client(Replay([interaction, interaction]))
    with tokentrace.task("twice") as task:
        client.chat.completions.create(**request_kwargs(interaction, "openai"))
        client.chat.completions.create(**request_kwargs(interaction, "openai"))
    assert task.totals.llm_calls == 2
    assert task.totals.retries == 0
    assert task.totals.cost_usd == Decimal("0.0002904")


def test_client_side_refusal_is_not_an_llm_call(cap: Capture) -> None:
    """A call the SDK rejects before sending (missing arguments) raises unchanged and is not counted."""
    client = openai_client(Replay([]))
    with tokentrace.task("bad") as task, pytest.raises(TypeError):
        client.chat.completions.create(model="gpt-4o")  # type: ignore[call-overload]
    assert task.totals.llm_calls == 0


RESPONSES_REASONING = "dd-trace-py/tests/contrib/openai/cassettes/v1/response_reasoning_tokens.yaml"
RESPONSES_STREAM_CACHED = (
    "dd-trace-py/tests/contrib/openai/cassettes/v1/responses_stream_prompt_caching_cache_read.yaml"
)
EMBEDDINGS = (
    "opentelemetry-python-contrib/instrumentation-genai/opentelemetry-instrumentation-openai-v2/"
    "tests/cassettes/test_embeddings_with_batch_input.yaml"
)


def _responses_kwargs(interaction: object) -> dict[str, object]:
    body = interaction.request_json()  # type: ignore[attr-defined]
    kwargs = {name: body.pop(name) for name in ("model", "input", "stream") if name in body}
    if body:
        kwargs["extra_body"] = body
    return kwargs


def test_responses_api_reasoning_is_priced_at_the_output_rate(cap: Capture) -> None:
    """gpt-5-mini via the Responses API: 54 x $0.25 + 164 output (128 reasoning) x $2 per million."""
    (interaction,) = recorded(RESPONSES_REASONING)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("responses") as task:
        client.responses.create(**_responses_kwargs(interaction))
    attrs = _attrs(cap)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 128
    assert (task.totals.input_tokens, task.totals.output_tokens) == (54, 164)
    assert task.totals.cost_usd == Decimal("0.0003415")


_DD_OPENAI = "dd-trace-py/tests/contrib/openai/cassettes/v1"
CACHE_WRITE_CHAT = f"{_DD_OPENAI}/chat_completion_prompt_caching_5_6_cache_write.yaml"
CACHE_WRITE_RESPONSES = f"{_DD_OPENAI}/responses_prompt_caching_5_6_cache_write.yaml"


@pytest.mark.parametrize("path", [CACHE_WRITE_CHAT, CACHE_WRITE_RESPONSES], ids=["chat", "responses"])
def test_cache_writes_are_priced_at_the_cache_write_rate(path: str, cap: Capture) -> None:
    """gpt-5.6-sol: 3 uncached x $4 + 1,217 cache writes x $5 + 100 output x $20 per million =
    $0.008097, whether Chat Completions (``prompt_tokens_details``) or the Responses API
    (``input_tokens_details``) reports the writes."""
    (interaction,) = recorded(path)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("cache-write") as task:
        if path == CACHE_WRITE_RESPONSES:
            client.responses.create(**_responses_kwargs(interaction))
        else:
            client.chat.completions.create(**request_kwargs(interaction, "openai"))
    attrs = _attrs(cap)
    assert attrs["gen_ai.usage.input_tokens"] == 1220
    assert attrs["gen_ai.usage.cache_write.input_tokens"] == 1217
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 0
    assert attrs["tokentrace.cost.usd"] == 0.008097
    assert task.totals.cache_write_tokens == 1217
    assert task.totals.cost_usd == Decimal("0.008097")


def test_responses_stream_takes_usage_from_response_completed(cap: Capture) -> None:
    """A streamed Responses call: 125 x $2.50 + 1,390 cached x $1.25 + 8 x $10 per million = $0.00213."""
    (interaction,) = recorded(RESPONSES_STREAM_CACHED)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("responses-stream") as task:
        for _ in client.responses.create(**_responses_kwargs(interaction)):
            pass
    attrs = _attrs(cap)
    assert attrs["tokentrace.stream.end"] == "completed"
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1390
    assert task.totals.cost_usd == Decimal("0.00213")


def test_responses_stream_helper_is_priced_exactly(cap: Capture) -> None:
    """``responses.stream()`` (sync and async) runs ``create(stream=True)`` underneath: $0.00213."""
    (interaction,) = recorded(RESPONSES_STREAM_CACHED)
    kwargs = _responses_kwargs(interaction)
    del kwargs["stream"]
    client = openai_client(Replay([interaction]))
    with tokentrace.task("helper") as task, client.responses.stream(**kwargs) as stream:
        final = stream.get_final_response()
    assert final.usage is not None
    assert final.usage.output_tokens == 8

    async def run() -> tokentrace.Totals:
        client = openai_client(Replay([interaction]), use_async=True)
        async with tokentrace.task("async-helper") as task, client.responses.stream(**kwargs) as stream:
            await stream.get_final_response()
        return task.totals

    async_totals = asyncio.run(run())
    for span in cap.call_spans():
        attrs = dict(span.attributes or {})
        assert attrs["tokentrace.stream.end"] == "completed"
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1390
    assert len(cap.call_spans()) == 2
    assert task.totals.cost_usd == async_totals.cost_usd == Decimal("0.00213")


def test_embeddings_are_input_only_calls(cap: Capture) -> None:
    """text-embedding-3-small: 24 input tokens x $0.02 per million, operation 'embeddings'."""
    (interaction,) = recorded(EMBEDDINGS)
    body = interaction.request_json()
    client = openai_client(Replay([interaction]))
    with tokentrace.task("embed") as task:
        client.embeddings.create(model=body["model"], input=body["input"])
    (span,) = cap.call_spans()
    assert span.name == "embeddings text-embedding-3-small"
    attrs = dict(span.attributes or {})
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (24, 0)
    assert task.totals.cost_usd == Decimal("0.00000048")


def test_parse_helper_is_recorded_once(cap: Capture) -> None:
    """chat.completions.parse is one call with the provider's usage, however the SDK builds it."""
    (interaction,) = recorded(REASONING)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("parse") as task:
        parsed = client.chat.completions.parse(**request_kwargs(interaction, "openai"))
    assert type(parsed).__name__.startswith("ParsedChatCompletion")
    assert len(cap.call_spans()) == 1
    assert task.totals.llm_calls == 1
    assert task.totals.cost_usd == Decimal("0.0001452")


def test_a_billed_response_that_parse_rejects_is_still_charged(cap: Capture) -> None:
    """parse() raising LengthFinishReasonError after a billed response still records its cost."""
    import openai

    (interaction,) = recorded(CACHED)  # finish_reason "length"
    client = openai_client(Replay([interaction]))
    with tokentrace.task("cut") as task, pytest.raises(openai.LengthFinishReasonError):
        client.chat.completions.parse(**request_kwargs(interaction, "openai"))
    attrs = _attrs(cap)
    assert attrs["error.type"] == "LengthFinishReasonError"
    assert attrs["tokentrace.cost.status"] == "priced"
    assert task.totals.cost_usd == Decimal("0.00261")


def test_async_responses_parse_is_recorded(cap: Capture) -> None:
    """responses.parse on the async client reports the Responses API usage."""
    (interaction,) = recorded(RESPONSES_REASONING)

    async def run() -> tokentrace.Totals:
        client = openai_client(Replay([interaction]), use_async=True)
        async with tokentrace.task("aparse") as task:
            await client.responses.parse(**_responses_kwargs(interaction))
        return task.totals

    totals = asyncio.run(run())
    assert (totals.llm_calls, totals.reasoning_tokens) == (1, 128)
    assert totals.cost_usd == Decimal("0.0003415")


DEEPSEEK = "dd-trace-py/tests/contrib/openai/cassettes/v1/deepseek_completion.yaml"
OPENROUTER = "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_openrouter.yaml"
OPENROUTER_BYOK = "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_openrouter_byok.yaml"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (OPENROUTER, Decimal("0.00000537")),  # usage.cost, upstream included
        (OPENROUTER_BYOK, Decimal("0.0000063")),  # usage.cost 0 + upstream_inference_cost on your key
    ],
    ids=["credits", "byok"],
)
def test_gateway_reported_cost_is_recorded_not_recomputed(path: str, expected: Decimal, cap: Capture) -> None:
    """OpenRouter's own usage.cost is the call's cost, source 'provider', provider 'openrouter'."""
    import openai

    (interaction,) = recorded(path)
    client = openai.OpenAI(
        api_key="sk-test",
        base_url="https://openrouter.ai/api/v1",
        http_client=Replay([interaction]).sync_client(),
    )
    with tokentrace.task("gateway") as task:
        client.chat.completions.create(**request_kwargs(interaction, "openai"))
    attrs = _attrs(cap)
    assert attrs["gen_ai.provider.name"] == "openrouter"
    assert attrs["tokentrace.cost.source"] == "provider"
    assert attrs["tokentrace.cost.status"] == "priced"
    assert task.totals.cost_usd == expected


@pytest.mark.parametrize(
    ("base_url", "provider"),
    [
        ("https://api.deepseek.com", "deepseek"),
        ("https://api.together.xyz/v1", "together"),
        ("https://api.fireworks.ai/inference/v1", "fireworks"),
        ("https://api.groq.com/openai/v1", "groq"),
        ("https://api.mistral.ai/v1", "mistral_ai"),
        ("https://api.x.ai/v1", "x_ai"),
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("https://acme.openai.azure.com/openai", "azure.ai.openai"),
        ("https://generativelanguage.googleapis.com/v1beta/openai/", "gcp.gemini"),
        ("http://localhost:11434/v1", "ollama"),
        ("http://localhost:8000/v1", None),  # vLLM, SGLang: priced by a SelfHosted entry, or as openai
        ("https://api.deepseek.com.example.net/v1", None),  # a look-alike host is not DeepSeek
        ("https://llm-proxy.internal/v1", None),
    ],
)
def test_openai_compatible_endpoints_are_named_by_their_host(base_url: str, provider: str | None) -> None:
    assert gateway_for(base_url) == provider


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (
            "12:00",
            Decimal("0.000111"),
        ),  # standard hours, 00:30-16:30 UTC: 20 x $0.27 + 96 x $1.10 per million
        ("20:00", Decimal("0.0000555")),  # off-peak hours, 16:30-00:30 UTC: 20 x $0.135 + 96 x $0.55
    ],
    ids=["standard", "off-peak"],
)
def test_deepseek_through_the_openai_sdk_is_priced_from_deepseeks_table(
    when: str, expected: Decimal, cap: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deepseek-chat is priced from DeepSeek's table at the rates in force when the call is made."""
    set_price_clock(monkeypatch, when)
    (interaction,) = recorded(DEEPSEEK)
    client = openai.OpenAI(
        api_key="sk-test",
        base_url="https://api.deepseek.com",
        http_client=Replay([interaction]).sync_client(),
    )
    with tokentrace.task("deepseek") as task:
        client.chat.completions.create(**request_kwargs(interaction, "openai"))
    attrs = _attrs(cap)
    assert attrs["gen_ai.provider.name"] == "deepseek"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (20, 96)
    assert attrs["tokentrace.cost.status"] == "priced"
    assert task.totals.cost_usd == expected


_TIER_CASSETTES = "openllmetry/packages/opentelemetry-instrumentation-openai/tests/traces/cassettes"
PRIORITY_CHAT = f"{_TIER_CASSETTES}/test_chat/test_chat_with_service_tier.yaml"
PRIORITY_RESPONSES = f"{_TIER_CASSETTES}/test_responses/test_responses_with_service_tier.yaml"
STREAM_CACHED = (
    "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_stream_prompt_caching_cache_read.yaml"
)


def _served_at(interaction: Interaction, tier: str) -> Interaction:
    """The recorded response with its ``service_tier`` field set to ``tier`` (the only change)."""
    body = json.loads(interaction.body)
    body["service_tier"] = tier
    return dataclasses.replace(interaction, body=json.dumps(body).encode())


def test_calls_served_at_the_priority_tier_are_priced_at_its_rates(cap: Capture) -> None:
    """Three recorded gpt-5 calls that asked for and were served at ``service_tier="priority"``:
    $2.50 input and $20 output per million, twice the standard tier's $1.25 and $10.
    8 x 2.50 + 82 x 20 = $0.00166; 8 x 2.50 + 11 x 20 = $0.00024 (twice)."""
    interactions = recorded(PRIORITY_CHAT)
    client = openai_client(Replay(interactions))
    with tokentrace.task("priority") as task:
        for interaction in interactions:
            client.chat.completions.create(**request_kwargs(interaction, "openai"))
    spans = [dict(span.attributes or {}) for span in cap.call_spans()]
    assert [a["tokentrace.cost.usd"] for a in spans] == [0.00166, 0.00024, 0.00024]
    assert [a["openai.response.service_tier"] for a in spans] == ["priority"] * 3
    assert [a["gen_ai.usage.output_tokens"] for a in spans] == [82, 11, 11]
    assert task.totals.cost_usd == Decimal("0.00214")


def test_responses_served_at_the_priority_tier_are_priced_at_its_rates(cap: Capture) -> None:
    """The Responses API's recorded priority calls:
    8 x 2.50 + 15 x 20 = $0.00032 and 8 x 2.50 + 70 x 20 = $0.00142."""
    interactions = recorded(PRIORITY_RESPONSES)
    client = openai_client(Replay(interactions))
    with tokentrace.task("priority") as task:
        for interaction in interactions:
            body = interaction.request_json()
            client.responses.create(**body)
    spans = [dict(span.attributes or {}) for span in cap.call_spans()]
    assert [a["tokentrace.cost.usd"] for a in spans] == [0.00032, 0.00142]
    assert [a["openai.response.service_tier"] for a in spans] == ["priority"] * 2
    assert task.totals.cost_usd == Decimal("0.00174")


@pytest.mark.parametrize(
    ("tier", "cost"),
    [
        ("flex", Decimal("0.000415")),  # 8 x 0.625 + 82 x 5
        ("priority", Decimal("0.00166")),  # 8 x 2.50 + 82 x 20
        ("default", Decimal("0.00083")),  # 8 x 1.25 + 82 x 10
        ("scale", Decimal("0.00083")),  # no rates of its own in the price database: the standard ones
    ],
)
def test_the_tier_the_response_names_sets_the_rates(tier: str, cost: Decimal, cap: Capture) -> None:
    """The first recorded priority call, its response saying another tier: the response decides."""
    interaction = _served_at(recorded(PRIORITY_CHAT)[0], tier)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("tier") as task:
        client.chat.completions.create(**request_kwargs(interaction, "openai"))
    attrs = _attrs(cap)
    assert task.totals.cost_usd == cost
    assert attrs["tokentrace.cost.usd"] == float(cost)
    assert attrs["tokentrace.cost.status"] == "priced"
    if tier == "default":
        assert "openai.response.service_tier" not in attrs  # the standard tier is not repeated on every span
    else:
        assert attrs["openai.response.service_tier"] == tier


def test_tiers_in_one_process_are_priced_apart(cap: Capture, tmp_path: Path) -> None:
    """Priority, default, flex and priority again, one after another: each at its own rates (cached apart)."""
    first = recorded(PRIORITY_CHAT)[0]
    interactions = [first, _served_at(first, "default"), _served_at(first, "flex"), first]
    client = openai_client(Replay(interactions))
    with tokentrace.task("tiers") as task:
        for interaction in interactions:
            client.chat.completions.create(**request_kwargs(interaction, "openai"))
    costs = [span.attributes["tokentrace.cost.usd"] for span in cap.call_spans()]  # type: ignore[index]
    assert costs == [0.00166, 0.00083, 0.000415, 0.00166]
    assert task.totals.cost_usd == Decimal("0.004565")
    (model,) = task.totals.by_model.values()
    assert model.cost_usd == Decimal("0.004565")
    assert assert_reprices_to_itself(cap.call_spans(), tmp_path) == 4  # each at its own tier


@pytest.mark.parametrize(
    ("tier", "cost"),
    [
        # 140 uncached x 4.25 + 1,280 cached x 2.125 + 100 output x 17 per million
        ("priority", Decimal("0.005015")),
        # 140 x 2.50 + 1,280 x 1.25 + 100 x 10
        ("default", Decimal("0.00295")),
    ],
)
def test_a_stream_is_priced_at_the_tier_its_chunks_name(tier: str, cost: Decimal, cap: Capture) -> None:
    """A recorded gpt-4o stream with cached input and a usage chunk; for ``priority`` every chunk's
    ``service_tier`` reads ``priority`` instead of the recorded ``default`` (the only change)."""
    (interaction,) = recorded(STREAM_CACHED)
    body = interaction.body.replace(b'"service_tier":"default"', f'"service_tier":"{tier}"'.encode())
    interaction = dataclasses.replace(interaction, body=body)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("stream") as task:
        chunks = list(client.chat.completions.create(**request_kwargs(interaction, "openai")))
    assert len(chunks) > 2
    attrs = _attrs(cap)
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.cache_read.input_tokens"]) == (1420, 1280)
    assert task.totals.cost_usd == cost
    assert attrs["tokentrace.cost.usd"] == float(cost)
    assert attrs.get("openai.response.service_tier") == (None if tier == "default" else tier)


AUTO_TIER_STREAM = "logfire/tests/otel_integrations/cassettes/test_openai/test_responses_stream.yaml"


@pytest.mark.parametrize("events", [None, 1])
def test_a_responses_stream_asking_for_auto_is_priced_at_the_tier_that_served_it(
    events: int | None, cap: Capture
) -> None:
    """A recorded Responses stream whose first events echo the request's ``service_tier: auto`` and
    whose ``response.completed`` names ``default``: standard rates, no tier on the span, read to
    the end or closed after the first event (``auto`` is not a tier that serves a call)."""
    (interaction,) = recorded(AUTO_TIER_STREAM)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("auto"):
        stream = client.responses.create(**_responses_kwargs(interaction))
        for seen, _ in enumerate(stream, 1):
            if seen == events:
                break
        stream.close()
    attrs = _attrs(cap)
    assert attrs["tokentrace.stream.end"] == ("completed" if events is None else "closed")
    assert "openai.response.service_tier" not in attrs


AUDIO_INPUT = (
    "logfire/tests/otel_integrations/cassettes/test_openai/test_chat_completions_with_audio_input.yaml"
)


def test_audio_tokens_are_reported_and_priced_as_the_price_says(cap: Capture) -> None:
    """A recorded gpt-4o-audio-preview call with 2 audio tokens among 21 input: the span says so.
    The price database has only text rates for the model (21 x $2.50 + 1 x $10 per million =
    $0.0000625); with its published audio rates set, 19 x $2.50 + 2 x $40 + 1 x $10 = $0.0001375."""
    (interaction,) = recorded(AUDIO_INPUT)
    with tokentrace.task("audio") as task:
        openai_client(Replay([interaction])).chat.completions.create(**request_kwargs(interaction, "openai"))
    attrs = _attrs(cap)
    assert attrs["tokentrace.usage.audio.input_tokens"] == 2
    assert "tokentrace.usage.audio.output_tokens" not in attrs  # reported as 0
    assert task.totals.cost_usd == Decimal("0.0000625")
    pricing.set_prices(
        [
            pricing.Rates(
                model="gpt-4o-audio-preview*", input="2.5", output=10, audio_input=40, audio_output=80
            )
        ]
    )
    with tokentrace.task("audio-rates") as priced:
        openai_client(Replay([interaction])).chat.completions.create(**request_kwargs(interaction, "openai"))
    assert priced.totals.cost_usd == Decimal("0.0001375")


def test_gpt_audio_bills_audio_in_and_out_at_its_audio_rates(cap: Capture) -> None:
    """gpt-audio: 2,000 input tokens (1,024 cached, 1,500 audio) and 300 output (200 audio):
    500 x $2.50 + 1,500 x $32 + 100 x $10 + 200 x $64 per million = $0.06305, where text rates
    alone would say $0.008. (No recording has a gpt-audio call: the body is the API's shape.)"""
    usage = {
        "prompt_tokens": 2_000,
        "completion_tokens": 300,
        "total_tokens": 2_300,
        "prompt_tokens_details": {"cached_tokens": 1_024, "audio_tokens": 1_500},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 200},
    }
    uri = "https://api.openai.com/v1/chat/completions"
    client = openai_client(Replay(synthetic(uri, chat_completion_body(usage, model="gpt-audio-2025-08-28"))))
    with tokentrace.task("voice") as task:
        client.chat.completions.create(model="gpt-audio", messages=[{"role": "user", "content": "hi"}])
    attrs = _attrs(cap)
    assert (attrs["tokentrace.usage.audio.input_tokens"], attrs["tokentrace.usage.audio.output_tokens"]) == (
        1_500,
        200,
    )
    assert attrs["tokentrace.cost.usd"] == 0.06305
    assert task.totals.cost_usd == Decimal("0.06305")


_LITELLM_RESPONSES = (
    "openinference/python/instrumentation/openinference-instrumentation-litellm/tests/cassettes"
)
WEB_SEARCH = f"{_LITELLM_RESPONSES}/test_responses/test_responses_websearch_input.yaml"
FILE_SEARCH = "logfire/tests/otel_integrations/cassettes/test_openai_agents/test_file_search.yaml"


def test_a_responses_web_search_is_charged_per_tool_call(cap: Capture) -> None:
    """A recorded gpt-4.1 Responses call that ran the web search tool once: 310 x $2 + 290 x $8
    per million for its tokens, plus $10 per 1,000 web search calls = $0.01294 (the tokens alone
    are $0.00294); the span counts the search."""
    (interaction,) = recorded(WEB_SEARCH)
    with tokentrace.task("search") as task:
        openai_client(Replay([interaction])).responses.create(**_responses_kwargs(interaction))
    attrs = _attrs(cap)
    assert attrs["tokentrace.usage.web_search_requests"] == 1
    assert "tokentrace.usage.file_search_requests" not in attrs
    assert task.totals.cost_usd == Decimal("0.01294")
    assert task.totals.cost_breakdown.other_usd == Decimal("0.01")


def test_a_responses_file_search_is_charged_per_tool_call(cap: Capture) -> None:
    """A recorded gpt-4o agent turn that searched a vector store once, then answered:
    1,144 x $2.50 + 38 x $10 per million + $2.50 per 1,000 file search calls = $0.00574, and the
    answer 862 x $2.50 + 10 x $10 = $0.002255, $0.007995 in all; only the first call searched."""
    interactions = recorded(FILE_SEARCH)
    client = openai_client(Replay(interactions))
    with tokentrace.task("agent") as task:
        for interaction in interactions:
            client.responses.create(**_responses_kwargs(interaction))
    first, second = (dict(span.attributes or {}) for span in cap.call_spans())
    assert first["tokentrace.usage.file_search_requests"] == 1
    assert "tokentrace.usage.file_search_requests" not in second
    assert task.totals.cost_usd == Decimal("0.007995")
