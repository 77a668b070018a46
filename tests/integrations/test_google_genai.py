"""Gemini through the official google-genai SDK (built on httpx), replayed from recordings."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

import tokentrace
from tests.support.cassettes import Interaction, Replay
from tests.support.clients import recorded, spliced_error, synthetic
from tests.support.clock import set_price_clock
from tokentrace.testing import Capture

_DIR = (
    "openinference/python/instrumentation/openinference-instrumentation-google-genai/tests/cassettes/"
    "test_instrumentation/"
)
TOOL_USE = _DIR + "test_validate_token_counts.yaml"
TOOL_USE_STREAM = _DIR + "test_validate_token_counts_stream.yaml"
AFC = _DIR + "test_generate_content_with_automatic_tool_calling.yaml"
EMBED = _DIR + "test_embed_content.yaml"
ASYNC_CHAT = _DIR + "test_async_generate_content.yaml"
ASYNC_STREAM = _DIR + "test_async_streaming_text_content.yaml"


def _client(replay: Replay, **options: Any) -> genai.Client:
    http = types.HttpOptions(
        api_version="v1beta",  # as recorded
        httpx_client=replay.httpx_client(),
        httpx_async_client=replay.httpx_async_client(),
        **options,
    )
    return genai.Client(api_key="g-test", http_options=http)


def _contents(interaction: Interaction) -> Any:
    return interaction.request_json()["contents"]


def _spans(cap: Capture) -> list[dict[str, Any]]:
    return [dict(span.attributes or {}) for span in cap.call_spans()]


def test_tool_use_prompt_is_input_and_thoughts_are_output(cap: Capture) -> None:
    """gemini-2.5-flash: 32 prompt + 720 tool-use prompt = 752 in; 341 + 103 thoughts = 444 out.
    752 x $0.30 + 444 x $2.50 per million = $0.0013356."""
    (interaction,) = recorded(TOOL_USE)
    with tokentrace.task("gemini") as task:
        _client(Replay([interaction])).models.generate_content(
            model="gemini-2.5-flash", contents=_contents(interaction)
        )
    (attrs,) = _spans(cap)
    assert attrs["gen_ai.provider.name"] == "gcp.gemini"
    assert attrs["gen_ai.request.model"] == "gemini-2.5-flash"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (752, 444)
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 103
    assert attrs["tokentrace.cost.status"] == "priced"
    assert task.totals.cost_usd == Decimal("0.0013356")


def test_stream_takes_the_last_chunks_usage(cap: Capture) -> None:
    """Streamed: 32 + 764 = 796 in, 477 + 240 = 717 out: 796 x $0.30 + 717 x $2.50 = $0.0020313."""
    (interaction,) = recorded(TOOL_USE_STREAM)
    with tokentrace.task("gemini-stream") as task:
        stream = _client(Replay([interaction])).models.generate_content_stream(
            model="gemini-2.5-flash", contents=_contents(interaction)
        )
        chunks = list(stream)
    assert chunks[-1].usage_metadata is not None
    (attrs,) = _spans(cap)
    assert attrs["tokentrace.stream.end"] == "completed"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (796, 717)
    assert task.totals.cost_usd == Decimal("0.0020313")


def test_automatic_function_calling_records_every_api_call(cap: Capture) -> None:
    """One generate_content with a Python tool makes two API calls (the function call, then the
    answer); both are billed, so both are recorded: 64 + 89 in, 6 + 23 out at $0.10/$0.40."""
    calls: list[str] = []

    def get_weather(location: str, unit: str = "fahrenheit") -> str:
        calls.append(location)
        return f"Sunny, 72 degrees {unit}"

    replay = Replay(recorded(AFC))
    with tokentrace.task("afc") as task:
        response = _client(replay).models.generate_content(
            model="gemini-2.0-flash",
            contents="What's the weather like in San Francisco?",
            config=types.GenerateContentConfig(tools=[get_weather]),
        )
    assert calls == ["San Francisco"]
    assert response.text
    spans = _spans(cap)
    assert [(a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) for a in spans] == [
        (64, 6),
        (89, 23),
    ]
    assert (task.totals.llm_calls, task.totals.input_tokens, task.totals.output_tokens) == (2, 153, 29)
    # 153 x $0.10 + 29 x $0.40 per million
    assert task.totals.cost_usd == Decimal("0.0000269")


def test_async_client_generate_and_stream(cap: Capture) -> None:
    """client.aio: 21 in, 26 out and a stream of 14 in, 33 out, gemini-2.0-flash at $0.10/$0.40."""
    (chat,) = recorded(ASYNC_CHAT)
    (stream,) = recorded(ASYNC_STREAM)

    async def run() -> tokentrace.Totals:
        client = _client(Replay([chat, stream]))
        async with tokentrace.task("gemini-async") as task:
            await client.aio.models.generate_content(model="gemini-2.0-flash", contents=_contents(chat))
            async for _ in await client.aio.models.generate_content_stream(
                model="gemini-2.0-flash", contents=_contents(stream)
            ):
                pass
        return task.totals

    totals = asyncio.run(run())
    assert (totals.llm_calls, totals.input_tokens, totals.output_tokens) == (2, 35, 59)
    assert totals.cost_usd == Decimal("0.0000271")


def test_embed_content_without_reported_usage_is_unpriced_never_zero(cap: Capture) -> None:
    """The Gemini API reports no usage for embeddings: the call is counted, unpriced, said so."""
    (interaction,) = recorded(EMBED)
    texts = [p["text"] for r in interaction.request_json()["requests"] for p in r["content"]["parts"]]
    with tokentrace.task("embed") as task:
        _client(Replay([interaction])).models.embed_content(model="gemini-embedding-001", contents=texts)
    (attrs,) = _spans(cap)
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert attrs["tokentrace.cost.status"] == "unpriced"
    assert attrs["tokentrace.usage.problem"] == "the response reported no usage"
    assert (task.totals.llm_calls, task.totals.unpriced_calls) == (1, 1)


def test_a_prompt_over_200k_tokens_is_priced_at_the_long_context_tier(cap: Capture) -> None:
    """gemini-2.5-pro over 200,000 input tokens: all tokens at $2.50 in and $15 out per million.
    250,000 x $2.50 + 100 x $15 = $0.6265 (the base rates would give $0.3135)."""
    body = {
        "candidates": [{"content": {"parts": [{"text": "ok"}], "role": "model"}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 250000, "candidatesTokenCount": 100, "totalTokenCount": 250100},
        "modelVersion": "gemini-2.5-pro",
    }
    uri = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:generateContent"
    with tokentrace.task("long") as task:
        _client(Replay(synthetic(uri, body))).models.generate_content(model="gemini-2.5-pro", contents="...")
    assert task.totals.cost_usd == Decimal("0.6265")


def test_retry_after_a_503_counts_both_attempts(cap: Capture) -> None:
    """Spliced: a recorded body served as 503, then the recorded success, with the SDK's retries on."""
    interaction = recorded(AFC)[1]
    replay = Replay([spliced_error(503, interaction), interaction])
    retry = types.HttpRetryOptions(attempts=2, initial_delay=0.01, max_delay=0.01)
    with tokentrace.task("gemini-retry") as task:
        _client(replay, retry_options=retry).models.generate_content(model="gemini-2.0-flash", contents="hi")
    (attrs,) = _spans(cap)
    assert attrs["tokentrace.attempts"] == ("ServerError", "200")
    assert attrs["tokentrace.retries"] == 1
    assert task.totals.retries == 1


