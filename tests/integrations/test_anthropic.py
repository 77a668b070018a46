"""Anthropic Messages through the real anthropic SDK, replayed from recordings."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import anthropic
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tokentrace
from tests.support.cassettes import Interaction, Replay
from tests.support.clients import (
    anthropic_client,
    message_body,
    recorded,
    request_kwargs,
    spliced_error,
    synthetic,
)
from tests.support.repricing import assert_reprices_to_itself
from tokentrace import pricing
from tokentrace.integrations.anthropic import AnthropicIntegration
from tokentrace.testing import Capture

CACHE_READ = "dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion_cache_read.yaml"
CACHE_WRITE_1H = "dd-trace-py/tests/contrib/litellm/cassettes/completion_anthropic_cache_write_1h_ttl.yaml"
STREAM_CACHE = "dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion_stream_cache_read.yaml"
STREAM_THINKING = (
    "openinference/python/instrumentation/openinference-instrumentation-litellm/tests/cassettes/"
    "test_instrumentor/test_completion_streaming_with_extended_thinking_anthropic.yaml"
)
ERROR_401 = "dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion_invalid_api_key.yaml"


def _attrs(cap: Capture) -> dict[str, object]:
    (span,) = cap.call_spans()
    return dict(span.attributes or {})


def test_input_total_adds_cache_reads_to_anthropic_input_tokens(cap: Capture) -> None:
    """11 input + 2,055 cache read = 2,066 input; $3/M, $0.30/M read, $15/M output = $0.0021495."""
    (interaction,) = recorded(CACHE_READ)
    client = anthropic_client(Replay([interaction]))
    with tokentrace.task("cache") as task:
        client.messages.create(**request_kwargs(interaction, "anthropic"))
    attrs = _attrs(cap)
    assert attrs["gen_ai.usage.input_tokens"] == 2066
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 2055
    assert attrs["gen_ai.usage.cache_write.input_tokens"] == 0
    assert attrs["gen_ai.usage.output_tokens"] == 100
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert task.totals.cost_usd == Decimal("0.0021495")


def test_with_raw_response_is_priced_from_the_parsed_body(cap: Capture) -> None:
    """``messages.with_raw_response.create``: the same $0.0021495, and ``parse()`` gives the same object."""
    (interaction,) = recorded(CACHE_READ)
    client = anthropic_client(Replay([interaction]))
    with tokentrace.task("raw") as task:
        raw = client.messages.with_raw_response.create(**request_kwargs(interaction, "anthropic"))
        message = raw.parse()
    assert message.usage.cache_read_input_tokens == 2055
    assert raw.parse() is message
    assert _attrs(cap)["gen_ai.usage.input_tokens"] == 2066
    assert task.totals.cost_usd == Decimal("0.0021495")


def test_async_with_raw_response_is_priced_when_the_application_parses_it(cap: Capture) -> None:
    """anthropic's async raw response parses with a coroutine, which tokentrace never awaits for
    you: the call is priced from what your own ``await raw.parse()`` returns, $0.0021495."""
    (interaction,) = recorded(CACHE_READ)
    client = anthropic_client(Replay([interaction]), use_async=True)

    async def main() -> tuple[int, tokentrace.Task]:
        async with tokentrace.task("raw-async") as task:
            raw = await client.messages.with_raw_response.create(**request_kwargs(interaction, "anthropic"))
            assert task.totals.llm_calls == 0  # not accounted until parsed
            message = await raw.parse()
        return message.usage.cache_read_input_tokens, task

    read, task = asyncio.run(main())
    assert read == 2055
    assert _attrs(cap)["tokentrace.cost.status"] == "priced"
    assert task.totals.cost_usd == Decimal("0.0021495")


def _streaming_response(parse: bool) -> tokentrace.Task:
    """``with_streaming_response`` over real HTTP (the body is read only when the application reads it)."""
    from tokentrace._cli.demo import RECORDINGS
    from tokentrace.testing import Recorded, ReplayServer

    body = (RECORDINGS / "anthropic_messages_cached.json").read_bytes()
    with ReplayServer({"/v1/messages": [Recorded(body)]}) as server:
        client = anthropic.Anthropic(api_key="sk-ant-test", base_url=server.url, max_retries=0)
        request = {
            "model": "claude-sonnet-4-20250514",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "Hi"}],
        }
        with (
            tokentrace.task("streaming-response") as task,
            client.messages.with_streaming_response.create(**request) as raw,
        ):
            if parse:
                assert raw.parse().usage.output_tokens == 100
    return task


def test_with_streaming_response_is_priced_from_the_applications_own_parse(cap: Capture) -> None:
    """tokentrace reads none of the body itself; your ``parse()`` reads it, and the call is
    priced from its result: 11 in + 2,055 cache reads, 100 out = $0.0021495."""
    task = _streaming_response(parse=True)
    attrs = _attrs(cap)
    assert attrs["tokentrace.cost.status"] == "priced"
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 2055
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, Decimal("0.0021495"))


def test_with_streaming_response_closed_unparsed_is_counted_unpriced(cap: Capture) -> None:
    """A response the application never parses is still a call: counted, unpriced, never $0."""
    task = _streaming_response(parse=False)
    attrs = _attrs(cap)
    assert attrs["tokentrace.cost.status"] == "unpriced"
    assert "tokentrace.cost.usd" not in attrs
    assert (task.totals.llm_calls, task.totals.unpriced_calls) == (1, 1)


def test_five_minute_and_one_hour_cache_writes_use_their_own_multipliers(cap: Capture) -> None:
    """3 x $3 + 14 (5-min write) x $3.75 + 2,056 (1-hour write) x $6 + 459 x $15 per million = $0.0192825."""
    (interaction,) = recorded(CACHE_WRITE_1H)
    client = anthropic_client(Replay([interaction]))
    with tokentrace.task("write") as task:
        client.messages.create(**request_kwargs(interaction, "anthropic"))
    attrs = _attrs(cap)
    assert attrs["gen_ai.usage.input_tokens"] == 2073
    assert attrs["gen_ai.usage.cache_write.input_tokens"] == 2070
    assert attrs["tokentrace.usage.cache_write_1h.input_tokens"] == 2056
    assert task.totals.cache_write_tokens == 2070
    assert task.totals.cost_usd == Decimal("0.0192825")


def test_stream_usage_merges_message_start_and_message_delta(cap: Capture) -> None:
    """A streamed response's usage is message_start's, overridden by message_delta's."""
    (interaction,) = recorded(STREAM_CACHE)
    client = anthropic_client(Replay([interaction]))
    with tokentrace.task("stream") as task:
        for _ in client.messages.create(**request_kwargs(interaction, "anthropic")):
            pass
    attrs = _attrs(cap)
    assert attrs["gen_ai.usage.input_tokens"] == 11 + 1031
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1031
    assert attrs["gen_ai.usage.output_tokens"] == 100
    assert attrs["tokentrace.stream.end"] == "completed"
    assert task.totals.cost_usd == Decimal("0.0018423")


