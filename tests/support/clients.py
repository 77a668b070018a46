"""Official SDK clients over a replay transport (never the network)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import anthropic
import httpx2
import openai

from tests.support.cassettes import CASSETTES, Interaction, Replay, load


def openai_client(replay: Replay, *, use_async: bool = False, max_retries: int = 0) -> Any:
    if use_async:
        return openai.AsyncOpenAI(
            api_key="sk-test", http_client=replay.async_client(), max_retries=max_retries
        )
    return openai.OpenAI(api_key="sk-test", http_client=replay.sync_client(), max_retries=max_retries)


def anthropic_client(replay: Replay, *, use_async: bool = False, max_retries: int = 0, **kw: Any) -> Any:
    if use_async:
        return anthropic.AsyncAnthropic(
            api_key="sk-ant-test", http_client=replay.async_client(), max_retries=max_retries, **kw
        )
    return anthropic.Anthropic(
        api_key="sk-ant-test", http_client=replay.sync_client(), max_retries=max_retries, **kw
    )


def recorded(path: str) -> list[Interaction]:
    """The interactions of one copied cassette."""
    return load(CASSETTES / path)


def request_kwargs(interaction: Interaction, provider: str) -> dict[str, Any]:
    """The recorded request body as SDK keyword arguments (the rest goes in ``extra_body``)."""
    body = interaction.request_json()
    names = (
        ("model", "messages", "stream")
        if provider == "openai"
        else ("model", "messages", "max_tokens", "stream")
    )
    kwargs: dict[str, Any] = {name: body.pop(name) for name in names if name in body}
    if body:
        kwargs["extra_body"] = body
    if provider == "anthropic":
        kwargs["timeout"] = 600.0
    return kwargs


def spliced_error(status: int, like: Interaction) -> Interaction:
    """A recorded error body served with a retryable ``status``.

    No recording in the corpus holds a 429 or 5xx, so retry tests splice a recorded error
    response in front of a recorded success and serve it with the retryable status code, plus
    ``retry-after-ms: 1`` so the SDK's back-off does not slow the suite.
    """
    return Interaction(
        like.method,
        like.uri,
        like.request_body,
        status,
        [("content-type", "application/json"), ("retry-after-ms", "1")],
        like.body,
    )


def chat_completion_body(usage: Any, model: str = "gpt-4o-mini") -> dict[str, Any]:
    """A minimal Chat Completions response carrying ``usage`` (for payloads no recording has)."""
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": usage,
    }


def message_body(usage: Any, model: str = "claude-sonnet-4-5") -> dict[str, Any]:
    """A minimal Anthropic Messages response carrying ``usage``."""
    return {
        "id": "m1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "usage": usage,
    }


def synthetic(uri: str, body: dict[str, Any], times: int = 1) -> list[Interaction]:
    """A JSON response written by the test (for usage payloads no recording has)."""
    raw = json.dumps(body).encode()
    return [
        Interaction("POST", uri, b"{}", 200, [("content-type", "application/json")], raw)
        for _ in range(times)
    ]


class Repeat(Replay):
    """Serves the same recorded response to every request (load tests)."""

    def __init__(self, interaction: Interaction) -> None:
        super().__init__([interaction])
        self._response = interaction

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        item = self._response
        return httpx2.Response(item.status, headers=item.headers, content=item.body)


def with_connect_error_first(interactions: Iterable[Interaction]) -> Replay:
    """A replay whose first attempt fails to connect (a real ``httpx2.ConnectError``)."""
    replay = Replay(list(interactions))
    failed = {"done": False}
    original = replay.handler

    def handler(request: httpx2.Request) -> httpx2.Response:
        if not failed["done"]:
            failed["done"] = True
            raise httpx2.ConnectError("connection refused", request=request)
        return original(request)

    replay.handler = handler  # type: ignore[method-assign]
    return replay
