"""Every recorded cassette of a provider API tokentrace records, replayed through the official
SDK: OpenAI (and the OpenAI-compatible Azure OpenAI, OpenRouter, DeepSeek and Together through
the openai SDK), Anthropic, Groq, Mistral and Cohere (v2)."""

from __future__ import annotations

import asyncio
import csv
import inspect
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import anthropic
import boto3
import botocore.config
import botocore.exceptions
import cohere
import cohere.core.api_error
import google.genai
import google.genai.errors
import google.genai.types
import google.oauth2.credentials
import groq
import mistralai.client
import mistralai.client.errors
import openai
import pytest

import tokentrace
from tests.support.cassettes import CASSETTES, Interaction, Replay, ground_truth, load, serve_botocore
from tests.support.price_oracle import database_price
from tests.support.repricing import assert_reprices_to_itself
from tokentrace.testing import Capture

with (CASSETTES / "MANIFEST.tsv").open(encoding="utf-8") as _f:
    MANIFEST = {row["path"]: row for row in csv.DictReader(_f, delimiter="\t")}
TRUTH = ground_truth()

_LLM_PATHS = (
    "/chat/completions",
    "/completions",
    "/embeddings",
    "/v1/messages",
    "/v1/responses",
    "/v2/chat",
    "/v2/embed",
    ":generateContent",
    ":streamGenerateContent",
    ":batchEmbedContents",
    "/converse",
    "/converse-stream",
    "/invoke",
    "/invoke-with-response-stream",
)
_OPENAI_KWARGS = ("model", "messages", "stream")
_RESPONSES_KWARGS = ("model", "input", "stream")
_EMBEDDINGS_KWARGS = ("model", "input")
_ANTHROPIC_KWARGS = ("model", "messages", "max_tokens", "stream")
# Providers reached through the openai SDK (OpenAI-compatible endpoints).
OPENAI_SDK = ("openai", "openrouter", "azure-openai", "deepseek", "together")
# The manifest's provider name -> the gen_ai.provider.name tokentrace reports.
PROVIDER_NAME = {
    "azure-openai": "azure.ai.openai",
    "mistral": "mistral_ai",
    "gemini": "gcp.gemini",
    "vertexai": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
}
# Recordings whose body reports less than Bedrock's token-count headers, which tokentrace reads
# (a guardrail rewrote the output): the numbers tokentrace reports instead, with the reason.
_NOVA = "openllmetry/packages/opentelemetry-instrumentation-bedrock/tests/traces/cassettes/test_nova/"
DIFFERS = {
    _NOVA + name: (
        {"input": 30, "output": 51, "cache_read": 0, "cache_write": 0, "reasoning": 0},
        "the guardrail-rewritten body reports inputTokens only; Bedrock's token-count headers, "
        "which tokentrace reads, count 51 output tokens",
    )
    for name in (
        "test_nova_completion.yaml",
        "test_nova_completion_with_events_with_content.yaml",
        "test_nova_completion_with_events_with_no_content.yaml",
    )
}
# Recordings whose usage leaves out a count the API always reports: the call is invalid_usage,
# with the reason, never priced as if the count were 0.
_IMAGE = (
    "openinference/python/instrumentation/openinference-instrumentation-google-genai/tests/cassettes/"
    "test_instrumentation/test_generate_content_with_file_uri_image"
)
MISSING = {
    f"{_IMAGE}[{streamed}].yaml": "prompt_token_count is missing"  # an image prompt with no count
    for streamed in (False, True)
}
SDK_ERRORS = (
    openai.APIError,
    anthropic.APIError,
    groq.APIError,
    mistralai.client.errors.MistralError,
    cohere.core.api_error.ApiError,
    google.genai.errors.APIError,
    botocore.exceptions.ClientError,
)