def test_streamed_thinking_tokens_are_reported_as_reasoning(cap: Capture) -> None:
    """Thinking tokens reported in output_tokens_details are the reasoning subset of output."""
    (interaction,) = recorded(STREAM_THINKING)
    client = anthropic_client(Replay([interaction]))
    with tokentrace.task("think") as task:
        for _ in client.messages.create(**request_kwargs(interaction, "anthropic")):
            pass
    attrs = _attrs(cap)
    assert attrs["gen_ai.usage.output_tokens"] == 93
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 53
    assert task.totals.reasoning_tokens == 53


def test_retry_after_a_5xx_counts_both_attempts(cap: Capture) -> None:
    """Spliced: a recorded error body served as 529 (overloaded), then a recorded success."""
    (success,) = recorded(CACHE_READ)
    (error,) = recorded(ERROR_401)
    client = anthropic_client(Replay([spliced_error(529, error), success]), max_retries=2)
    with tokentrace.task("retry") as task:
        client.messages.create(**request_kwargs(success, "anthropic"))
    attrs = _attrs(cap)
    assert attrs["tokentrace.attempts"] == ("529", "200")
    assert attrs["tokentrace.retries"] == 1
    assert task.totals.retries == 1
    assert task.totals.cost_usd == Decimal("0.0021495")


