"""The OpenAI Agents SDK's Runner on its Responses model, its Chat Completions model and
LitellmModel, pointed at a local replay server: each request one call, once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agents import Agent, OpenAIChatCompletionsModel, OpenAIResponsesModel, Runner, set_tracing_disabled
from agents.extensions.models.litellm_model import LitellmModel
from openai import AsyncOpenAI

import tokentrace
from tests.frameworks import recordings as rec
from tests.frameworks.matrix import check
from tests.frameworks.recordings import Server
from tokentrace.testing import Capture

set_tracing_disabled(True)


def _model(kind: str, url: str) -> Any:
    client = AsyncOpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
    if kind == "OpenAIResponsesModel":
        return OpenAIResponsesModel(rec.RESPONSES.model, openai_client=client)
    if kind == "OpenAIChatCompletionsModel":
        return OpenAIChatCompletionsModel(rec.CHAT.model, openai_client=client)
    if kind == "LitellmModel (openai/)":
        return LitellmModel("openai/" + rec.CHAT.model, base_url=url + "/v1", api_key="sk-test")
    return LitellmModel("anthropic/" + rec.MESSAGES.model, base_url=url, api_key="sk-ant-test")


KINDS = [
    "OpenAIResponsesModel",
    "OpenAIChatCompletionsModel",
    "LitellmModel (openai/)",
    "LitellmModel (anthropic/)",
]


def _run(agent: Agent[Any], mode: str) -> None:
    if mode == "sync":
        Runner.run_sync(agent, "Hello!")
    elif mode == "async":
        asyncio.run(Runner.run(agent, "Hello!"))
    else:

        async def run() -> None:
            result = Runner.run_streamed(agent, "Hello!")
            async for _ in result.stream_events():
                pass

        asyncio.run(run())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", ["sync", "async", "async stream"])
def test_a_runner_turn_is_one_call(kind: str, mode: str, cap: Capture) -> None:
    """Runner.run_sync, run and run_streamed of a one-turn agent: one call span per request,
    the provider's usage and the task's exact cost."""
    with Server() as server, tokentrace.task("openai-agents") as task:
        _run(Agent(name="assistant", instructions="Be brief.", model=_model(kind, server.url)), mode)
    check(cap, task, server, framework="openai-agents", surface=kind, mode=mode)
