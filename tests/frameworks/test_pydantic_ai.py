"""Pydantic AI agents on OpenAI's Chat Completions and Responses models, Gemini (google-genai) and
Bedrock's Converse (boto3), pointed at a local replay server: recorded by each SDK's
integration, once each."""

from __future__ import annotations

import boto3
import pytest
from google.genai import Client
from google.genai.types import HttpOptions
from pydantic_ai import Agent
from pydantic_ai.models.bedrock import BedrockConverseModel
from pydantic_ai.models.google import GoogleModel
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.bedrock import BedrockProvider
from pydantic_ai.providers.google import GoogleProvider
from pydantic_ai.providers.openai import OpenAIProvider

import tokentrace
from tests.frameworks import recordings as rec
from tests.frameworks.matrix import check
from tests.frameworks.pydantic_ai_runs import run
from tests.frameworks.recordings import Server
from tokentrace.testing import Capture

MODELS = ["OpenAIChatModel", "OpenAIResponsesModel", "GoogleModel", "BedrockConverseModel"]


def _agent(kind: str, url: str, mode: str) -> Agent[None, str]:
    streamed = mode.endswith("stream")
    if kind == "GoogleModel":
        client = Client(api_key="test-key", http_options=HttpOptions(base_url=url))
        recording = rec.GENERATE_STREAM if streamed else rec.GENERATE
        return Agent(GoogleModel(recording.model, provider=GoogleProvider(client=client)))
    if kind == "BedrockConverseModel":
        bedrock = boto3.client(
            "bedrock-runtime",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="test-secret",
        )
        recording = rec.CONVERSE_STREAM if streamed else rec.CONVERSE
        return Agent(BedrockConverseModel(recording.model, provider=BedrockProvider(bedrock_client=bedrock)))
    model = OpenAIChatModel if kind == "OpenAIChatModel" else OpenAIResponsesModel
    return Agent(model(rec.CHAT.model, provider=OpenAIProvider(base_url=url + "/v1", api_key="sk-test")))


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("mode", ["sync", "async", "stream", "async stream"])
def test_an_agent_run_is_one_call(kind: str, mode: str, cap: Capture) -> None:
    """run_sync, run, run_stream_sync and run_stream of a one-turn agent: one call span per request, the
    provider's usage and the task's exact cost."""
    with Server() as server, tokentrace.task("pydantic-ai") as task:
        run(_agent(kind, server.url, mode), mode)
    check(cap, task, server, framework="pydantic-ai", surface=kind, mode=mode)