def test_async_client_and_stream_match_sync(cap: Capture) -> None:
    """The async client, streamed, reports the same usage as the sync client."""
    (interaction,) = recorded(STREAM_CACHE)

    async def run() -> tokentrace.Totals:
        client = anthropic_client(Replay([interaction]), use_async=True)
        async with tokentrace.task("async") as task:
            stream = await client.messages.create(**request_kwargs(interaction, "anthropic"))
            async for _ in stream:
                pass
        return task.totals

    totals = asyncio.run(run())
    assert totals.input_tokens == 1042
    assert totals.cost_usd == Decimal("0.0018423")


def _stream_kwargs(interaction: Interaction) -> dict[str, object]:
    kwargs = request_kwargs(interaction, "anthropic")
    del kwargs["stream"]  # the helper streams without being asked
    return kwargs


def test_stream_helper_is_recorded_once_and_priced_exactly(cap: Capture) -> None:
    """``messages.stream()`` posts itself, not through create(): 11 + 1,031 cached in, 100 out, $0.0018423."""
    (interaction,) = recorded(STREAM_CACHE)
    replay = Replay([interaction])
    client = anthropic_client(replay)
    with tokentrace.task("helper") as task:
        manager = client.messages.stream(**_stream_kwargs(interaction))
        assert replay.sent == []  # nothing is sent, and nothing recorded, before the manager is entered
        assert task.totals.llm_calls == 0
        with manager as stream:
            text = stream.get_final_text()
    assert text.startswith("A **system** is an organized collection")
    attrs = _attrs(cap)
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.usage.input_tokens"] == 1042
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1031
    assert attrs["gen_ai.usage.output_tokens"] == 100
    assert attrs["tokentrace.stream.end"] == "completed"
    assert attrs["tokentrace.cost.usd"] == 0.0018423
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, Decimal("0.0018423"))


def test_stream_helper_left_early_ends_its_span_once(cap: Capture) -> None:
    """Leaving the ``with`` block after two events closes the stream: one span, what was seen,
    an estimate (no text was delivered yet: 0 output tokens, not message_start's placeholder 1)."""
    (interaction,) = recorded(STREAM_CACHE)
    client = anthropic_client(Replay([interaction]))
    with tokentrace.task("early") as task, client.messages.stream(**_stream_kwargs(interaction)) as stream:
        for number, _ in enumerate(stream):
            if number == 1:
                break
    attrs = _attrs(cap)
    assert attrs["tokentrace.stream.end"] == "closed"
    assert attrs["gen_ai.usage.input_tokens"] == 1042  # message_start's usage
    assert attrs["gen_ai.usage.output_tokens"] == 0
    assert attrs["tokentrace.cost.status"] == "estimated"
    assert (task.totals.llm_calls, task.totals.estimated_calls) == (1, 1)


def test_stream_helper_never_entered_is_not_a_call(cap: Capture) -> None:
    """A manager that is built but never entered sends nothing and records nothing."""
    (interaction,) = recorded(STREAM_CACHE)
    replay = Replay([interaction])
    with tokentrace.task("idle") as task:
        anthropic_client(replay).messages.stream(**_stream_kwargs(interaction))
    assert (replay.sent, cap.call_spans(), task.totals.llm_calls) == ([], [], 0)


@pytest.mark.parametrize("beta", [False, True], ids=["messages", "beta.messages"])
def test_async_stream_helper_matches_sync(beta: bool, cap: Capture) -> None:
    """``async with client.messages.stream()`` (and the beta one) record the same call."""
    (interaction,) = recorded(STREAM_CACHE)

    async def run() -> tokentrace.Totals:
        client = anthropic_client(Replay([interaction]), use_async=True)
        api = client.beta.messages if beta else client.messages
        kwargs = _stream_kwargs(interaction)
        async with tokentrace.task("async-helper") as task, api.stream(**kwargs) as stream:
            message = await stream.get_final_message()
        assert message.usage.output_tokens == 100
        return task.totals

    totals = asyncio.run(run())
    assert (totals.llm_calls, totals.input_tokens, totals.cost_usd) == (1, 1042, Decimal("0.0018423"))
    assert _attrs(cap)["tokentrace.stream.end"] == "completed"


