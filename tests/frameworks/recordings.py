"""The recorded provider responses the framework matrix serves, and what each must come to.

Each entry is one real response from ``tests/cassettes`` (its request, its body and the usage
the provider reported, from ``ground_truth.jsonl``). A case serves it from a
``tokentrace.testing.ReplayServer`` (which matches paths only) to a framework asking for the
recording's own model, and checks tokentrace's call span and task totals against the
provider's usage, priced independently by genai-prices.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cached_property
from typing import Any

import genai_prices

from tests.support.cassettes import CASSETTES, GROUND_TRUTH, Interaction, load
from tokentrace.testing import Recorded, ReplayServer

_TRUTH = {
    (row["path"], row["idx"]): row
    for row in map(json.loads, GROUND_TRUTH.read_text(encoding="utf-8").splitlines())
}
_KEEP_HEADERS = {"x-amzn-requestid", "x-amzn-bedrock-input-token-count", "x-amzn-bedrock-output-token-count"}
_PRICES_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "gemini": "google", "bedrock": "aws"}


@dataclass(frozen=True)
class Recording:
    """One recorded response: the path it answers, its body, and the provider's usage."""

    path: str
    index: int = 0

    @cached_property
    def interaction(self) -> Interaction:
        return load(CASSETTES / self.path)[self.index]

    @cached_property
    def truth(self) -> Mapping[str, Any]:
        return _TRUTH[(self.path, self.index)]

    @property
    def provider(self) -> str:
        return str(self.truth["provider"])

    @property
    def model(self) -> str:
        """The model the recorded request asked for (a framework is told to ask for it too)."""
        body = self.interaction.request_json()
        model = body.get("model") or self.truth["model"]
        return str(model)

    @property
    def streamed(self) -> bool:
        return bool(self.truth["streaming"])

    @property
    def has_usage(self) -> bool:
        return self.truth["usage_norm"] is not None

    @property
    def input_tokens(self) -> int:
        return int(self.truth["usage_norm"]["in"])

    @property
    def output_tokens(self) -> int:
        return int(self.truth["usage_norm"].get("out", 0))

    def served(self) -> Recorded:
        """The response as a ``ReplayServer`` serves it."""
        item = self.interaction
        headers = dict(item.headers)
        content_type = next(
            (v for k, v in headers.items() if k.lower() == "content-type"),
            "text/event-stream" if self.streamed and self.provider != "bedrock" else "application/json",
        )
        if self.provider == "bedrock" and self.streamed:
            content_type = "application/vnd.amazon.eventstream"
        kept = {k: v for k, v in headers.items() if k.lower() in _KEEP_HEADERS}
        return Recorded(item.body, content_type=content_type, status=item.status, headers=kept)

    def cut(self, events: int, error: bytes) -> Recorded:
        """The stream as served, cut after its first ``events`` server-sent events and ended by
        ``error`` (an event the provider sends when it fails mid-stream)."""
        served = self.served()
        kept = served.body.replace(b"\r\n", b"\n").split(b"\n\n")[:events]
        return replace(served, body=b"\n\n".join([*kept, error]) + b"\n\n")

    def cost(self, model: str | None = None) -> Decimal:
        """The provider's usage priced by genai-prices (not by tokentrace) for ``model``."""
        usage = genai_prices.Usage(input_tokens=self.input_tokens, output_tokens=self.output_tokens)
        price = genai_prices.calc_price(
            usage, model or self.truth["model"], provider_id=_PRICES_PROVIDER[self.provider]
        )
        return Decimal(price.total_price)


# OpenAI
CHAT = Recording(
    "openinference/python/instrumentation/openinference-instrumentation-litellm/tests/cassettes/"
    "test_token_counts/TestTokenCounts.test_openai.yaml"
)
CHAT_STREAM = Recording("dd-trace-py/tests/contrib/llama_index/cassettes/llama_index_chat_stream.yaml")
"""A stream recorded without ``stream_options.include_usage``: no usage in the body."""
CHAT_STREAM_USAGE = Recording(
    "openllmetry/packages/opentelemetry-instrumentation-agno/tests/cassettes/test_agent/"
    "test_agent_run_streaming.yaml"
)
"""A stream whose last chunk carries the usage."""
RESPONSES = Recording(
    "openinference/python/instrumentation/openinference-instrumentation-agent-framework/tests/"
    "cassettes/test_processor/test_openai_chat_with_agent.yaml"
)
RESPONSES_STREAM = Recording(
    "opentelemetry-python-contrib/instrumentation-genai/opentelemetry-instrumentation-openai-v2/"
    "tests/cassettes/test_responses_create_streaming_iteration[content_mode0].yaml"
)
EMBEDDINGS = Recording("dd-trace-py/tests/contrib/openai/cassettes/v1/embedding_b64.yaml")
COMPLETIONS = Recording("dd-trace-py/tests/cassettes/openai/openai_completions_post_09f7a946.yaml")
COMPLETIONS_STREAM = Recording("dd-trace-py/tests/cassettes/openai/openai_completions_post_1dd33b11.yaml")
# Anthropic
MESSAGES = Recording("logfire/tests/otel_integrations/cassettes/test_anthropic/test_async_beta_messages.yaml")
MESSAGES_STREAM = Recording(
    "openllmetry/packages/opentelemetry-instrumentation-anthropic/tests/cassettes/test_messages/"
    "test_anthropic_streaming_helper_methods_legacy.yaml"
)
# DSPy's answer to a Predict("question -> answer") in its field format (gpt-5-mini, "Paris")
PREDICT = Recording("logfire/tests/otel_integrations/cassettes/test_dspy/test_dspy_instrumentation.yaml", 1)
# Gemini
GENERATE = Recording(
    "openinference/python/instrumentation/openinference-instrumentation-google-genai/tests/cassettes/"
    "test_instrumentation/test_multi_turn_conversation.yaml"
)
GENERATE_STREAM = Recording(
    "openinference/python/instrumentation/openinference-instrumentation-google-genai/tests/cassettes/"
    "test_instrumentation/test_async_streaming_text_content.yaml"
)
# Bedrock
CONVERSE = Recording("dd-trace-py/tests/cassettes/bedrock/bedrock_converse_score.yaml")
CONVERSE_STREAM = Recording(
    "openinference/python/instrumentation/openinference-instrumentation-bedrock/tests/openinference/"
    "instrumentation/bedrock/cassettes/TestConverseStream.test_invoke_text_message.yaml"
)


