"""Every recorded call of a provider API the HTTP client integrations read, sent with a bare
httpx2 client (no SDK, as LiteLLM and hand-written clients send them): the call is recorded once,
from the provider's own response body, with the same usage as the recording's ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tokentrace
from tests.integrations.test_corpus import (
    _ATTR,
    DIFFERS,
    LEFT_OUT,
    MANIFEST,
    MISSING,
    PROVIDER_NAME,
    TRUTH,
    expected_usage,
)
from tests.support.cassettes import CASSETTES, Interaction, Replay, load
from tokentrace.integrations import _wire
from tokentrace.testing import Capture

# Providers whose APIs the wire layer reads (Cohere has its SDK integration only).
_FAMILIES = {"openai", "openrouter", "azure-openai", "deepseek", "together", "groq", "mistral"} | {
    "anthropic",
    "gemini",
    "vertexai",
    "bedrock",
}


def _wired(item: Interaction) -> bool:
    found = _wire.route(item.key[3])
    if found is None or item.key[0] != "POST":
        return False
    return _wire._shaped(item.request_json() if item.request_body else {}, found.needs)


def _cases() -> list[Any]:
    return [
        pytest.param(path, id=path)
        for path, row in sorted(MANIFEST.items())
        if row["provider"] in _FAMILIES and path not in LEFT_OUT
    ]


@pytest.mark.parametrize("path", _cases())
def test_a_bare_http_client_call_is_recorded_once_with_the_providers_usage(path: str, cap: Capture) -> None:
    """Each recorded LLM request, sent as recorded through httpx2, gives one call span whose usage
    equals the ground truth (or says there was none), and the task counts each call once."""
    row = MANIFEST[path]
    provider = row["provider"]
    recorded = load(CASSETTES / Path(path))
    indexes = [i for i, item in enumerate(recorded) if _wired(item)]
    assert indexes, "every recording of these providers holds a request the HTTP layer reads"
    interactions = [recorded[i] for i in indexes]
    replay = Replay(interactions)
    with tokentrace.task("wire") as task, replay.sync_client() as client:
        for item in interactions:
            request = client.build_request(item.method, item.uri, content=item.request_body)
            response = client.send(request, stream=True)
            response.read()
            response.close()
    spans = cap.call_spans()
    assert len(spans) == len(interactions)
    assert task.totals.llm_calls == len(interactions)
    for index, span in zip(indexes, spans, strict=True):
        attrs = dict(span.attributes or {})
        truth = TRUTH[(path, index)]
        item = recorded[index]
        assert attrs["gen_ai.provider.name"] == PROVIDER_NAME.get(provider, provider) or provider in (
            "groq",
            "mistral",
        )
        if item.status >= 400:
            assert attrs["error.type"] == "ProviderHTTPError"
            assert attrs["http.response.status_code"] == item.status
            assert attrs["tokentrace.cost.status"] == "no_usage"
            continue
        if truth["usage_norm"] is None:
            if attrs.get("tokentrace.usage.estimated"):
                assert attrs["tokentrace.cost.status"] in {"estimated", "unpriced"}
            else:
                assert attrs["tokentrace.cost.status"] in {"unpriced", "invalid_usage"}
                assert "gen_ai.usage.input_tokens" not in attrs
            continue
        if path in MISSING:
            # A count the provider left out is not a zero: the same reading as through the SDK.
            assert attrs["tokentrace.cost.status"] == "invalid_usage"
            assert attrs["tokentrace.usage.problem"] == MISSING[path]
            continue
        want = expected_usage(provider, truth["usage_norm"], truth["usage_raw"])
        if path in DIFFERS:
            want = DIFFERS[path][0]
        got = {key: attrs.get(f"gen_ai.usage.{_ATTR[key]}") for key in want}
        assert got == want, attrs
        assert "tokentrace.usage.estimated" not in attrs
        assert attrs["tokentrace.cost.status"] in {"priced", "unpriced"}
