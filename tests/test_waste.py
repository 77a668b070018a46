"""Waste signals: duplicate calls, retry waste and the cost split by token kind."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

import tokentrace
from tests.support.cassettes import Replay
from tests.support.clients import anthropic_client, openai_client, recorded, request_kwargs, spliced_error
from tokentrace.testing import Capture
from tokentrace.types import CostBreakdown

REASONING = "dd-trace-py/tests/contrib/litellm/cassettes/completion_reasoning.yaml"  # $0.0001452 a call
ONE = Decimal("0.0001452")
CACHED = "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_prompt_caching_cache_read.yaml"
CACHE_WRITE = "dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion_cache_write.yaml"


def test_identical_requests_in_a_task_are_duplicates(cap: Capture) -> None:
    """Three identical requests and one different: two duplicates costing two calls."""
    (interaction,) = recorded(REASONING)
    client = openai_client(Replay([interaction] * 4))
    kwargs = request_kwargs(interaction, "openai")
    other = {**kwargs, "messages": [{"role": "user", "content": "Something else?"}]}
    with tokentrace.task("chatty") as task:
        client.chat.completions.create(**kwargs)
        client.chat.completions.create(**other)
        client.chat.completions.create(**kwargs)
        client.chat.completions.create(**kwargs)
    assert (task.totals.duplicate_calls, task.totals.duplicate_cost_usd) == (2, 2 * ONE)
    flags = [dict(s.attributes or {}).get("tokentrace.duplicate") for s in cap.call_spans()]
    assert flags == [None, None, True, True]
    (span,) = cap.task_spans("chatty")
    attrs = dict(span.attributes or {})
    assert attrs["tokentrace.task.duplicate_calls"] == 2
    assert attrs["tokentrace.task.duplicate_cost.usd"] == float(2 * ONE)


def test_transport_options_do_not_make_requests_different() -> None:
    """timeout, extra_headers, metadata and user do not change the answer: still duplicates."""
    (interaction,) = recorded(REASONING)
    client = openai_client(Replay([interaction] * 2))
    kwargs = request_kwargs(interaction, "openai")
    with tokentrace.task("same") as task:
        client.chat.completions.create(**kwargs)
        client.chat.completions.create(**kwargs, timeout=30, extra_headers={"x-trace": "1"}, user="u1")
    assert task.totals.duplicate_calls == 1


def test_a_retry_after_a_failed_call_is_not_a_duplicate() -> None:
    """An identical request after one that raised is a retry of it, not a duplicate."""
    (interaction,) = recorded(REASONING)
    client = openai_client(Replay([spliced_error(500, interaction), interaction]))
    kwargs = request_kwargs(interaction, "openai")
    with tokentrace.task("retrying") as task:
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(**kwargs)
        client.chat.completions.create(**kwargs)
    assert task.totals.duplicate_calls == 0
    assert task.totals.llm_calls == 2


def test_sdk_retries_of_one_call_are_not_duplicates() -> None:
    """The SDK's own retry attempts belong to one call: retries=1, duplicates=0."""
    (interaction,) = recorded(REASONING)
    client = openai_client(Replay([spliced_error(503, interaction), interaction]), max_retries=1)
    with tokentrace.task("sdk-retry") as task:
        client.chat.completions.create(**request_kwargs(interaction, "openai"))
    assert (task.totals.retries, task.totals.duplicate_calls, task.totals.llm_calls) == (1, 0, 1)


def test_duplicates_across_sibling_tasks_count_for_their_parent_only() -> None:
    """Two children asking the same thing: each has none, their parent has one."""
    (interaction,) = recorded(REASONING)
    client = openai_client(Replay([interaction] * 2))
    kwargs = request_kwargs(interaction, "openai")
    with tokentrace.task("parent") as parent:
        with tokentrace.task("a") as a:
            client.chat.completions.create(**kwargs)
        with tokentrace.task("b") as b:
            client.chat.completions.create(**kwargs)
    assert (a.totals.duplicate_calls, b.totals.duplicate_calls, parent.totals.duplicate_calls) == (0, 0, 1)
    assert parent.totals.duplicate_cost_usd == ONE