def test_a_final_error_reaches_the_user_unchanged(cap: Capture) -> None:
    """A 400: the SDK's ClientError is raised as is; the call is recorded without usage."""
    interaction = recorded(AFC)[1]
    error_body = json.dumps({"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}).encode()
    bad = Interaction(
        interaction.method, interaction.uri, b"{}", 400, [("content-type", "application/json")], error_body
    )
    with tokentrace.task("gemini-error") as task, pytest.raises(errors.ClientError) as raised:
        _client(Replay([bad])).models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert raised.value.code == 400
    (attrs,) = _spans(cap)
    assert attrs["error.type"] == "ClientError"
    assert attrs["tokentrace.cost.status"] == "no_usage"
    assert task.totals.llm_calls == 1


DESCRIBE_IMAGE = _DIR + "test_generate_content_describe_image[False].yaml"
DESCRIBE_IMAGE_STREAM = _DIR + "test_generate_content_describe_image[True].yaml"
_FLASH = "https://generativelanguage.googleapis.com/v1beta/models/{model}:generateContent"


@pytest.mark.parametrize("path", [DESCRIBE_IMAGE, DESCRIBE_IMAGE_STREAM], ids=["sync", "stream"])
def test_an_image_prompt_reports_its_image_tokens_and_costs_text_rates(path: str, cap: Capture) -> None:
    """gemini-2.5-flash bills image input as text: 277 x $0.30 + (125 + 678 thoughts) x $2.50 per
    million = $0.0020906 (the stream: 124 + 570, $0.0018181), and the span says 258 of the 277
    input tokens were an image."""
    (interaction,) = recorded(path)
    model = interaction.key[3].rsplit("/", 1)[1].split(":", 1)[0]
    with tokentrace.task("image") as task:
        models = _client(Replay([interaction])).models
        if path == DESCRIBE_IMAGE_STREAM:
            for _ in models.generate_content_stream(model=model, contents=_contents(interaction)):
                pass
        else:
            models.generate_content(model=model, contents=_contents(interaction))
    (attrs,) = _spans(cap)
    assert attrs["gen_ai.usage.input_tokens"] == 277
    assert attrs["tokentrace.usage.image.input_tokens"] == 258
    assert "tokentrace.usage.audio.input_tokens" not in attrs
    want = Decimal("0.0020906") if path == DESCRIBE_IMAGE else Decimal("0.0018181")
    assert task.totals.cost_usd == want


def _modal_body(model: str, usage: dict[str, Any]) -> dict[str, Any]:
    """A generateContent response with ``usage`` (no recording has an audio prompt or an image
    answer; the shape is the API's, as the recorded image prompt above reports it)."""
    return {
        "candidates": [{"content": {"parts": [{"text": "ok"}], "role": "model"}, "finishReason": "STOP"}],
        "usageMetadata": usage,
        "modelVersion": model,
    }


def test_audio_input_and_its_cache_reads_are_priced_at_the_audio_rates(cap: Capture) -> None:
    """gemini-2.5-flash: of 10,000 input tokens 8,000 are audio, 4,000 of them cached, and 1,000
    text tokens are cached too. 4,000 cached audio x $0.10 + 4,000 audio x $1 + 1,000 cached text
    x $0.03 + 1,000 text x $0.30 + 500 output x $2.50 per million = $0.00598 (as text it would be
    $0.0029), and the span carries the audio counts."""
    usage = {
        "promptTokenCount": 10_000,
        "cachedContentTokenCount": 5_000,
        "candidatesTokenCount": 500,
        "totalTokenCount": 10_500,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 2_000},
            {"modality": "AUDIO", "tokenCount": 8_000},
        ],
        "cacheTokensDetails": [
            {"modality": "TEXT", "tokenCount": 1_000},
            {"modality": "AUDIO", "tokenCount": 4_000},
        ],
        "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 500}],
    }
    body = _modal_body("gemini-2.5-flash", usage)
    uri = _FLASH.format(model="gemini-2.5-flash")
    with tokentrace.task("audio") as task:
        _client(Replay(synthetic(uri, body))).models.generate_content(
            model="gemini-2.5-flash", contents="..."
        )
    (attrs,) = _spans(cap)
    assert attrs["tokentrace.usage.audio.input_tokens"] == 8_000
    assert attrs["tokentrace.usage.audio.cache_read.input_tokens"] == 4_000
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 5_000
    assert attrs["tokentrace.cost.usd"] == 0.00598
    assert task.totals.cost_usd == Decimal("0.00598")
    assert task.totals.cost_breakdown.input_usd == Decimal("0.0043")  # 1,000 x $0.30 + 4,000 x $1
    assert task.totals.cost_breakdown.cache_read_usd == Decimal("0.00043")  # 1,000 x $0.03 + 4,000 x $0.10


