"""LlamaIndex's OpenAI LLM (llama-index-llms-openai, on openai<3), pointed at a local replay
server: recorded by the openai SDK integration, once each."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core.llms import ChatMessage
from llama_index.llms.openai import OpenAI

import tokentrace
from tests.frameworks import recordings as rec
from tests.frameworks.matrix import check
from tests.frameworks.recordings import Server
from tokentrace.testing import Capture

MESSAGES = [ChatMessage(role="user", content="Hello!")]


def _run(llm: OpenAI, mode: str) -> None:
    if mode == "sync":
        llm.chat(MESSAGES)
    elif mode == "stream":
        for _ in llm.stream_chat(MESSAGES):
            pass
    elif mode == "async":
        asyncio.run(llm.achat(MESSAGES))
    else:

        async def run() -> None:
            async for _ in await llm.astream_chat(MESSAGES):
                pass

        asyncio.run(run())


@pytest.mark.parametrize("mode", ["sync", "async", "stream", "async stream"])
def test_chat_is_one_call(mode: str, cap: Capture) -> None:
    """chat, achat, stream_chat and astream_chat: one call span per request, the provider's
    usage (a stream whose request did not ask for usage is flagged estimated)."""
    with Server() as server, tokentrace.task("llama-index") as task:
        llm = OpenAI(model=rec.CHAT.model, api_base=server.url + "/v1", api_key="sk-test", max_retries=0)
        _run(llm, mode)
    check(cap, task, server, framework="llama-index", surface="llms.openai.OpenAI chat", mode=mode)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_complete_is_one_call(mode: str, cap: Capture) -> None:
    """complete and acomplete (a chat model's completion goes through Chat Completions)."""
    with Server() as server, tokentrace.task("llama-index") as task:
        llm = OpenAI(model=rec.CHAT.model, api_base=server.url + "/v1", api_key="sk-test", max_retries=0)
        if mode == "sync":
            llm.complete("Hello!")
        else:
            asyncio.run(llm.acomplete("Hello!"))
    check(cap, task, server, framework="llama-index", surface="llms.openai.OpenAI complete", mode=mode)
