"""Fault injection: every internal hook raises, and the user's call is unaffected."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote

import boto3
import cohere
import groq
import mistralai.client
import openai
import pytest
from google import genai
from google.genai import types as genai_types

import tokentrace
from tests.support.cassettes import Replay, serve_botocore
from tests.support.clients import anthropic_client, openai_client, recorded, request_kwargs
from tokentrace.integrations import active_call
from tokentrace.integrations.anthropic import AnthropicIntegration, _MessagesStream
from tokentrace.integrations.bedrock import BedrockIntegration, _ConverseStream
from tokentrace.integrations.cohere import CohereIntegration
from tokentrace.integrations.cohere import _ChatStream as _CohereStream
from tokentrace.integrations.google_genai import GoogleGenAIIntegration
from tokentrace.integrations.google_genai import _Stream as _GeminiStream
from tokentrace.integrations.groq import GroqIntegration, _GroqChatStream
from tokentrace.integrations.mistral import MistralIntegration, _MistralStream
from tokentrace.integrations.openai import OpenAIIntegration, _ChatStream, _ResponsesStream
from tokentrace.testing import InjectedFault, inject_fault

PLAIN = "dd-trace-py/tests/contrib/litellm/cassettes/completion_reasoning.yaml"
STREAM = "dd-trace-py/tests/contrib/litellm/cassettes/completion_stream.yaml"
ERROR = "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_error.yaml"


class Injected(RuntimeError):
    pass


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise Injected("injected fault")


# A hook is one of tokentrace's own steps by its stable name (``tokentrace.testing.FAULT_POINTS``),
# or a method of an integration's public description (its readers), which any plug-in has too.
Hook = str | tuple[type, str]
HOOKS: list[Hook] = [
    "call.begin",
    "call.finish",
    "call.fail",
    "call.complete",
    "attempt.note",
    "call.end_span",
    "call.metrics",
    "price.lookup",
    (_ChatStream, "feed"),
    "stream.finish",
    "stream.wrap",
    "task.start_span",
    "task.end_span",
    "telemetry.instruments",
    (OpenAIIntegration, "request"),
    (OpenAIIntegration, "read"),
    (OpenAIIntegration, "stream_reader"),
]


def _hook_id(hook: Hook) -> str:
    return hook if isinstance(hook, str) else f"{hook[0].__name__}.{hook[1]}"


@contextmanager
def failing(hook: Hook) -> Iterator[None]:
    """``hook`` raises while the block runs."""
    if isinstance(hook, str):
        with inject_fault(hook):
            yield
        return
    target, name = hook
    own = name in target.__dict__
    original = target.__dict__.get(name)
    setattr(target, name, _boom)
    try:
        yield
    finally:
        if own:
            setattr(target, name, original)
        else:
            delattr(target, name)  # it was inherited


def _plain(client: Any) -> Any:
    (interaction,) = recorded(PLAIN)
    return client.chat.completions.create(**request_kwargs(interaction, "openai"))


def _run_plain() -> Any:
    (interaction,) = recorded(PLAIN)
    with tokentrace.task("faults"):
        return openai_client(Replay([interaction])).chat.completions.create(
            **request_kwargs(interaction, "openai")
        )


def _run_stream() -> list[Any]:
    (interaction,) = recorded(STREAM)
    with tokentrace.task("faults"):
        stream = openai_client(Replay([interaction])).chat.completions.create(
            **request_kwargs(interaction, "openai")
        )
        return [chunk.model_dump() for chunk in stream]


def _run_error() -> BaseException:
    (interaction,) = recorded(ERROR)
    with tokentrace.task("faults"):
        try:
            openai_client(Replay([interaction])).chat.completions.create(
                **request_kwargs(interaction, "openai")
            )
        except openai.APIError as exc:
            return exc
    raise AssertionError("the recorded 401 did not raise")


@pytest.fixture(scope="module")
def baseline() -> dict[str, Any]:
    """What the SDK returns with tokentrace not instrumented at all."""
    tokentrace.uninstrument()
    try:
        error = _run_error()
        return {
            "plain": _run_plain().model_dump(),
            "stream": _run_stream(),
            "error": (type(error), str(error)),
        }
    finally:
        tokentrace.instrument()


@pytest.mark.usefixtures("lenient")
@pytest.mark.parametrize("hook", HOOKS, ids=[_hook_id(h) for h in HOOKS])
def test_a_failing_hook_never_changes_the_users_result(
    hook: Hook, baseline: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Plain, streamed and failing calls give the same result or exception; at most one warning per site."""
    # Streams an earlier test left unfinished end when collected; end them before the fault is in.
    gc.collect()
    with failing(hook), caplog.at_level(logging.WARNING, logger="tokentrace"):
        for _ in range(2):
            result = _run_plain()
            assert type(result).__name__ == "ChatCompletion"
            assert result.model_dump() == baseline["plain"]
            assert _run_stream() == baseline["stream"]
            error = _run_error()
            assert (type(error), str(error)) == baseline["error"]
    injected = [r for r in caplog.records if "Injected" in r.getMessage()]
    sites = [r.getMessage().split(" in ")[1].split(" ")[0] for r in injected]
    assert injected, "the injected fault was never reached"
    assert len(sites) == len(set(sites)), f"a site warned twice: {sites}"
    # The call context was restored whatever failed: nothing leaks into the next call.
    assert active_call() is None


