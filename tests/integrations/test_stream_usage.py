"""``configure(request_stream_usage=True)``: streamed Chat Completions that did not ask for their
usage are sent asking for it, and the application gets exactly the chunks it asked for."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

import tokentrace
from tests.support.clients import recorded
from tests.support.proc import run_python
from tokentrace._telemetry import providers as _telemetry
from tokentrace.testing import Capture, Recorded, ReplayServer

STREAM_USAGE = "dd-trace-py/tests/contrib/litellm/cassettes/completion_stream.yaml"
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def asking() -> Iterator[None]:
    settings = _telemetry.state.settings
    settings.request_stream_usage = True
    yield
    settings.request_stream_usage = False


def _server() -> ReplayServer:
    (interaction,) = recorded(STREAM_USAGE)
    body = interaction.body
    return ReplayServer({"/v1/chat/completions": [Recorded(body, content_type="text/event-stream")]})


def _chunks(use_async: bool, **extra: Any) -> tuple[list[Any], dict[str, Any], tokentrace.Task]:
    with _server() as server:
        url = server.url + "/v1"
        if use_async:

            async def main() -> tuple[list[Any], tokentrace.Task]:
                client = openai.AsyncOpenAI(api_key="sk-test", base_url=url, max_retries=0)
                async with tokentrace.task("asking") as task:
                    stream = await client.chat.completions.create(
                        model="gpt-4o-mini", messages=MESSAGES, stream=True, **extra
                    )
                    chunks = [chunk async for chunk in stream]
                return chunks, task

            chunks, task = asyncio.run(main())
        else:
            client = openai.OpenAI(api_key="sk-test", base_url=url, max_retries=0)
            with tokentrace.task("asking") as task:
                stream = client.chat.completions.create(
                    model="gpt-4o-mini", messages=MESSAGES, stream=True, **extra
                )
                chunks = list(stream)
        (request,) = server.requests
    return chunks, json.loads(request[1]), task


@pytest.mark.usefixtures("asking")
@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_stream_that_did_not_ask_is_sent_asking_and_its_usage_chunk_is_hidden(
    cap: Capture, use_async: bool
) -> None:
    """The request leaves with ``stream_options.include_usage``; the application gets every chunk
    but the usage-only one, none with empty ``choices``; the call is exact (13 in, 20 out)."""
    chunks, sent, task = _chunks(use_async)
    assert sent["stream_options"] == {"include_usage": True}
    assert len(chunks) == 21
    assert all(chunk.choices for chunk in chunks)
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (13, 20)
    assert "tokentrace.usage.estimated" not in attrs
    assert task.totals.estimated_calls == 0


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_by_default_a_stream_is_sent_as_the_application_wrote_it(cap: Capture, use_async: bool) -> None:
    """Off by default: no ``stream_options`` is added and every chunk the server sent is handed on."""
    chunks, sent, _ = _chunks(use_async)
    assert "stream_options" not in sent
    assert len(chunks) == 22


@pytest.mark.usefixtures("asking")
def test_a_stream_that_asked_itself_is_left_as_it_is(cap: Capture) -> None:
    """A request that set ``include_usage`` keeps its own options, and its usage chunk, which it asked
    for, reaches it."""
    chunks, sent, _ = _chunks(False, stream_options={"include_usage": True})
    assert sent["stream_options"] == {"include_usage": True}
    assert len(chunks) == 22
    assert not chunks[-1].choices


@pytest.mark.usefixtures("asking")
def test_the_applications_other_stream_options_are_kept(cap: Capture) -> None:
    """Options the application set are kept beside the one tokentrace adds, and its arguments are
    not changed in place."""
    options = {"include_obfuscation": False}
    chunks, sent, _ = _chunks(False, stream_options=options)
    assert sent["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert options == {"include_obfuscation": False}
    assert len(chunks) == 21


def test_the_variable_and_configure_turn_it_on_and_an_argument_wins() -> None:
    """``TOKENTRACE_REQUEST_STREAM_USAGE=true`` turns it on at first use; ``configure()``'s argument
    overrides the variable."""
    code = """
import tokentrace
from tokentrace._telemetry import providers as _telemetry
tokentrace.instrument("openai")
first = _telemetry.state.settings.request_stream_usage
tokentrace.configure(request_stream_usage=False)
print(first, _telemetry.state.settings.request_stream_usage)
"""
    assert run_python(code, {"TOKENTRACE_REQUEST_STREAM_USAGE": "true"}).split() == ["True", "False"]
    assert run_python(code).split() == ["False", "False"]
