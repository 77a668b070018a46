"""Pydantic AI agents on Anthropic's Messages API (``AnthropicModel``), pointed at a local replay
server: recorded by the anthropic SDK integration, once each. This file runs in the pydantic-ai
environment (tests/frameworks/requirements-pydantic-ai.txt), whose pydantic-ai can call
anthropic 2."""

from __future__ import annotations

import pytest
from pydantic_ai import Agent
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.providers.anthropic import AnthropicProvider

import tokentrace
from tests.frameworks import recordings as rec
from tests.frameworks.matrix import check
from tests.frameworks.pydantic_ai_runs import run
from tests.frameworks.recordings import Server
from tokentrace.testing import Capture


@pytest.mark.parametrize("mode", ["sync", "async", "stream", "async stream"])
def test_an_agent_run_is_one_call(mode: str, cap: Capture) -> None:
    """run_sync, run, run_stream_sync and run_stream of a one-turn agent on AnthropicModel: one
    call span per request, the provider's usage and the task's exact cost."""
    recording = rec.MESSAGES_STREAM if mode.endswith("stream") else rec.MESSAGES
    with Server() as server, tokentrace.task("pydantic-ai") as task:
        provider = AnthropicProvider(base_url=server.url, api_key="sk-ant-test")
        run(Agent(AnthropicModel(recording.model, provider=provider)), mode)
    check(cap, task, server, framework="pydantic-ai", surface="AnthropicModel (pydantic-ai 2.78)", mode=mode)