@pytest.mark.usefixtures("lenient")
def test_user_exception_object_passes_through_when_fail_hook_breaks() -> None:
    """Even with the failure hook broken, the SDK's own exception object reaches the caller."""
    with inject_fault("call.fail"):
        error = _run_error()
    assert isinstance(error, openai.AuthenticationError)
    assert error.status_code == 401


def test_strict_mode_reraises_internal_errors() -> None:
    """In the project's own tests the boundary re-raises, so tokentrace's bugs fail loudly."""
    with inject_fault("price.lookup"), pytest.raises(InjectedFault):
        _run_plain()


@pytest.mark.usefixtures("lenient")
def test_keyboard_interrupt_is_never_swallowed() -> None:
    """The boundary catches Exception only: KeyboardInterrupt passes through."""
    with inject_fault("price.lookup", KeyboardInterrupt()), pytest.raises(KeyboardInterrupt):
        _run_plain()


BUDGET_HOOKS = [
    "budget.gate",
    "request.digest",
    "budget.go_ahead",
    "request.estimate",
    "budget.check",
    "budget.settle",
    "budget.warned",
]


def _run_budgeted(budget: tokentrace.Budget) -> Any:
    (interaction,) = recorded(PLAIN)
    with tokentrace.task("faults", budget=budget):
        return openai_client(Replay([interaction])).chat.completions.create(
            **request_kwargs(interaction, "openai")
        )


@pytest.mark.usefixtures("lenient")
@pytest.mark.parametrize("point", BUDGET_HOOKS)
def test_a_failing_budget_hook_lets_the_call_through_unchanged(point: str, baseline: dict[str, Any]) -> None:
    """Within budget and past a warn-mode budget, a failing budget step changes nothing the user sees."""
    with inject_fault(point):
        for budget in (
            tokentrace.Budget(max_llm_calls=10),
            tokentrace.Budget(max_llm_calls=0, on_exceed="warn"),
        ):
            assert _run_budgeted(budget).model_dump() == baseline["plain"]
    assert active_call() is None


@pytest.mark.usefixtures("lenient")
@pytest.mark.parametrize("point", ["budget.block", "budget.blocked"])
def test_a_failing_block_step_still_stops_the_call(point: str) -> None:
    """When recording a stopped call fails, the call is still stopped with BudgetExceeded."""
    with inject_fault(point):
        (interaction,) = recorded(PLAIN)
        replay = Replay([interaction])
        client = openai_client(replay)
        kwargs = request_kwargs(interaction, "openai")
        with (
            tokentrace.task("stopped", budget=tokentrace.Budget(max_llm_calls=0)),
            pytest.raises(tokentrace.BudgetExceeded),
        ):
            client.chat.completions.create(**kwargs)
        assert replay.sent == []
        assert active_call() is None  # the call context was restored