def test_a_budget_callback_retargets_a_stream_helper(cap: Capture) -> None:
    """A budget callback's arguments reach the helper's request: the second stream is sent as haiku."""
    (interaction,) = recorded(STREAM_CACHE)
    replay = Replay([interaction, interaction])
    client = anthropic_client(replay)
    budget = tokentrace.Budget(max_llm_calls=1, on_exceed=lambda breach: {"model": "claude-3-haiku-20240307"})
    with tokentrace.task("capped", budget=budget) as task:
        for _ in range(2):
            with client.messages.stream(**_stream_kwargs(interaction)) as stream:
                stream.until_done()
    sent = [json.loads(request.content)["model"] for request in replay.sent]
    assert sent == ["claude-sonnet-4-20250514", "claude-3-haiku-20240307"]
    assert all(json.loads(request.content)["stream"] is True for request in replay.sent)
    assert task.totals.llm_calls == 2


@pytest.mark.parametrize("beta", [False, True], ids=["messages", "beta.messages"])
def test_count_tokens_is_a_free_call(beta: bool, cap: Capture) -> None:
    """``count_tokens``: a call at $0, status free; what it counted is not usage (nothing was billed)."""
    body = {"input_tokens": 14}
    replay = Replay(synthetic("https://api.anthropic.com/v1/messages/count_tokens", body))
    client = anthropic_client(replay)
    api = client.beta.messages if beta else client.messages
    with tokentrace.task("count") as task:
        result = api.count_tokens(
            model="claude-sonnet-4-20250514", messages=[{"role": "user", "content": "hi"}]
        )
    assert result.input_tokens == 14
    (span,) = cap.call_spans()
    attrs = dict(span.attributes or {})
    assert span.name == "count_tokens claude-sonnet-4-20250514"
    assert attrs["gen_ai.operation.name"] == "count_tokens"
    assert attrs["tokentrace.cost.status"] == "free"
    assert attrs["tokentrace.cost.usd"] == 0.0
    assert attrs["tokentrace.counted.input_tokens"] == 14
    assert not any(key.startswith("gen_ai.usage.") for key in attrs)
    totals = task.totals
    assert (totals.llm_calls, totals.input_tokens, totals.cost_usd, totals.unpriced_calls) == (
        1,
        0,
        Decimal(0),
        0,
    )


def _usage_spans(exporter: InMemorySpanExporter) -> list[str]:
    return [
        s.instrumentation_scope.name if s.instrumentation_scope else ""
        for s in exporter.get_finished_spans()
        if any(k.startswith("gen_ai.usage.") for k in (s.attributes or {}))
    ]


@pytest.mark.parametrize("sdk_tracing", [True, False], ids=["sdk-tracing-on", "sdk-tracing-off"])
def test_exactly_one_span_per_call_carries_usage(
    global_spans: InMemorySpanExporter, sdk_tracing: bool
) -> None:
    """With a global TracerProvider, the SDK's own span is switched off for recorded calls, on or off."""
    (interaction,) = recorded(CACHE_READ)
    client = anthropic_client(Replay([interaction]), open_telemetry=None if sdk_tracing else False)
    with tokentrace.task("one-span"):
        client.messages.create(**request_kwargs(interaction, "anthropic"))
    assert _usage_spans(global_spans) == ["tokentrace"]


def test_the_sdks_own_span_returns_after_uninstrument(global_spans: InMemorySpanExporter) -> None:
    """Uninstrumenting gives the SDK its own tracing back, untouched."""
    (interaction,) = recorded(CACHE_READ)
    tokentrace.uninstrument()
    client = anthropic_client(Replay([interaction]))
    client.messages.create(**request_kwargs(interaction, "anthropic"))
    assert _usage_spans(global_spans) == ["com.anthropic.sdk.python"]


def test_a_recorded_401_is_raised_unchanged(cap: Capture) -> None:
    """The SDK's AuthenticationError reaches the caller; the call is recorded as failed."""
    (interaction,) = recorded(ERROR_401)
    client = anthropic_client(Replay([interaction]))
    with tokentrace.task("bad") as task, pytest.raises(anthropic.AuthenticationError):
        client.messages.create(**request_kwargs(interaction, "anthropic"))
    assert _attrs(cap)["error.type"] == "AuthenticationError"
    assert task.totals.llm_calls == 1


