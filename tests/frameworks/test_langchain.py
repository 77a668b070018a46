"""LangChain's ChatOpenAI (Chat Completions and Responses) and ChatAnthropic, pointed at a
local replay server: recorded by the openai and anthropic SDK integrations, once each."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI

import tokentrace
from tests.frameworks import recordings as rec
from tests.frameworks.matrix import check
from tests.frameworks.recordings import Server
from tokentrace.testing import Capture

MODES = ["sync", "async", "stream", "async stream"]


def _model(kind: str, url: str) -> Any:
    if kind == "openai":
        return ChatOpenAI(model=rec.CHAT.model, base_url=url + "/v1", api_key="sk-test", max_retries=0)
    if kind == "openai-responses":
        return ChatOpenAI(
            model=rec.RESPONSES.model,
            base_url=url + "/v1",
            api_key="sk-test",
            max_retries=0,
            use_responses_api=True,
        )
    return ChatAnthropic(model=rec.MESSAGES.model, base_url=url, api_key="sk-ant-test", max_retries=0)  # type: ignore[call-arg]


def _run(model: Any, mode: str) -> None:
    if mode == "sync":
        model.invoke("Hello!")
    elif mode == "stream":
        for _ in model.stream("Hello!"):
            pass
    elif mode == "async":
        asyncio.run(model.ainvoke("Hello!"))
    else:

        async def run() -> None:
            async for _ in model.astream("Hello!"):
                pass

        asyncio.run(run())


SURFACES = {
    "openai": ("langchain-openai", "ChatOpenAI"),
    "openai-responses": ("langchain-openai", "ChatOpenAI(use_responses_api=True)"),
    "anthropic": ("langchain-anthropic", "ChatAnthropic"),
}


@pytest.mark.parametrize("kind", list(SURFACES))
@pytest.mark.parametrize("mode", MODES)
def test_a_chat_model_call_is_one_call(kind: str, mode: str, cap: Capture) -> None:
    """invoke, ainvoke, stream and astream: one call span per request, the provider's usage
    (a stream whose request did not ask for usage is flagged estimated)."""
    with Server() as server, tokentrace.task("langchain") as task:
        _run(_model(kind, server.url), mode)
    framework, surface = SURFACES[kind]
    check(cap, task, server, framework=framework, surface=surface, mode=mode)
