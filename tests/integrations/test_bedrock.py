"""Amazon Bedrock Runtime through boto3, replayed from recordings (botocore parses, retries
and decodes the event streams as over the network; see ``serve_botocore``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import boto3
import botocore.config
import pytest

import tokentrace
from tests.support.cassettes import Interaction, Replay, serve_botocore
from tests.support.clients import recorded, spliced_error
from tokentrace import pricing
from tokentrace.testing import Capture

_DD = "dd-trace-py/tests/contrib/botocore/bedrock_cassettes/"
_OI = (
    "openinference/python/instrumentation/openinference-instrumentation-bedrock/tests/openinference/"
    "instrumentation/bedrock/cassettes/"
)
CACHED = _DD + "bedrock_converse_prompt_caching.yaml"
CACHED_STREAM = _DD + "bedrock_converse_stream_prompt_caching.yaml"
PROFILE = _DD + "bedrock_converse_inference_profile.yaml"
NOVA = _OI + "TestNovaInvokeModel.test_nova_micro_text.yaml"
INVOKE_STREAM = _OI + "TestInvokeModelWithStreamResponse.test_invoke.yaml"


def _client(replay: Replay, attempts: int = 1) -> Any:
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=botocore.config.Config(retries={"total_max_attempts": attempts, "mode": "standard"}),
    )
    return serve_botocore(replay, client)


def _llm(path: str) -> Interaction:
    """The recording's last model call (a caching recording writes the cache first, then reads it)."""
    return [i for i in recorded(path) if i.key[3].startswith("/model/")][-1]


def _model(interaction: Interaction) -> str:
    return unquote(interaction.key[3].split("/")[2])


def _spans(cap: Capture) -> list[dict[str, Any]]:
    return [dict(span.attributes or {}) for span in cap.call_spans()]


def test_converse_adds_cache_reads_to_input_and_prices_them(cap: Capture) -> None:
    """Claude 3.7 Sonnet via a US inference profile: 12 in + 1,028 cache reads, 185 out.
    12 x $3 + 1,028 x $0.30 + 185 x $15 per million = $0.0031194."""
    interaction = _llm(CACHED)
    with tokentrace.task("bedrock") as task:
        response = _client(Replay([interaction])).converse(
            modelId=_model(interaction), **interaction.request_json()
        )
    assert response["usage"]["cacheReadInputTokens"] == 1028
    (attrs,) = _spans(cap)
    assert attrs["gen_ai.provider.name"] == "aws.bedrock"
    assert attrs["gen_ai.request.model"] == "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.cache_read.input_tokens"]) == (1040, 1028)
    assert attrs["gen_ai.usage.output_tokens"] == 185
    assert task.totals.cost_usd == Decimal("0.0031194")


def test_converse_stream_takes_usage_from_the_metadata_event(cap: Capture) -> None:
    """Streamed: 12 + 1,028 cached in, 250 out: 36 + 308.4 + 3,750 micro-dollars = $0.0040944."""
    interaction = _llm(CACHED_STREAM)
    with tokentrace.task("bedrock-stream") as task:
        response = _client(Replay([interaction])).converse_stream(
            modelId=_model(interaction), **interaction.request_json()
        )
        events = [next(iter(event)) for event in response["stream"]]
    assert events[-1] == "metadata"
    (attrs,) = _spans(cap)
    assert attrs["tokentrace.stream.end"] == "completed"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (1040, 250)
    assert task.totals.cost_usd == Decimal("0.0040944")


def test_invoke_model_reads_the_token_headers_and_leaves_the_body_alone(cap: Capture) -> None:
    """Nova Micro: 13 in, 3 out from Bedrock's headers: 13 x $0.035 + 3 x $0.14 = $0.000000875.
    The body, a stream the application reads, reaches it whole."""
    interaction = _llm(NOVA)
    with tokentrace.task("invoke") as task:
        response = _client(Replay([interaction])).invoke_model(
            modelId=_model(interaction), body=interaction.request_body
        )
        body = response["body"].read()
    assert body == interaction.body
    (attrs,) = _spans(cap)
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (13, 3)
    assert task.totals.cost_usd == Decimal("0.000000875")


def test_invoke_model_with_response_stream_reads_the_invocation_metrics(cap: Capture) -> None:
    """Claude 3.5 Sonnet, streamed: 702 in, 98 out: 702 x $3 + 98 x $15 per million = $0.003576."""
    interaction = _llm(INVOKE_STREAM)
    with tokentrace.task("invoke-stream") as task:
        response = _client(Replay([interaction])).invoke_model_with_response_stream(
            modelId=_model(interaction), body=interaction.request_body
        )
        chunks = list(response["body"])
    assert all("chunk" in chunk for chunk in chunks)
    (attrs,) = _spans(cap)
    assert attrs["tokentrace.stream.end"] == "completed"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (702, 98)
    assert task.totals.cost_usd == Decimal("0.003576")


def test_an_application_inference_profile_is_unpriced_until_aliased(cap: Capture) -> None:
    """An application inference profile's ARN names no model: unpriced (never $0) until an
    Alias says which model it serves. 16 in x $3 + 40 out x $15 per million = $0.000648."""
    interaction = _llm(PROFILE)
    arn = _model(interaction)
    assert ":application-inference-profile/" in arn
    with tokentrace.task("profile") as task:
        _client(Replay([interaction])).converse(modelId=arn, **interaction.request_json())
    assert (task.totals.unpriced_calls, task.totals.input_tokens) == (1, 16)
    pricing.set_prices([pricing.Alias(name=arn, model="anthropic.claude-3-5-sonnet-20240620-v1:0")])
    with tokentrace.task("aliased") as aliased:
        _client(Replay([interaction])).converse(modelId=arn, **interaction.request_json())
    assert (aliased.totals.unpriced_calls, aliased.totals.cost_usd) == (0, Decimal("0.000648"))


def test_retry_after_a_503_counts_both_attempts(cap: Capture) -> None:
    """Spliced: a recorded body served as 503, then the recorded success; botocore retries."""
    interaction = _llm(CACHED)
    replay = Replay([spliced_error(503, interaction), interaction])
    with tokentrace.task("bedrock-retry") as task:
        _client(replay, attempts=2).converse(modelId=_model(interaction), **interaction.request_json())
    (attrs,) = _spans(cap)
    assert attrs["tokentrace.attempts"] == ("503", "200")
    assert attrs["tokentrace.retries"] == 1
    assert task.totals.retries == 1
    assert task.totals.cost_usd == Decimal("0.0031194")


def test_other_calls_on_the_client_are_not_llm_calls(cap: Capture) -> None:
    """Only the four model operations are recorded; any other botocore call passes straight through."""
    client = _client(Replay([]))
    with tokentrace.task("other") as task, pytest.raises(AssertionError, match="no recorded response"):
        client.apply_guardrail(
            guardrailIdentifier="g", guardrailVersion="1", source="INPUT", content=[{"text": {"text": "hi"}}]
        )
    assert (cap.call_spans(), task.totals.llm_calls) == ([], 0)