# The event a provider ends a stream it cannot go on with: Anthropic's documented overloaded
# error, and the error object OpenAI sends in place of a chunk.
STREAM_ERRORS = {
    "anthropic": b'event: error\ndata: {"type": "error", '
    b'"error": {"type": "overloaded_error", "message": "Overloaded"}}',
    "openai": b'data: {"error": {"message": "The server had an error while processing your request.", '
    b'"type": "server_error", "param": null, "code": null}}',
}

# The recording served for a request, by the end of its path (longest first) and, for "#stream",
# by the request body's "stream": true.
ROUTES: dict[str, Recording] = {
    "/chat/completions": CHAT,
    "/responses": RESPONSES,
    "/responses#stream": RESPONSES_STREAM,
    "/embeddings": EMBEDDINGS,
    "/completions": COMPLETIONS,
    "/completions#stream": COMPLETIONS_STREAM,
    "/v1/messages": MESSAGES,
    "/v1/messages#stream": MESSAGES_STREAM,
    ":generateContent": GENERATE,
    ":streamGenerateContent": GENERATE_STREAM,
    "/converse": CONVERSE,
    "/converse-stream": CONVERSE_STREAM,
}


class Server(ReplayServer):
    """A ``ReplayServer`` serving the matrix's recordings to any framework, as its request asks.

    An OpenAI chat stream that sets ``stream_options.include_usage`` gets a recording whose last
    chunk carries the usage; one that does not gets a recording made without it (no usage in
    the body, as OpenAI answers). ``served`` lists the recording each request got (a failed
    request, none).
    """

    def __init__(
        self, *, fail_first: int = 0, cut_first: int = 0, cut_after: int = 1, chat: Recording | None = None
    ) -> None:
        super().__init__({})
        self.served: list[Recording] = []
        self._chat = chat
        """The answer to a chat request that does not stream, in place of ``CHAT`` (a program
        that parses its answer needs one in its own format)."""
        self._failures = fail_first
        """The first requests answered with HTTP 500 (no recording holds a 5xx)."""
        self._cuts = cut_first
        """The first streamed requests after those answered with their recorded stream cut after
        ``cut_after`` events by the provider's error event, as a provider fails a stream it has
        started (a cut stream is not in ``served``)."""
        self._cut_after = cut_after

    def _pick(self, path: str, body: bytes) -> Recorded | None:
        if self._failures:
            self._failures -= 1
            return Recorded(
                b'{"error": {"message": "The server had an error", "type": "server_error"}}', status=500
            )
        path = path.split("?", 1)[0]
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            data = {}
        streaming = isinstance(data, dict) and data.get("stream") is True
        recording: Recording | None = None
        if streaming and path.endswith("/chat/completions"):
            asked = (data.get("stream_options") or {}).get("include_usage") is True
            recording = CHAT_STREAM_USAGE if asked else CHAT_STREAM
        else:
            for end in sorted(ROUTES, key=len, reverse=True):
                plain, _, stream = end.partition("#")
                if path.endswith(plain) and bool(stream) == streaming:
                    recording = ROUTES[end]
                    break
            else:
                recording = next(
                    (ROUTES[e] for e in sorted(ROUTES, key=len, reverse=True) if path.endswith(e)), None
                )
        if recording is CHAT and self._chat is not None:
            recording = self._chat
        if recording is None:
            return None
        if self._cuts and streaming and recording.provider in STREAM_ERRORS:
            self._cuts -= 1
            return recording.cut(self._cut_after, STREAM_ERRORS[recording.provider])
        self.served.append(recording)
        return recording.served()