@pytest.mark.parametrize(
    ("base_url", "provider", "model", "input_rate"),
    [
        (
            "https://bedrock-runtime.us-east-1.amazonaws.com",
            "aws.bedrock",
            "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
            3,
        ),
        (
            "https://us-east5-aiplatform.googleapis.com/v1",
            "gcp.vertex_ai",
            "claude-sonnet-4@20250514",
            Decimal(3),
        ),
        ("https://api.anthropic.com", None, "claude-sonnet-4-20250514", 3),
    ],
)
def test_bedrock_and_vertex_clients_are_named_and_priced_by_base_url(
    base_url: str, provider: str | None, model: str, input_rate: int
) -> None:
    """The Bedrock and Vertex AI clients' base URLs name the provider; their model ids are priced
    from that provider's table."""
    integration = AnthropicIntegration()
    assert integration.provider_for(base_url) == provider
    price = pricing.lookup(model, provider or "anthropic", base_url)
    assert price is not None
    assert price.rates.input == input_rate


def test_web_search_requests_are_priced_per_search(cap: Capture) -> None:
    """Claude Sonnet 4 with 3 server-side web searches: 1,000 in x $3 + 100 out x $15 per million
    + 3 x $0.01 per search = $0.0345; the searches are on the span."""
    usage = {"input_tokens": 1000, "output_tokens": 100, "server_tool_use": {"web_search_requests": 3}}
    body = message_body(usage, model="claude-sonnet-4-20250514")
    client = anthropic_client(Replay(synthetic("https://api.anthropic.com/v1/messages", body)))
    with tokentrace.task("search") as task:
        client.messages.create(
            model="claude-sonnet-4-20250514", max_tokens=100, messages=[{"role": "user", "content": "news?"}]
        )
    attrs = _attrs(cap)
    assert attrs["tokentrace.usage.web_search_requests"] == 3
    assert attrs["tokentrace.cost.usd"] == 0.0345
    assert task.totals.cost_usd == Decimal("0.0345")
    assert task.totals.cost_breakdown.other_usd == Decimal("0.03")


_MESSAGES_URI = "https://api.anthropic.com/v1/messages?beta=true"