def test_image_output_is_priced_at_the_image_output_rate(cap: Capture) -> None:
    """gemini-2.5-flash-image draws one image (1,290 tokens) and says 10 words: 20 x $0.30 +
    10 x $2.50 + 1,290 x $30 per million = $0.038731, twelve times what text rates would say."""
    usage = {
        "promptTokenCount": 20,
        "candidatesTokenCount": 1_300,
        "totalTokenCount": 1_320,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 20}],
        "candidatesTokensDetails": [
            {"modality": "TEXT", "tokenCount": 10},
            {"modality": "IMAGE", "tokenCount": 1_290},
        ],
    }
    model = "gemini-2.5-flash-image"
    with tokentrace.task("draw") as task:
        _client(
            Replay(synthetic(_FLASH.format(model=model), _modal_body(model, usage)))
        ).models.generate_content(model=model, contents="a cat")
    (attrs,) = _spans(cap)
    assert attrs["tokentrace.usage.image.output_tokens"] == 1_290
    assert task.totals.cost_usd == Decimal("0.038731")


def test_modality_counts_larger_than_their_totals_are_flagged_not_priced(cap: Capture) -> None:
    """Audio input counts above the prompt's total cannot be true: invalid usage, with the reason."""
    usage = {
        "promptTokenCount": 100,
        "candidatesTokenCount": 5,
        "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 150}],
    }
    uri = _FLASH.format(model="gemini-2.5-flash")
    with tokentrace.task("bad") as task:
        _client(Replay(synthetic(uri, _modal_body("gemini-2.5-flash", usage)))).models.generate_content(
            model="gemini-2.5-flash", contents="..."
        )
    (attrs,) = _spans(cap)
    assert attrs["tokentrace.cost.status"] == "invalid_usage"
    assert attrs["tokentrace.usage.problem"] == "audio, image and video input tokens exceed input tokens"
    assert task.totals.unpriced_calls == 1


