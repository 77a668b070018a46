"""LiteLLM, pointed at a local replay server: each call is one call span, read from the
provider's own response body by tokentrace's HTTP client layer, priced exactly (its retries,
fallbacks and budget stops are in test_litellm_attempts.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import litellm
import openai
import pytest

import tokentrace
from tests.frameworks import recordings as rec
from tests.frameworks.matrix import check
from tests.frameworks.recordings import Server
from tokentrace.testing import Capture

MESSAGES = [{"role": "user", "content": "Hello!"}]
MODES = ["sync", "async", "stream", "async stream"]
# The model each provider's recordings asked for, as litellm names it.
CHAT_MODEL = {
    "openai": "openai/" + rec.CHAT.model,
    "anthropic": "anthropic/" + rec.MESSAGES.model,
    "gemini": "gemini/" + rec.GENERATE.model,
    "bedrock": "bedrock/" + rec.CONVERSE.model,
}
STREAM_MODEL = {
    "openai": "openai/" + rec.CHAT_STREAM_USAGE.model,
    "anthropic": "anthropic/" + rec.MESSAGES_STREAM.model,
    "gemini": "gemini/" + rec.GENERATE_STREAM.model,
    "bedrock": "bedrock/" + rec.CONVERSE_STREAM.model,
}


def _target(provider: str, url: str) -> dict[str, Any]:
    """Where litellm sends ``provider``'s requests: the replay server."""
    if provider == "openai":
        return {"api_base": url + "/v1", "api_key": "sk-test"}
    if provider == "anthropic":
        return {"api_base": url, "api_key": "sk-ant-test"}
    if provider == "gemini":
        return {"api_base": url, "api_key": "gemini-test"}
    return {
        "aws_access_key_id": "AKIAEXAMPLEEXAMPLE",
        "aws_secret_access_key": "example-secret-key",
        "aws_region_name": "us-east-1",
        "aws_bedrock_runtime_endpoint": url,
    }


def _run(mode: str, sync: Any, async_: Any, kwargs: dict[str, Any]) -> None:
    """Call litellm's sync or async function, reading a stream to its end."""
    if mode == "sync":
        sync(**kwargs)
    elif mode == "stream":
        for _ in sync(**kwargs):
            pass
    else:

        async def run() -> None:
            response = await async_(**kwargs)
            if mode == "async stream":
                async for _ in response:
                    pass

        asyncio.run(run())


@pytest.mark.parametrize("provider", list(CHAT_MODEL))
@pytest.mark.parametrize("mode", MODES)
def test_completion_is_one_exact_call(provider: str, mode: str, cap: Capture) -> None:
    """completion and acompletion, plain and streamed: one call span per request, with the
    provider's usage and the task's exact cost."""
    streamed = "stream" in mode
    model = (STREAM_MODEL if streamed else CHAT_MODEL)[provider]
    with Server() as server, tokentrace.task("litellm") as task:
        kwargs = {"model": model, "messages": MESSAGES, **_target(provider, server.url)}
        _run(mode, litellm.completion, litellm.acompletion, {**kwargs, "stream": streamed})
    check(cap, task, server, framework="litellm", surface=f"completion ({provider}/)", mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_responses_is_one_exact_call(mode: str, cap: Capture) -> None:
    """litellm.responses and aresponses to OpenAI's Responses API, plain and streamed."""
    streamed = "stream" in mode
    model = (rec.RESPONSES_STREAM if streamed else rec.RESPONSES).model
    with Server() as server, tokentrace.task("litellm") as task:
        kwargs = {"model": "openai/" + model, "input": "Say hi.", "stream": streamed}
        _run(mode, litellm.responses, litellm.aresponses, {**kwargs, **_target("openai", server.url)})
    check(cap, task, server, framework="litellm", surface="responses (openai/)", mode=mode)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_embedding_is_one_exact_call(mode: str, cap: Capture) -> None:
    """litellm.embedding and aembedding to OpenAI."""
    with Server() as server, tokentrace.task("litellm") as task:
        kwargs = {"model": "openai/" + rec.EMBEDDINGS.model, "input": ["hello world"]}
        _run(mode, litellm.embedding, litellm.aembedding, {**kwargs, **_target("openai", server.url)})
    check(cap, task, server, framework="litellm", surface="embedding (openai/)", mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_text_completion_is_one_call(mode: str, cap: Capture) -> None:
    """litellm.text_completion to OpenAI's legacy Completions API (a stream that did not ask for
    usage has none in its body: that call is flagged estimated)."""
    streamed = "stream" in mode
    model = (rec.COMPLETIONS_STREAM if streamed else rec.COMPLETIONS).model
    with Server() as server, tokentrace.task("litellm") as task:
        kwargs = {"model": "openai/" + model, "prompt": "What is 2+2?", "stream": streamed}
        _run(
            mode,
            litellm.text_completion,
            litellm.atext_completion,
            {**kwargs, **_target("openai", server.url)},
        )
    check(cap, task, server, framework="litellm", surface="text_completion (openai/)", mode=mode)


def test_an_app_using_the_openai_sdk_and_litellm_counts_each_call_once(cap: Capture) -> None:
    """The openai SDK's own create (its SDK integration) and litellm's completion (which posts
    through an openai client's low-level post()) in one task: three requests, three calls."""
    with Server() as server, tokentrace.task("both") as task:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)
        client.chat.completions.create(model=rec.CHAT.model, messages=MESSAGES)  # type: ignore[arg-type]
        litellm.completion(model=CHAT_MODEL["openai"], messages=MESSAGES, **_target("openai", server.url))
        client.chat.completions.create(model=rec.CHAT.model, messages=MESSAGES)  # type: ignore[arg-type]
    check(
        cap,
        task,
        server,
        framework="litellm",
        surface="openai SDK + litellm in one app",
        mode="sync",
        requests=3,
    )