def expected_usage(provider: str, norm: dict[str, int], raw: dict[str, Any]) -> dict[str, int]:
    """The ground truth in the OTel convention (input includes cache, output includes reasoning)."""
    if provider in ("gemini", "vertexai"):
        # Gemini: tool-use prompt tokens are input, thoughts are output (outside candidates).
        return {
            "input": norm.get("in", 0) + norm.get("tool_use_prompt", 0),
            "output": norm.get("out", 0) + norm.get("reasoning", 0),
            "cache_read": norm.get("cached", 0),
            "cache_write": 0,
            "reasoning": norm.get("reasoning", 0),
        }
    if provider == "cohere":
        # Cohere's tokens processed; an embedding reports its billed units only.
        return {
            "input": norm.get("in", norm.get("billed_in", 0)),
            "output": norm.get("out", norm.get("billed_out", 0)),
            "cache_read": norm.get("cached", 0),
            "cache_write": 0,
            "reasoning": 0,
        }
    if provider not in ("anthropic", "bedrock"):
        # OpenAI and the OpenAI-shaped APIs report an input total that includes cached tokens.
        # The corpus's normalised form leaves out the Responses API's cache writes
        # (``input_tokens_details.cache_write_tokens``), which its raw usage keeps.
        writes = (raw.get("input_tokens_details") or {}).get("cache_write_tokens", 0)
        return {
            "input": norm.get("in", 0),
            "output": norm.get("out", 0),
            "cache_read": norm.get("cached", 0),
            "cache_write": norm.get("cache_write", writes),
            "reasoning": norm.get("reasoning", 0),
        }
    # Anthropic and Bedrock report input without the cache reads and writes.
    cache_read, cache_write = norm.get("cache_read", 0), norm.get("cache_write", 0)
    return {
        "input": norm.get("in", 0) + cache_read + cache_write,
        "output": norm.get("out", 0),
        "cache_read": cache_read,
        "cache_write": cache_write,
        # Anthropic reports thinking inside output_tokens; newer responses also give the subset.
        "reasoning": (raw.get("output_tokens_details") or {}).get("thinking_tokens", 0),
    }