_ARGON = "gemini-4-argon"
_ARGON_USAGE = {"promptTokenCount": 1_000, "candidatesTokenCount": 100, "totalTokenCount": 1_100}


def _tiered(tier_header: str | None, *, stream: bool = False) -> Interaction:
    """A response to a gemini-4-argon request, with the tier header Google sends (no recording
    has a tiered Gemini call; the header is the one Google documents for priority requests)."""
    body = _modal_body(_ARGON, _ARGON_USAGE)
    headers = [("content-type", "text/event-stream" if stream else "application/json")]
    if tier_header is not None:
        headers.append(("x-gemini-service-tier", tier_header))
    raw = (b"data: " + json.dumps(body).encode() + b"\r\n\r\n") if stream else json.dumps(body).encode()
    verb = "streamGenerateContent" if stream else "generateContent"
    uri = f"https://generativelanguage.googleapis.com/v1beta/models/{_ARGON}:{verb}"
    return Interaction("POST", uri, b"{}", 200, headers, raw)


@pytest.mark.parametrize(
    ("asked", "header", "tier", "cost"),
    [
        # 1,000 in and 100 out of gemini-4-argon, per million: standard $4 and $20, priority
        # $7.20 and $36, flex $2 and $10 (in force since 2026-12-01).
        (None, None, None, Decimal("0.006")),
        ("priority", "priority", "priority", Decimal("0.0108")),
        ("flex", "flex", "flex", Decimal("0.003")),
        ("priority", "standard", None, Decimal("0.006")),  # over the priority limit: downgraded
        (types.ServiceTier.FLEX, None, "flex", Decimal("0.003")),  # no header: the tier asked for
    ],
    ids=["standard", "priority", "flex", "downgraded", "asked-only"],
)
def test_a_call_is_priced_at_the_service_tier_google_served_it_at(
    asked: Any,
    header: str | None,
    tier: str | None,
    cost: Decimal,
    cap: Capture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Gemini's flex and priority tiers have rates of their own: a call is priced at the tier the
    ``x-gemini-service-tier`` header names (else the one the request asked for), and the span
    names a tier other than standard."""
    set_price_clock(monkeypatch, "12:00")
    config = types.GenerateContentConfig(service_tier=asked) if asked is not None else None
    with tokentrace.task("tiers") as task:
        _client(Replay([_tiered(header)])).models.generate_content(model=_ARGON, contents="hi", config=config)
    (attrs,) = _spans(cap)
    assert attrs.get("tokentrace.service_tier") == tier
    assert "openai.response.service_tier" not in attrs
    assert task.totals.cost_usd == cost


def test_a_stream_is_priced_at_the_tier_its_response_header_names(
    cap: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A priority stream: 1,000 x $7.20 + 100 x $36 per million = $0.0108."""
    set_price_clock(monkeypatch, "12:00")
    with tokentrace.task("tiers") as task:
        for _ in _client(Replay([_tiered("priority", stream=True)])).models.generate_content_stream(
            model=_ARGON, contents="hi", config={"service_tier": "priority"}
        ):
            pass
    (attrs,) = _spans(cap)
    assert attrs["tokentrace.service_tier"] == "priority"
    assert task.totals.cost_usd == Decimal("0.0108")
