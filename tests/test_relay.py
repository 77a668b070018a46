"""Relayed calls (``_core/relay.py``): a library that sends a provider's requests itself, and asks
again after an answer it rejects, makes one call whose billed attempts are summed, and the ones
thrown away are retry waste."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import httpx
import pytest

import tokentrace
from tokentrace._cli.demo import RECORDINGS
from tokentrace._core import registry as _registry
from tokentrace.integrations import Method, RelayIntegration, Request
from tokentrace.testing import Capture, Recorded, ReplayServer

CHAT = (RECORDINGS / "openai_chat.json").read_bytes()  # gpt-4o-mini: 123 in, 17 out = $0.00002865
STREAM = (RECORDINGS / "openai_chat_stream.sse").read_bytes()  # gpt-3.5-turbo: 13 in, 20 out
EMBEDDING = (RECORDINGS / "openai_embedding.json").read_bytes()  # text-embedding-ada-002: 2 in
PRICE = Decimal("0.00002865")


class Checked:
    """A small library that posts a chat request with httpx and asks again, up to ``tries``
    times, while its check rejects the answer (as libraries that validate a structured answer do)."""

    def __init__(self, url: str, rejects: int) -> None:
        self.url = url
        self.rejects = rejects

    def ask(self, model: str, messages: list[dict[str, str]], tries: int = 3) -> dict[str, Any]:
        for _ in range(tries):
            answer: dict[str, Any] = httpx.post(
                self.url + "/v1/chat/completions", json={"model": model, "messages": messages}
            ).json()
            if self.rejects == 0:
                return answer
            self.rejects -= 1
        raise ValueError("no answer passed the check")

    def stream(self, model: str, messages: list[dict[str, str]], store: bool = False) -> Iterator[str]:
        """The answer's events as they come; at its end, when ``store``, the answer's embedding is
        posted (a cache storing it, as a library's success callback does, in the stream's context)."""
        body = {"model": model, "messages": messages, "stream": True}
        with httpx.stream("POST", self.url + "/v1/chat/completions", json=body) as response:
            yield from (line for line in response.iter_lines() if line.startswith("data: {"))
        if store:
            httpx.post(self.url + "/v1/embeddings", json={"model": "text-embedding-ada-002", "input": ["hi"]})


class CheckedIntegration(RelayIntegration):
    name = "checked"
    provider = "openai"
    methods = (
        Method(__name__, "Checked.ask", "chat", positional=("model", "messages")),
        Method(__name__, "Checked.stream", "chat", positional=("model", "messages")),
    )

    def request(self, method: Method, instance: Any, kwargs: Mapping[str, Any]) -> Request:
        return Request(kwargs.get("model"), stream=method.qualname == "Checked.stream", kwargs=kwargs)


@pytest.fixture(autouse=True)
def _checked() -> Iterator[None]:
    _registry._activate("checked", CheckedIntegration())
    yield
    tokentrace.uninstrument("checked")


MESSAGES = [{"role": "user", "content": "hi"}]


def _server() -> ReplayServer:
    return ReplayServer({"/v1/chat/completions": [Recorded(CHAT)] * 3})


def test_an_answer_thrown_away_is_billed_and_is_retry_waste(cap: Capture) -> None:
    """Two answers, the first rejected: one call with two attempts, both billed (246 in, 34 out,
    $0.0000573), and the first one's $0.00002865 and 140 tokens are retry waste."""
    with _server() as server, tokentrace.task("checked") as task:
        Checked(server.url, rejects=1).ask("gpt-4o-mini", MESSAGES)
    assert len(server.requests) == 2
    (span,) = cap.call_spans()
    attrs = dict(span.attributes or {})
    assert attrs["tokentrace.attempts"] == ("200", "200")
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (246, 34)
    totals = task.totals
    assert (totals.llm_calls, totals.retries) == (1, 1)
    assert totals.cost_usd == 2 * PRICE
    assert (totals.retry_waste_tokens, totals.retry_waste_cost_usd) == (140, PRICE)