RESPONSES = "dd-trace-py/tests/contrib/openai/cassettes/v1/response_reasoning_tokens.yaml"
RESPONSES_STREAM = (
    "dd-trace-py/tests/contrib/openai/cassettes/v1/responses_stream_prompt_caching_cache_read.yaml"
)
EMBEDDINGS = (
    "opentelemetry-python-contrib/instrumentation-genai/opentelemetry-instrumentation-openai-v2/"
    "tests/cassettes/test_embeddings_with_batch_input.yaml"
)
MESSAGES = "dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion_cache_read.yaml"
MESSAGES_STREAM = "dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion_stream_cache_read.yaml"


def _body(path: str, names: tuple[str, ...]) -> tuple[Replay, dict[str, Any]]:
    (interaction,) = recorded(path)
    body = interaction.request_json()
    kwargs: dict[str, Any] = {name: body.pop(name) for name in names if name in body}
    if body:
        kwargs["extra_body"] = body
    return Replay([interaction]), kwargs


def _dump(result: Any) -> Any:
    """A comparable form of what the SDK returned: the model, or every streamed event."""
    if hasattr(result, "model_dump"):
        return result.model_dump()
    return [event.model_dump() for event in result]


async def _adump(result: Any) -> Any:
    return (
        [event.model_dump() async for event in result]
        if hasattr(result, "__aiter__")
        else result.model_dump()
    )


def _openai_chat(path: str, use_async: bool = False) -> Any:
    (interaction,) = recorded(path)
    client = openai_client(Replay([interaction]), use_async=use_async)
    kwargs = request_kwargs(interaction, "openai")
    if use_async:
        return asyncio.run(_async_call(client.chat.completions.create, kwargs))
    return _dump(client.chat.completions.create(**kwargs))


async def _async_call(method: Any, kwargs: dict[str, Any]) -> Any:
    return await _adump(await method(**kwargs))


def _openai_responses(path: str) -> Any:
    replay, kwargs = _body(path, ("model", "input", "stream"))
    return _dump(openai_client(replay).responses.create(**kwargs))


def _openai_embeddings() -> Any:
    replay, kwargs = _body(EMBEDDINGS, ("model", "input"))
    return _dump(openai_client(replay).embeddings.create(**kwargs))


def _anthropic(path: str, use_async: bool = False) -> Any:
    (interaction,) = recorded(path)
    client = anthropic_client(Replay([interaction]), use_async=use_async)
    kwargs = request_kwargs(interaction, "anthropic")
    if use_async:
        return asyncio.run(_async_call(client.messages.create, kwargs))
    return _dump(client.messages.create(**kwargs))


def _anthropic_helper(use_async: bool = False) -> Any:
    """``messages.stream()``: every event the helper's stream yields."""
    (interaction,) = recorded(MESSAGES_STREAM)
    client = anthropic_client(Replay([interaction]), use_async=use_async)
    kwargs = request_kwargs(interaction, "anthropic")
    del kwargs["stream"]
    if use_async:

        async def run() -> Any:
            async with client.messages.stream(**kwargs) as stream:
                return [event.model_dump() async for event in stream]

        return asyncio.run(run())
    with client.messages.stream(**kwargs) as stream:
        return [event.model_dump() for event in stream]


GROQ = "openllmetry/packages/opentelemetry-instrumentation-groq/tests/traces/cassettes/test_chat_tracing/"
MISTRAL = "openllmetry/packages/opentelemetry-instrumentation-mistralai/tests/cassettes/test_chat/"


def _groq(path: str) -> Any:
    interaction = recorded(path)[0]
    client = groq.Groq(api_key="gsk-test", http_client=Replay([interaction]).httpx_client(), max_retries=0)
    return _dump(client.chat.completions.create(**interaction.request_json()))


def _mistral(path: str) -> Any:
    (interaction,) = recorded(path)
    replay = Replay([interaction])
    client = mistralai.client.Mistral(api_key="test", client=replay.httpx_client())
    body = interaction.request_json()
    if body.pop("stream", False):
        return [event.data.model_dump() for event in client.chat.stream(**body)]
    return _dump(client.chat.complete(**body))


