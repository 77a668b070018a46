"""Pydantic AI agents on OpenAI's Chat Completions and Responses models, pointed at a local
replay server: recorded by the openai SDK integration, once each."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider

import tokentrace
from tests.frameworks import recordings as rec
from tests.frameworks.matrix import check
from tests.frameworks.recordings import Server
from tokentrace.testing import Capture

MODELS = {"OpenAIChatModel": OpenAIChatModel, "OpenAIResponsesModel": OpenAIResponsesModel}


def _agent(kind: str, url: str) -> Agent[None, str]:
    provider = OpenAIProvider(base_url=url + "/v1", api_key="sk-test")
    return Agent(MODELS[kind](rec.CHAT.model, provider=provider))


async def _stream(agent: Agent[None, str]) -> None:
    async with agent.run_stream("Hello!") as result:
        async for _ in result.stream_text(delta=True):
            pass


def _run(agent: Agent[None, str], mode: str) -> Any:
    if mode == "sync":
        return agent.run_sync("Hello!")
    if mode == "async":
        return asyncio.run(agent.run("Hello!"))
    if mode == "stream":
        for _ in agent.run_stream_sync("Hello!").stream_text(delta=True):
            pass
        return None
    return asyncio.run(_stream(agent))


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("mode", ["sync", "async", "stream", "async stream"])
def test_an_agent_run_is_one_call(kind: str, mode: str, cap: Capture) -> None:
    """run_sync, run, run_stream_sync and run_stream of a one-turn agent: one call span per request, the
    provider's usage and the task's exact cost."""
    with Server() as server, tokentrace.task("pydantic-ai") as task:
        _run(_agent(kind, server.url), mode)
    check(cap, task, server, framework="pydantic-ai", surface=kind, mode=mode)