def test_an_answer_taken_at_once_is_no_waste(cap: Capture) -> None:
    """One request, answered and taken: one attempt, its exact cost, no retry waste."""
    with _server() as server, tokentrace.task("checked") as task:
        Checked(server.url, rejects=0).ask("gpt-4o-mini", MESSAGES)
    assert len(server.requests) == 1
    totals = task.totals
    assert (totals.llm_calls, totals.retries, totals.cost_usd) == (1, 0, PRICE)
    assert (totals.retry_waste_tokens, totals.retry_waste_cost_usd) == (0, Decimal(0))


def test_a_call_that_fails_after_billed_answers_is_waste_whole(cap: Capture) -> None:
    """Every answer rejected: the call fails with the library's error, its three billed attempts
    are its cost ($0.00008595), and all of it is waste, counted once."""
    with (
        _server() as server,
        tokentrace.task("checked") as task,
        pytest.raises(ValueError, match="no answer"),
    ):
        Checked(server.url, rejects=3).ask("gpt-4o-mini", MESSAGES)
    assert len(server.requests) == 3
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert attrs["error.type"] == "ValueError"
    totals = task.totals
    assert (totals.llm_calls, totals.retries, totals.cost_usd) == (1, 2, 3 * PRICE)
    assert (totals.retry_waste_tokens, totals.retry_waste_cost_usd) == (420, 3 * PRICE)


def test_a_relayed_answer_names_its_tier_as_the_providers_integration_does(cap: Capture) -> None:
    """An OpenAI answer served at the flex tier, relayed: the call span says so in
    ``openai.response.service_tier``, as the openai SDK's call does, not ``tokentrace.service_tier``,
    and costs what the same answer posted without a relaying library costs."""
    flex = CHAT.replace(b'"service_tier": "default"', b'"service_tier": "flex"')
    assert flex != CHAT
    served = {"/v1/chat/completions": [Recorded(flex)] * 2}
    with ReplayServer(served) as server, tokentrace.task("flex") as task:
        Checked(server.url, rejects=0).ask("gpt-4o-mini", MESSAGES)
        httpx.post(server.url + "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES})
    relayed, direct = (dict(span.attributes or {}) for span in cap.call_spans())
    assert relayed["openai.response.service_tier"] == direct["openai.response.service_tier"] == "flex"
    assert "tokentrace.service_tier" not in relayed
    assert relayed["tokentrace.cost.usd"] == direct["tokentrace.cost.usd"]
    # gpt-4o-mini has no flex rates of its own in the price database: the standard ones.
    assert relayed["tokentrace.cost.usd"] == 0.00002865
    assert task.totals.cost_usd == 2 * PRICE


def test_a_request_sent_once_a_relayed_stream_has_answered_is_a_call_of_its_own(cap: Capture) -> None:
    """A relayed stream whose library, once the answer is in, posts an embedding in the stream's
    context: the stream is one exact call (13 in, 20 out, no retry, no waste) and the embedding
    a call of its own (2 tokens), never an attempt that would take the answer's place."""
    served = {
        "/v1/chat/completions": [Recorded(STREAM, content_type="text/event-stream")],
        "/v1/embeddings": [Recorded(EMBEDDING)],
    }
    with ReplayServer(served) as server, tokentrace.task("stored") as task:
        events = list(Checked(server.url, rejects=0).stream("gpt-3.5-turbo", MESSAGES, store=True))
    assert len(events) > 2
    assert [path for path, _ in server.requests] == ["/v1/chat/completions", "/v1/embeddings"]
    spans = sorted(cap.call_spans(), key=lambda span: span.start_time or 0)
    streamed, stored = (dict(span.attributes or {}) for span in spans)
    assert streamed["gen_ai.operation.name"] == "chat"
    assert (streamed["gen_ai.usage.input_tokens"], streamed["gen_ai.usage.output_tokens"]) == (13, 20)
    assert streamed["tokentrace.retries"] == 0
    assert stored["gen_ai.operation.name"] == "embeddings"
    assert stored["gen_ai.usage.input_tokens"] == 2
    totals = task.totals
    assert (totals.llm_calls, totals.retries, totals.retry_waste_tokens) == (2, 0, 0)
    # 13 x $0.50 + 20 x $1.50 per million (gpt-3.5-turbo-0125), and 2 x $0.10 per million
    assert totals.cost_usd == Decimal("0.0000365") + Decimal("0.0000002")