COHERE = "openllmetry/packages/opentelemetry-instrumentation-cohere/tests/cassettes/test_chat/"


def _cohere(path: str) -> Any:
    (interaction,) = recorded(path)
    client = cohere.ClientV2(api_key="co-test", httpx_client=Replay([interaction]).httpx_client())
    body = interaction.request_json()
    if body.pop("stream", False):
        return [event.model_dump() for event in client.chat_stream(**body)]
    return _dump(client.chat(**body))


GEMINI = (
    "openinference/python/instrumentation/openinference-instrumentation-google-genai/tests/cassettes/"
    "test_instrumentation/"
)


def _gemini(path: str, stream: bool) -> Any:
    (interaction,) = recorded(GEMINI + path)
    replay = Replay([interaction])
    options = genai_types.HttpOptions(api_version="v1beta", httpx_client=replay.httpx_client())
    client = genai.Client(api_key="g-test", http_options=options)
    contents = interaction.request_json()["contents"]
    if stream:
        return [
            c.model_dump()
            for c in client.models.generate_content_stream(model="gemini-2.5-flash", contents=contents)
        ]
    return _dump(client.models.generate_content(model="gemini-2.5-flash", contents=contents))


BEDROCK = "dd-trace-py/tests/contrib/botocore/bedrock_cassettes/"


def _bedrock(path: str, stream: bool) -> Any:
    (interaction,) = recorded(BEDROCK + path)
    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="AKID", aws_secret_access_key="s"
    )
    serve_botocore(Replay([interaction]), client)
    model = unquote(interaction.key[3].split("/")[2])
    if stream:
        return list(client.converse_stream(modelId=model, **interaction.request_json())["stream"])
    response = client.converse(modelId=model, **interaction.request_json())
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


SURFACES: dict[str, Callable[[], Any]] = {
    "openai.chat": lambda: _openai_chat(PLAIN),
    "openai.chat.async": lambda: _openai_chat(PLAIN, use_async=True),
    "openai.chat.stream": lambda: _openai_chat(STREAM),
    "openai.chat.stream.async": lambda: _openai_chat(STREAM, use_async=True),
    "openai.responses": lambda: _openai_responses(RESPONSES),
    "openai.responses.stream": lambda: _openai_responses(RESPONSES_STREAM),
    "openai.embeddings": _openai_embeddings,
    "anthropic.messages": lambda: _anthropic(MESSAGES),
    "anthropic.messages.async": lambda: _anthropic(MESSAGES, use_async=True),
    "anthropic.messages.stream": lambda: _anthropic(MESSAGES_STREAM),
    "anthropic.messages.helper.stream": _anthropic_helper,
    "anthropic.messages.helper.stream.async": lambda: _anthropic_helper(use_async=True),
    "groq.chat": lambda: _groq(GROQ + "test_chat_legacy.yaml"),
    "groq.chat.stream": lambda: _groq(GROQ + "test_chat_streaming_legacy.yaml"),
    "mistral.chat": lambda: _mistral(MISTRAL + "test_mistralai_chat_legacy.yaml"),
    "mistral.chat.stream": lambda: _mistral(MISTRAL + "test_mistralai_streaming_chat_legacy.yaml"),
    "cohere.chat": lambda: _cohere(COHERE + "test_cohere_v2_chat_legacy.yaml"),
    "cohere.chat.stream": lambda: _cohere(COHERE + "test_cohere_v2_chat_legacy_with_streaming.yaml"),
    "gemini.chat": lambda: _gemini("test_validate_token_counts.yaml", stream=False),
    "gemini.chat.stream": lambda: _gemini("test_validate_token_counts_stream.yaml", stream=True),
    "bedrock.converse": lambda: _bedrock("bedrock_converse.yaml", stream=False),
    "bedrock.converse.stream": lambda: _bedrock("bedrock_converse_stream.yaml", stream=True),
}
INTEGRATIONS = {
    "openai": OpenAIIntegration,
    "anthropic": AnthropicIntegration,
    "groq": GroqIntegration,
    "mistral": MistralIntegration,
    "cohere": CohereIntegration,
    "gemini": GoogleGenAIIntegration,
    "bedrock": BedrockIntegration,
}
ENGINE_HOOKS: list[Hook] = ["call.begin", "call.end_span", "price.lookup"]
# A stream is completed from its proxy, through its own reference to the engine's ``complete_with``.
STREAM_HOOKS: list[Hook] = ["stream.complete", "stream.finish", "stream.wrap"]
READERS = {
    "openai.chat": _ChatStream,
    "openai.responses": _ResponsesStream,
    "anthropic.messages": _MessagesStream,
    "anthropic.messages.helper": _MessagesStream,
    "groq.chat": _GroqChatStream,
    "mistral.chat": _MistralStream,
    "cohere.chat": _CohereStream,
    "gemini.chat": _GeminiStream,
    "bedrock.converse": _ConverseStream,
}