def _base_url(uri: str) -> str:
    """The base URL an SDK was given for a recorded request: the URI up to the API's path."""
    parts = urlsplit(uri)
    path = parts.path
    for suffix in ("/chat/completions", "/completions", "/embeddings"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return f"{parts.scheme}://{parts.netloc}{path}"


def _sdk(row: dict[str, str]) -> str:
    """The client a recording is replayed through: its provider's, or the one it was made with
    when that is another (Bedrock recordings made with anthropic's ``AnthropicBedrock``)."""
    if row["provider"] == "bedrock" and "AnthropicBedrock" in row["sdk_headers"]:
        return "anthropic-bedrock"
    return row["provider"]


def _client(provider: str, replay: Replay, use_async: bool, first: Interaction) -> Any:
    if provider == "azure-openai":
        cls_azure = openai.AsyncAzureOpenAI if use_async else openai.AzureOpenAI
        version = parse_qs(urlsplit(first.uri).query).get("api-version", ["2024-10-21"])[0]
        http = replay.async_client() if use_async else replay.sync_client()
        return cls_azure(
            api_key="sk-test",
            api_version=version,
            base_url=_base_url(first.uri),
            http_client=http,
            max_retries=0,
        )
    if provider in OPENAI_SDK:
        cls = openai.AsyncOpenAI if use_async else openai.OpenAI
        base_url = None if provider == "openai" else _base_url(first.uri)
        http = replay.async_client() if use_async else replay.sync_client()
        return cls(api_key="sk-test", http_client=http, max_retries=0, base_url=base_url)
    if provider == "groq":
        cls_groq = groq.AsyncGroq if use_async else groq.Groq
        http_groq = replay.httpx_async_client() if use_async else replay.httpx_client()
        return cls_groq(api_key="gsk-test", http_client=http_groq, max_retries=0)
    if provider == "anthropic-bedrock":
        cls_bedrock = anthropic.AsyncAnthropicBedrock if use_async else anthropic.AnthropicBedrock
        return cls_bedrock(
            aws_access_key="AKIDEXAMPLE",
            aws_secret_key="secret",
            aws_region="us-east-1",
            http_client=replay.async_client() if use_async else replay.sync_client(),
            max_retries=0,
        )
    if provider == "bedrock":
        host = urlsplit(first.uri).netloc
        region = host.split(".")[1] if host.startswith("bedrock-runtime.") else "us-east-1"
        client = boto3.client(
            "bedrock-runtime",
            region_name=region,
            endpoint_url=f"https://{host}",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="secret",
            config=botocore.config.Config(retries={"total_max_attempts": 1}),
        )
        return serve_botocore(replay, client)
    if provider == "vertexai":
        # /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:...
        parts = first.key[3].split("/")
        return google.genai.Client(
            vertexai=True,
            project=parts[3],
            location=parts[5],
            credentials=google.oauth2.credentials.Credentials(token="test"),
            http_options=google.genai.types.HttpOptions(
                api_version=parts[1],
                httpx_client=replay.httpx_client(),
                httpx_async_client=replay.httpx_async_client(),
            ),
        )
    if provider == "gemini":
        options = google.genai.types.HttpOptions(
            api_version=first.key[3].split("/")[1],  # v1beta, v1alpha or v1, as recorded
            httpx_client=replay.httpx_client(),
            httpx_async_client=replay.httpx_async_client(),
        )
        return google.genai.Client(api_key="g-test", http_options=options)
    if provider == "cohere":
        if use_async:
            return cohere.AsyncClientV2(api_key="co-test", httpx_client=replay.httpx_async_client())
        return cohere.ClientV2(api_key="co-test", httpx_client=replay.httpx_client())
    if provider == "mistral":
        return mistralai.client.Mistral(
            api_key="test", client=replay.httpx_client(), async_client=replay.httpx_async_client()
        )
    cls_anthropic = anthropic.AsyncAnthropic if use_async else anthropic.Anthropic
    http = replay.async_client() if use_async else replay.sync_client()
    return cls_anthropic(api_key="sk-ant-test", http_client=http, max_retries=0)


def _mistral(client: Any, interaction: Interaction, use_async: bool) -> Any:
    """mistralai takes no ``extra_body``: the recorded body's fields are its keyword arguments."""
    body = interaction.request_json()
    suffix = "_async" if use_async else ""
    if interaction.key[3].endswith("/embeddings"):
        return getattr(client.embeddings, f"create{suffix}")(model=body["model"], inputs=body["input"])
    body.pop("stream", None)
    name = "stream" if interaction.request_json().get("stream") else "complete"
    return getattr(client.chat, f"{name}{suffix}")(**body)


def _bedrock(client: Any, interaction: Interaction) -> Any:
    """boto3 takes the Converse body's fields as arguments, and an InvokeModel body as bytes."""
    path = interaction.key[3]
    model = unquote(path.split("/")[2])
    operation = path.rsplit("/", 1)[1]
    if operation in ("converse", "converse-stream"):
        body = interaction.request_json()
        call = client.converse if operation == "converse" else client.converse_stream
        response = call(modelId=model, **body)
        return response.get("stream", [])
    if operation == "invoke":
        response = client.invoke_model(modelId=model, body=interaction.request_body)
        response["body"].read()
        return response
    return client.invoke_model_with_response_stream(modelId=model, body=interaction.request_body)["body"]


def _gemini(client: Any, interaction: Interaction, use_async: bool) -> Any:
    """google-genai builds the request from its own types: pass the recorded body's parts."""
    body = interaction.request_json()
    path = interaction.key[3]
    model = path.rsplit("/", 1)[1].split(":", 1)[0]
    models = client.aio.models if use_async else client.models
    if path.endswith(":batchEmbedContents"):
        texts = [part["text"] for r in body["requests"] for part in r["content"]["parts"]]
        return models.embed_content(model=model, contents=texts)
    config = {
        **(body.get("generationConfig") or {}),
        **{k: body[k] for k in ("tools", "toolConfig", "safetySettings") if k in body},
    }
    if "systemInstruction" in body:
        config["system_instruction"] = body["systemInstruction"]
    kwargs = {"model": model, "contents": body["contents"], "config": config or None}
    if path.endswith(":streamGenerateContent"):
        return models.generate_content_stream(**kwargs)
    return models.generate_content(**kwargs)


def _create(client: Any, provider: str, interaction: Interaction, use_async: bool) -> Any:
    if provider == "mistral":
        return _mistral(client, interaction, use_async)
    if provider == "bedrock":
        return _bedrock(client, interaction)
    if provider == "anthropic-bedrock":
        body = interaction.request_json()
        body.pop("anthropic_version", None)
        return client.messages.create(model=unquote(interaction.key[3].split("/")[2]), **body)
    if provider in ("gemini", "vertexai"):
        return _gemini(client, interaction, use_async)
    if provider == "cohere":
        body = interaction.request_json()
        if interaction.key[3].endswith("/v2/embed"):
            return client.embed(**body)
        return client.chat_stream(**body) if body.pop("stream", False) else client.chat(**body)
    body = interaction.request_json()
    path = interaction.key[3]
    if path.endswith("/v1/responses"):
        kwargs = {name: body.pop(name) for name in _RESPONSES_KWARGS if name in body}
        return client.responses.create(**kwargs, extra_body=body or None)
    if path.endswith("/completions") and not path.endswith("/chat/completions"):
        kwargs = {name: body.pop(name) for name in ("model", "prompt", "stream") if name in body}
        return client.completions.create(**kwargs, extra_body=body or None)
    if path.endswith("/embeddings"):
        kwargs = {name: body.pop(name) for name in _EMBEDDINGS_KWARGS if name in body}
        return client.embeddings.create(**kwargs, extra_body=body or None)
    names = _ANTHROPIC_KWARGS if provider == "anthropic" else _OPENAI_KWARGS
    kwargs = {name: body.pop(name) for name in names if name in body}
    if provider != "anthropic":
        return client.chat.completions.create(**kwargs, extra_body=body or None)
    # Recordings made with the beta surface (?beta=true) replay through client.beta.messages.
    api = client.beta.messages if "beta=true" in interaction.uri else client.messages
    # An explicit timeout skips the SDK's client-side "use streaming for long requests" refusal.
    return api.create(**kwargs, extra_body=body or None, timeout=600.0)


def _streamed(interaction: Interaction) -> bool:
    path = interaction.key[3]
    if path.endswith(("/converse-stream", "/invoke-with-response-stream")):
        return True
    if path.endswith(("/converse", "/invoke")):
        return False
    return bool(interaction.request_json().get("stream")) or path.endswith(":streamGenerateContent")


def _replay_sync(client: Any, provider: str, interactions: list[Interaction]) -> list[str | None]:
    errors: list[str | None] = []
    for interaction in interactions:
        try:
            result = _create(client, provider, interaction, False)
            if _streamed(interaction):
                for _ in result:
                    pass
            errors.append(None)
        except SDK_ERRORS as exc:
            errors.append(type(exc).__qualname__)
    return errors


async def _replay_async(client: Any, provider: str, interactions: list[Interaction]) -> list[str | None]:
    errors: list[str | None] = []
    for interaction in interactions:
        try:
            result = _create(client, provider, interaction, True)
            if inspect.isawaitable(result):  # cohere's async chat_stream is an async generator
                result = await result
            if _streamed(interaction):
                async for _ in result:
                    pass
            errors.append(None)
        except SDK_ERRORS as exc:
            errors.append(type(exc).__qualname__)
    return errors


# Recordings that no SDK call can reproduce, each with the reason (kept out of the replay).
LEFT_OUT = {
    "dd-trace-py/tests/contrib/openai/cassettes/v1/completion_streamed.yaml": (
        'the recorded request has no "stream": true but its recorded response is a stream'
    ),
}


def test_left_out_recordings_are_few_and_real() -> None:
    """Every left-out recording exists in the corpus and has a reason."""
    assert set(LEFT_OUT) <= set(MANIFEST)
    assert all(reason for reason in LEFT_OUT.values())
    assert len(LEFT_OUT) <= 1


def _cases() -> list[Any]:
    cases = []
    for path, row in sorted(MANIFEST.items()):
        if path in LEFT_OUT:
            continue
        cases.append(pytest.param(path, False, id=f"sync:{path}"))
        if "async-client" in row["features"].split(","):
            cases.append(pytest.param(path, True, id=f"async:{path}"))
    return cases


@pytest.mark.parametrize(("path", "use_async"), _cases())
def test_replayed_usage_equals_ground_truth(path: str, use_async: bool, cap: Capture, tmp_path: Path) -> None:
    """Each call span and the task totals equal the provider-reported usage of the recording, and
    its calls re-priced from the ledger under their own model cost exactly what was recorded."""
    row = MANIFEST[path]
    provider = row["provider"]
    recorded = load(CASSETTES / Path(path))
    # Some recordings also hold the recording project's own non-LLM traffic: replay LLM calls only.
    indexes = [i for i, item in enumerate(recorded) if item.key[3].endswith(_LLM_PATHS)]
    interactions = [recorded[i] for i in indexes]
    replay = Replay(interactions)
    sdk = _sdk(row)
    client = _client(sdk, replay, use_async, interactions[0])
    with tokentrace.task("corpus") as task:
        if use_async:
            errors = asyncio.run(_replay_async(client, sdk, interactions))
        else:
            errors = _replay_sync(client, sdk, interactions)

    spans = cap.call_spans()
    assert len(spans) == len(interactions)
    sums = dict.fromkeys(("input", "output", "cache_read", "cache_write", "reasoning"), 0)
    for index, span, error in zip(indexes, spans, errors, strict=False):
        attrs = dict(span.attributes or {})
        truth = TRUTH[(path, index)]
        assert attrs["gen_ai.provider.name"] == PROVIDER_NAME.get(provider, provider)
        assert attrs["tokentrace.retries"] == 0
        if error is not None:
            assert attrs["error.type"] == error
            assert attrs["tokentrace.cost.status"] == "no_usage"
            assert "gen_ai.usage.input_tokens" not in attrs
            continue
        if truth["usage_norm"] is None and (not truth["streaming"] or provider == "bedrock"):
            # A response without usage (Azure's content-filter error body, recorded with status
            # 200): a call, unpriced and said so, never $0.
            assert attrs["tokentrace.cost.status"] == "unpriced"
            assert attrs["tokentrace.usage.problem"] == "the response reported no usage"
            assert "gen_ai.usage.input_tokens" not in attrs
            assert "tokentrace.cost.usd" not in attrs
            continue
        if truth["usage_norm"] is None:
            # A stream recorded without usage: tokentrace counts offline and says so.
            assert attrs["tokentrace.usage.estimated"] is True
            assert attrs["tokentrace.cost.status"] in {"estimated", "unpriced"}
            for key in sums:
                sums[key] += attrs[f"gen_ai.usage.{_ATTR[key]}"]
            continue
        if path in MISSING:
            assert attrs["tokentrace.cost.status"] == "invalid_usage"
            assert attrs["tokentrace.usage.problem"] == MISSING[path]
            assert "gen_ai.usage.input_tokens" not in attrs
            continue
        want = expected_usage(provider, truth["usage_norm"], truth["usage_raw"])
        if path in DIFFERS:
            want = DIFFERS[path][0]
        got = {key: attrs[f"gen_ai.usage.{_ATTR[key]}"] for key in want}
        assert got == want
        assert all(type(v) is int for v in got.values())
        assert "tokentrace.usage.estimated" not in attrs
        assert attrs["tokentrace.cost.status"] in {"priced", "unpriced"}
        if "cost" in truth["usage_raw"]:
            # A gateway that reports its own charge is recorded as provider-reported.
            assert attrs["tokentrace.cost.source"] == "provider"
        if attrs["tokentrace.cost.status"] == "priced":
            assert type(attrs["tokentrace.cost.usd"]) is float
        if not _streamed(recorded[index]) and attrs.get("tokentrace.cost.source") != "provider":
            # genai-prices' own reading of the body: the same price to the last digit, or none.
            price, how = database_price(sdk, recorded[index].key[3], recorded[index].body, attrs)
            if attrs["tokentrace.cost.status"] == "priced":
                assert price is not None, how
                exact = attrs.get("tokentrace.cost.usd_exact")
                if exact is not None:
                    assert Decimal(str(exact)) == price, how
                else:
                    assert attrs["tokentrace.cost.usd"] == float(price), how
            else:
                assert price is None, how
        for key in sums:
            sums[key] += want[key]

    totals = task.totals
    assert totals.llm_calls == len(interactions)
    assert totals.retries == 0
    assert (
        totals.input_tokens,
        totals.output_tokens,
        totals.cache_read_tokens,
        totals.cache_write_tokens,
        totals.reasoning_tokens,
    ) == (sums["input"], sums["output"], sums["cache_read"], sums["cache_write"], sums["reasoning"])
    assert totals.cost_usd == sum((m.cost_usd for m in totals.by_model.values()), Decimal(0))
    (task_span,) = cap.task_spans("corpus")
    assert task_span.attributes is not None
    assert task_span.attributes["tokentrace.task.input_tokens"] == totals.input_tokens
    assert task_span.attributes["tokentrace.task.llm_calls"] == len(interactions)
    assert not any(key.startswith("gen_ai.usage") for key in task_span.attributes)
    priced = sum(1 for span in spans if "tokentrace.cost.usd" in (span.attributes or {}))
    assert assert_reprices_to_itself(spans, tmp_path) == priced


_ATTR = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cache_read": "cache_read.input_tokens",
    "cache_write": "cache_write.input_tokens",
    "reasoning": "reasoning.output_tokens",
}
