"""Streams consumed through raw responses: ``with_raw_response.create(stream=True).parse()`` and
``with_streaming_response.create(stream=True)`` then ``parse()``, as langchain-anthropic and the
OpenAI Agents SDK call them, replayed through the real openai and anthropic SDKs."""

from __future__ import annotations

import asyncio
import inspect
from decimal import Decimal
from typing import Any

import pytest

import tokentrace
from tests.support.cassettes import Replay
from tests.support.clients import anthropic_client, openai_client, recorded, request_kwargs
from tokentrace.testing import Capture

CHAT_STREAM = "dd-trace-py/tests/contrib/litellm/cassettes/completion_stream.yaml"
RESPONSES_STREAM = (
    "dd-trace-py/tests/contrib/openai/cassettes/v1/responses_stream_prompt_caching_cache_read.yaml"
)
MESSAGES_STREAM = "dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion_stream_cache_read.yaml"

USAGE_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "tokentrace.cost.usd",
    "tokentrace.cost.status",
    "tokentrace.stream.end",
)


def _usage(cap: Capture) -> dict[str, Any]:
    (span,) = cap.call_spans()
    attrs = dict(span.attributes or {})
    return {key: attrs.get(key) for key in (*USAGE_KEYS, "tokentrace.usage.estimated")}


def _client(provider: str, path: str, use_async: bool) -> tuple[Any, dict[str, Any]]:
    interactions = recorded(path)
    factory = openai_client if provider == "openai" else anthropic_client
    kwargs = request_kwargs(interactions[0], provider)
    kwargs["stream"] = True
    return factory(Replay(interactions), use_async=use_async), kwargs


def _create(client: Any, path: str, variant: str) -> Any:
    if path == MESSAGES_STREAM:
        resource = client.messages
    elif path == RESPONSES_STREAM:
        resource = client.responses
    else:
        resource = client.chat.completions
    return getattr(resource, variant).create if variant else resource.create


def _sync(provider: str, path: str, variant: str) -> tuple[int, tokentrace.Task]:
    client, kwargs = _client(provider, path, use_async=False)
    if path == RESPONSES_STREAM:
        kwargs = {"model": kwargs["model"], "stream": True, **kwargs.get("extra_body", {})}
    with tokentrace.task("raw-stream") as task:
        create = _create(client, path, variant)
        if variant == "with_streaming_response":
            with create(**kwargs) as raw:
                events = sum(1 for _ in raw.parse())
        elif variant == "with_raw_response":
            events = sum(1 for _ in create(**kwargs).parse())
        else:
            events = sum(1 for _ in create(**kwargs))
    return events, task


def _async(provider: str, path: str, variant: str) -> tuple[int, tokentrace.Task]:
    client, kwargs = _client(provider, path, use_async=True)
    if path == RESPONSES_STREAM:
        kwargs = {"model": kwargs["model"], "stream": True, **kwargs.get("extra_body", {})}

    async def main() -> tuple[int, tokentrace.Task]:
        events = 0
        async with tokentrace.task("raw-stream") as task:
            create = _create(client, path, variant)
            if variant == "with_streaming_response":
                async with create(**kwargs) as raw:
                    async for _ in await raw.parse():
                        events += 1
            elif variant == "with_raw_response":
                parsed = (await create(**kwargs)).parse()  # a coroutine in anthropic 2, not in openai
                async for _ in await parsed if inspect.isawaitable(parsed) else parsed:
                    events += 1
            else:
                async for _ in await create(**kwargs):
                    events += 1
        return events, task

    return asyncio.run(main())


