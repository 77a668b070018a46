"""LiteLLM, pointed at a local replay server: each request is one call, read from the
provider's own response body by tokentrace's HTTP client layer, priced exactly."""

from __future__ import annotations

import asyncio
from typing import Any

import litellm
import openai
import pytest

import tokentrace
from tests.frameworks import recordings as rec
from tests.frameworks.matrix import check, note, outcome
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


def _chain(exc: BaseException | None) -> list[BaseException]:
    out = []
    while exc is not None and len(out) < 10:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_budget_stops_the_second_request_before_it_leaves(provider: str, cap: Capture) -> None:
    """Budget(max_llm_calls=1) around a litellm loop: the first call goes out, the second is
    stopped before it is sent (the server sees one request). LiteLLM wraps what its HTTP client
    raised: the user sees litellm.InternalServerError, with BudgetExceeded in its cause chain."""
    raised: list[BaseException] = []
    budget = tokentrace.Budget(max_llm_calls=1)
    with Server() as server, tokentrace.task("loop", budget=budget) as task:
        kwargs = {"model": CHAT_MODEL[provider], "messages": MESSAGES, **_target(provider, server.url)}
        for _ in range(3):
            try:
                litellm.completion(**kwargs)
            except Exception as exc:  # the test reports what the user sees
                raised.append(exc)
                break
    seen = len(server.requests)
    spans = cap.call_spans()
    blocked = [s for s in spans if (s.attributes or {}).get("tokentrace.budget.blocked")]
    kind = f"{type(raised[0]).__module__}.{type(raised[0]).__qualname__}" if raised else "nothing"
    note(
        "litellm",
        f"Budget(max_llm_calls=1) loop ({provider}/)",
        "sync",
        "stopped" if seen == 1 else "not stopped",
        seen,
        len(spans) - len(blocked),
        f"the second call raises `{kind}`, caused by `tokentrace.BudgetExceeded`",
    )
    assert seen == 1
    assert len(raised) == 1
    assert isinstance(raised[0], litellm.InternalServerError)
    assert any(isinstance(exc, tokentrace.BudgetExceeded) for exc in _chain(raised[0]))
    assert task.totals.llm_calls == 1
    assert len(spans) - len(blocked) == 1
    assert blocked
    assert all((s.attributes or {})["error.type"] == "BudgetExceeded" for s in blocked)


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


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_retried_request_is_a_call_per_attempt(provider: str, cap: Capture) -> None:
    """completion(num_retries=1) whose first attempt gets HTTP 500: each attempt sent is a call
    of its own (the failed one with its error and no usage), and the task's usage and cost are
    the successful attempt's."""
    with Server(fail_first=1) as server, tokentrace.task("retried") as task:
        kwargs = {"model": CHAT_MODEL[provider], "messages": MESSAGES, **_target(provider, server.url)}
        litellm.completion(**kwargs, num_retries=1)
    spans = cap.call_spans()
    failed = [s for s in spans if "error.type" in (s.attributes or {})]
    note(
        "litellm",
        f"retried request, num_retries=1 ({provider}/)",
        "sync",
        "a call per attempt" if len(spans) == len(server.requests) else outcome(spans, len(server.requests)),
        len(server.requests),
        len(spans),
        f"{len(failed)} failed attempt(s) recorded with their error",
    )
    assert len(server.requests) == 2
    assert len(spans) == 2
    assert len(failed) == 1
    assert task.totals.llm_calls == 2
    (recording,) = server.served
    assert task.totals.input_tokens == recording.input_tokens
    assert task.totals.output_tokens == recording.output_tokens
    assert task.totals.cost_usd == recording.cost()