def _beta_call(usage: dict[str, object], model: str) -> tokentrace.Totals:
    """One beta Messages call answered with ``usage`` (no recording has fast mode, compaction or
    the advisor tool; the usage is in the shape the SDK's ``BetaUsage`` types it)."""
    client = anthropic_client(Replay(synthetic(_MESSAGES_URI, message_body(usage, model=model))))
    with tokentrace.task("beta") as task:
        client.beta.messages.create(model=model, max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    return task.totals


def test_fast_mode_is_priced_at_its_own_rates(cap: Capture, tmp_path: Path) -> None:
    """claude-opus-5 in fast mode (``usage.speed``) costs twice the standard rates:
    1,000 x $10 + 100 x $50 per million = $0.015 (standard: $0.0075); the span says ``fast``."""
    totals = _beta_call({"input_tokens": 1_000, "output_tokens": 100, "speed": "fast"}, "claude-opus-5")
    attrs = _attrs(cap)
    assert attrs["tokentrace.service_tier"] == "fast"
    assert totals.cost_usd == Decimal("0.015")
    assert assert_reprices_to_itself(cap.call_spans(), tmp_path) == 1  # whatif re-prices it at its tier


def test_standard_speed_is_the_standard_price(cap: Capture) -> None:
    """``speed: "standard"`` is the standard tier: $0.0075, and no tier on the span."""
    totals = _beta_call({"input_tokens": 1_000, "output_tokens": 100, "speed": "standard"}, "claude-opus-5")
    assert "tokentrace.service_tier" not in _attrs(cap)
    assert totals.cost_usd == Decimal("0.0075")


_COMPACTED = {
    # The example in Anthropic's compaction docs: the top level counts the final message only.
    "input_tokens": 23_000,
    "output_tokens": 1_000,
    "iterations": [
        {
            "type": "compaction",
            "input_tokens": 180_000,
            "output_tokens": 3_500,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
        {
            "type": "message",
            "input_tokens": 23_000,
            "output_tokens": 1_000,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    ],
}


def test_a_compaction_iteration_is_counted_and_priced_on_its_own(cap: Capture, tmp_path: Path) -> None:
    """A compaction's tokens are billed but left out of the top-level counts: 203,000 in and
    4,500 out in all. Each iteration is priced as a request of its own, so neither crosses
    claude-sonnet-4-5's 200k tier: (180,000 + 23,000) x $3 + (3,500 + 1,000) x $15 per million =
    $0.6765 (the top level alone would say $0.084)."""
    totals = _beta_call(_COMPACTED, "claude-sonnet-4-5")
    attrs = _attrs(cap)
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (203_000, 4_500)
    assert (totals.input_tokens, totals.output_tokens) == (203_000, 4_500)
    assert totals.cost_usd == Decimal("0.6765")
    assert assert_reprices_to_itself(cap.call_spans(), tmp_path) == 1  # and its iterations


def test_an_advisor_iteration_is_priced_at_the_advisor_models_rates(cap: Capture, tmp_path: Path) -> None:
    """claude-sonnet-4-6 consults claude-opus-5 through the advisor tool: 1,000 x $3 + 500 x $15
    (the executor) + 5,000 x $5 + 1,500 x $25 (the advisor) per million = $0.073."""
    usage = {
        "input_tokens": 1_000,
        "output_tokens": 500,
        "iterations": [
            {"type": "message", "input_tokens": 1_000, "output_tokens": 500},
            {
                "type": "advisor_message",
                "model": "claude-opus-5",
                "input_tokens": 5_000,
                "output_tokens": 1_500,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0,
            },
        ],
    }
    totals = _beta_call(usage, "claude-sonnet-4-6")
    assert (totals.input_tokens, totals.output_tokens, totals.llm_calls) == (6_000, 2_000, 1)
    assert totals.cost_usd == Decimal("0.073")
    assert _attrs(cap)["tokentrace.cost.usd"] == 0.073
    assert assert_reprices_to_itself(cap.call_spans(), tmp_path) == 1  # at the advisor's rates


def test_an_advisor_model_without_a_price_leaves_the_call_unpriced_never_undercounted(
    cap: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    """An advisor model tokentrace has no price for: the call keeps all its tokens and is
    unpriced (a part of its cost is unknown), with the usual warning naming that model."""
    usage = {
        "input_tokens": 1_000,
        "output_tokens": 500,
        "iterations": [
            {
                "type": "advisor_message",
                "model": "claude-unheard-of-9",
                "input_tokens": 10,
                "output_tokens": 5,
            }
        ],
    }
    totals = _beta_call(usage, "claude-sonnet-4-6")
    attrs = _attrs(cap)
    assert attrs["tokentrace.cost.status"] == "unpriced"
    assert "tokentrace.cost.usd" not in attrs
    assert (totals.input_tokens, totals.unpriced_calls, totals.cost_usd) == (1_010, 1, Decimal(0))
    assert "claude-unheard-of-9" in caplog.text


def test_a_streamed_compaction_is_counted_from_the_final_message_delta(cap: Capture, tmp_path: Path) -> None:
    """A stream's ``message_delta`` carries the iterations: the same 203,000 in, 4,500 out and
    $0.6765 as the non-streamed call."""
    start = {
        "type": "message_start",
        "message": {
            **message_body({"input_tokens": 23_000, "output_tokens": 1}, "claude-sonnet-4-5"),
            "content": [],
        },
    }
    delta = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": _COMPACTED}
    events = [start, delta, {"type": "message_stop"}]
    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()
    interaction = Interaction(
        "POST", _MESSAGES_URI, b"{}", 200, [("content-type", "text/event-stream")], body
    )
    client = anthropic_client(Replay([interaction]))
    with tokentrace.task("stream") as task:
        stream = client.beta.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=100,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
        )
        for _ in stream:
            pass
    assert (task.totals.input_tokens, task.totals.output_tokens) == (203_000, 4_500)
    assert task.totals.cost_usd == Decimal("0.6765")
    assert assert_reprices_to_itself(cap.call_spans(), tmp_path) == 1  # from the ledger