CASES = [
    ("openai", CHAT_STREAM),
    ("openai", RESPONSES_STREAM),
    ("anthropic", MESSAGES_STREAM),
]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("variant", ["with_raw_response", "with_streaming_response"])
@pytest.mark.parametrize(("provider", "path"), CASES, ids=["openai-chat", "openai-responses", "anthropic"])
def test_a_parsed_raw_stream_is_recorded_like_the_plain_stream(
    cap: Capture, provider: str, path: str, variant: str, use_async: bool
) -> None:
    """The stream ``parse()`` returns is watched: the same events, usage, cost and task totals as
    the plain ``create(stream=True)`` of the same recording, and exactly one call span."""
    run = _async if use_async else _sync
    plain_events, plain_task = run(provider, path, "")
    plain = _usage(cap)
    cap.clear()
    events, task = run(provider, path, variant)
    assert events == plain_events > 0
    assert _usage(cap) == plain
    assert plain["tokentrace.cost.status"] == "priced"
    assert plain["tokentrace.stream.end"] == "completed"
    assert plain["tokentrace.usage.estimated"] is None
    assert task.totals == plain_task.totals
    assert task.totals.llm_calls == 1


def test_exact_figures_of_a_parsed_anthropic_raw_stream(cap: Capture) -> None:
    """claude-sonnet-4 through ``with_raw_response.create(stream=True).parse()``: 11 input + 1,031
    cache reads, 100 output = 11 x $3 + 1,031 x $0.30 + 100 x $15 per million = $0.0018423."""
    _sync("anthropic", MESSAGES_STREAM, "with_raw_response")
    usage = _usage(cap)
    assert usage["gen_ai.usage.input_tokens"] == 1042
    assert usage["gen_ai.usage.cache_read.input_tokens"] == 1031
    assert usage["gen_ai.usage.output_tokens"] == 100
    assert usage["tokentrace.cost.usd"] == 0.0018423


def test_exact_figures_of_a_parsed_responses_raw_stream(cap: Capture) -> None:
    """gpt-4o Responses through ``with_streaming_response`` then ``await parse()`` (the OpenAI Agents
    SDK's way): 125 input + 1,390 cached, 8 output = $0.00213."""
    _async("openai", RESPONSES_STREAM, "with_streaming_response")
    usage = _usage(cap)
    assert usage["gen_ai.usage.input_tokens"] == 1515
    assert usage["gen_ai.usage.cache_read.input_tokens"] == 1390
    assert usage["gen_ai.usage.output_tokens"] == 8
    assert usage["tokentrace.cost.usd"] == 0.00213


def test_parse_twice_hands_back_the_same_watched_stream(cap: Capture) -> None:
    """The SDK caches what ``parse()`` returns; tokentrace hands back the same proxy each time, and
    the call is recorded once."""
    client, kwargs = _client("openai", CHAT_STREAM, use_async=False)
    with tokentrace.task("twice") as task:
        raw = client.chat.completions.with_raw_response.create(**kwargs)
        first = raw.parse()
        assert raw.parse() is first
        assert sum(1 for _ in first) > 0
    assert task.totals.llm_calls == 1
    assert len(cap.call_spans()) == 1


def test_a_raw_stream_closed_early_is_estimated_from_what_was_read(cap: Capture) -> None:
    """A streaming response closed after three chunks (the usage chunk never read) is one call,
    flagged estimated, ended ``closed``: never a silent $0."""
    client, kwargs = _client("openai", CHAT_STREAM, use_async=False)
    with (
        tokentrace.task("early") as task,
        client.chat.completions.with_streaming_response.create(**kwargs) as raw,
    ):
        for _, _chunk in zip(range(3), raw.parse(), strict=False):
            pass
    usage = _usage(cap)
    assert usage["tokentrace.stream.end"] == "closed"
    assert usage["tokentrace.usage.estimated"] is True
    assert usage["tokentrace.cost.status"] == "estimated"
    assert task.totals.estimated_calls == 1
    assert task.totals.llm_calls == 1


def test_a_budget_counts_a_parsed_raw_stream(cap: Capture) -> None:
    """A task allowed one call stops the second raw streamed request before it is sent, after the
    first was settled at its exact cost."""
    client, kwargs = _client("anthropic", MESSAGES_STREAM, use_async=False)
    budget = tokentrace.Budget(max_llm_calls=1)
    with tokentrace.task("budgeted", budget=budget) as task:
        for _ in client.messages.with_raw_response.create(**kwargs).parse():
            pass
        with pytest.raises(tokentrace.BudgetExceeded):
            client.messages.with_raw_response.create(**kwargs)
    assert task.totals.llm_calls == 1
    assert task.totals.cost_usd == Decimal("0.0018423")