def test_duplicate_detection_can_be_turned_off() -> None:
    """configure(detect_duplicates=False) stops hashing requests."""
    (interaction,) = recorded(REASONING)
    client = openai_client(Replay([interaction] * 2))
    kwargs = request_kwargs(interaction, "openai")
    tokentrace.configure(detect_duplicates=False)
    try:
        with tokentrace.task("nodup") as task:
            client.chat.completions.create(**kwargs)
            client.chat.completions.create(**kwargs)
    finally:
        tokentrace.configure(detect_duplicates=True)
    assert task.totals.duplicate_calls == 0


def test_digests_ignore_transport_options_and_see_content() -> None:
    """A digest is a 64-bit int that ignores timeout and metadata and changes with the content."""
    from tokentrace._core import requests as _requests

    def digest(**kwargs: object) -> int:
        return _requests.digest("openai", "chat", "gpt-4o", None, kwargs)

    messages = [{"role": "user", "content": "secret"}]
    a = digest(messages=messages)
    assert isinstance(a, int)
    assert a == digest(messages=[{"role": "user", "content": "secret"}], timeout=5, metadata={"k": "v"})
    assert a != digest(messages=[{"role": "user", "content": "secreT"}])
    assert a != digest(messages=messages, temperature=0)
    unpicklable = digest(messages=messages, response_format=lambda: None)
    assert isinstance(unpicklable, int)


def test_billed_calls_that_failed_are_retry_waste() -> None:
    """A length-cut parse() (billed, raised) then a successful call: the first is waste."""
    (cut,) = recorded(CACHED)
    (ok,) = recorded(REASONING)
    client = openai_client(Replay([cut, ok]))
    with tokentrace.task("retry-waste") as task:
        with pytest.raises(openai.LengthFinishReasonError):
            client.chat.completions.parse(**request_kwargs(cut, "openai"))
        client.chat.completions.create(**request_kwargs(ok, "openai"))
    totals = task.totals
    cut_model = next(m for m in totals.by_model.values() if m.retry_waste_cost_usd)
    assert totals.retry_waste_cost_usd == Decimal("0.00261") == cut_model.cost_usd
    assert totals.retry_waste_tokens == cut_model.input_tokens + cut_model.output_tokens
    assert totals.cost_usd == Decimal("0.00261") + ONE


def test_cost_breakdown_splits_input_cache_and_output_exactly(cap: Capture) -> None:
    """Anthropic cache write: 18 input, 2,055 cache-written, 100 output at Sonnet 4 rates."""
    (interaction,) = recorded(CACHE_WRITE)
    client = anthropic_client(Replay([interaction]))
    with tokentrace.task("context-tax") as task:
        client.messages.create(**request_kwargs(interaction, "anthropic"))
    parts = task.totals.cost_breakdown
    # $3 input, $3.75 cache write, $15 output per million tokens.
    assert parts == CostBreakdown(
        input_usd=Decimal("0.000054"),
        cache_read_usd=Decimal(0),
        cache_write_usd=Decimal("0.00770625"),
        output_usd=Decimal("0.0015"),
        other_usd=Decimal(0),
    )
    assert parts.total_usd == task.totals.cost_usd
    shares = parts.shares()
    assert round(shares["cache_write"], 4) == 0.8322
    (span,) = cap.task_spans("context-tax")
    attrs = dict(span.attributes or {})
    assert attrs["tokentrace.task.cost.cache_write.usd"] == 0.00770625
    assert attrs["tokentrace.task.cost.input.usd"] == 0.000054
    assert attrs["tokentrace.task.cost.output.usd"] == 0.0015
    assert attrs["tokentrace.task.cost.other.usd"] == 0.0


def test_provider_reported_costs_are_other_in_the_breakdown() -> None:
    """A gateway's own cost (OpenRouter usage.cost) cannot be split by token kind: it is "other"."""
    from tests.support.clients import chat_completion_body, synthetic

    body = chat_completion_body(
        {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "cost": 0.00042}
    )
    client = openai.OpenAI(
        api_key="k",
        base_url="https://openrouter.ai/api/v1",
        http_client=Replay(synthetic("https://openrouter.ai/api/v1/chat/completions", body)).sync_client(),
        max_retries=0,
    )
    with tokentrace.task("gateway") as task:
        client.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert task.totals.cost_breakdown == CostBreakdown(other_usd=Decimal("0.00042"))