def _surface_cases() -> list[Any]:
    cases = []
    for surface in SURFACES:
        integration = INTEGRATIONS[surface.split(".")[0]]
        hooks: list[Hook] = [*ENGINE_HOOKS, (integration, "request")]
        if ".helper." in surface:
            hooks.append("call.defer")
        if "stream" in surface:
            reader = READERS[surface.removesuffix(".async").removesuffix(".stream")]
            hooks += [*STREAM_HOOKS, (integration, "stream_reader"), (reader, "feed")]
        else:
            hooks += [(integration, "read")]
        cases += [pytest.param(surface, hook, id=f"{surface}-{_hook_id(hook)}") for hook in hooks]
    return cases


@pytest.fixture(scope="module")
def surface_baseline() -> dict[str, Any]:
    """What each surface returns with tokentrace not instrumented at all."""
    tokentrace.uninstrument()
    try:
        return {surface: run() for surface, run in SURFACES.items()}
    finally:
        tokentrace.instrument()


@pytest.mark.usefixtures("lenient")
@pytest.mark.parametrize(("surface", "hook"), _surface_cases())
def test_every_surface_survives_every_failing_hook(
    surface: str, hook: Hook, surface_baseline: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Each provider surface (sync, async, streamed) returns exactly what the bare SDK returns while one
    of tokentrace's steps fails, and the failure is logged once."""
    # Streams an earlier test left unfinished end when collected; end them before the fault is in.
    gc.collect()
    with failing(hook), caplog.at_level(logging.WARNING, logger="tokentrace"), tokentrace.task("faults"):
        for _ in range(2):
            assert SURFACES[surface]() == surface_baseline[surface]
    injected = [r.getMessage() for r in caplog.records if "Injected" in r.getMessage()]
    # Once per step that failed: a stream the SDK integration could not watch (a lazy generator
    # that sends when first iterated) is then recorded by the HTTP client integration, whose
    # reading of the body meets the same injected fault at a step of its own.
    sites = [message.split("internal error in ", 1)[1].split(" ", 1)[0] for message in injected]
    assert len(sites) == 1 or (len(sites) == 2 and sites[1].startswith("wire.")), injected
    assert active_call() is None


@pytest.mark.usefixtures("lenient")
@pytest.mark.parametrize("point", ["raw.read_parsed", "raw.wrap_unread"])
def test_a_failing_raw_response_hook_leaves_the_parsed_result_alone(
    point: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An async raw response parsed by the application: the same message whatever fails inside."""
    (interaction,) = recorded(MESSAGES)
    kwargs = request_kwargs(interaction, "anthropic")

    async def parse() -> Any:
        client = anthropic_client(Replay([interaction]), use_async=True)
        raw = await client.messages.with_raw_response.create(**kwargs)
        return (await raw.parse()).model_dump()

    tokentrace.uninstrument()
    try:
        bare = asyncio.run(parse())
    finally:
        tokentrace.instrument()
    with (
        inject_fault(point),
        caplog.at_level(logging.WARNING, logger="tokentrace"),
        tokentrace.task("faults"),
    ):
        assert asyncio.run(parse()) == bare
    assert len([r for r in caplog.records if "Injected" in r.getMessage()]) == 1
