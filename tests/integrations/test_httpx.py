"""The HTTP client integrations (httpx and httpx2): calls to a provider API that no SDK
integration records, sent to a real server on 127.0.0.1 that answers with recorded bodies."""

from __future__ import annotations

import asyncio
import gzip
from decimal import Decimal
from typing import Any

import httpx
import httpx2
import openai
import pytest

import tokentrace
from tests.support.clients import recorded
from tests.support.faults import WIRE_STEPS, requests_unchanged, restores
from tokentrace._cli.demo import RECORDINGS
from tokentrace.integrations import _wire, _wire_bodies
from tokentrace.integrations import httpx as httpx_integration
from tokentrace.testing import Capture, Recorded, ReplayServer

CHAT = (RECORDINGS / "openai_chat.json").read_bytes()  # gpt-4o-mini: 123 in, 17 out = $0.00002865
MESSAGES = "dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion_stream_cache_read.yaml"
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
LIBRARIES = [httpx, httpx2]


def _server(**extra: list[Recorded]) -> ReplayServer:
    return ReplayServer({"/v1/chat/completions": [Recorded(CHAT)], **extra})


@pytest.mark.parametrize("lib", LIBRARIES, ids=["httpx", "httpx2"])
@pytest.mark.parametrize("streamed", [False, True], ids=["read", "streamed"])
def test_a_post_to_a_chat_completions_path_is_one_priced_call(cap: Capture, lib: Any, streamed: bool) -> None:
    """A bare ``post`` (body read by the client) or ``stream`` (body read by the application) is
    recorded once: 123 input and 17 output tokens of gpt-4o-mini = $0.00002865."""
    with _server() as server, tokentrace.task("bare") as task, lib.Client() as client:
        if streamed:
            with client.stream("POST", server.url + "/v1/chat/completions", json=REQUEST) as response:
                assert b"".join(response.iter_bytes()) == CHAT
        else:
            assert client.post(server.url + "/v1/chat/completions", json=REQUEST).content == CHAT
    (span,) = cap.call_spans()
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.usage.input_tokens"] == 123
    assert attrs["gen_ai.usage.output_tokens"] == 17
    assert attrs["tokentrace.cost.status"] == "priced"
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, Decimal("0.00002865"))


@pytest.mark.parametrize("lib", LIBRARIES, ids=["httpx", "httpx2"])
def test_an_async_post_is_recorded_like_a_sync_one(cap: Capture, lib: Any) -> None:
    """``AsyncClient.send`` is read the same way: one call, the same exact cost."""

    async def main() -> tokentrace.Task:
        with _server() as server:
            async with tokentrace.task("bare-async") as task, lib.AsyncClient() as client:
                await client.post(server.url + "/v1/chat/completions", json=REQUEST)
                async with client.stream("POST", server.url + "/v1/chat/completions", json=REQUEST) as r:
                    async for _ in r.aiter_bytes():
                        pass
        return task

    task = asyncio.run(main())
    assert (task.totals.llm_calls, task.totals.cost_usd) == (2, Decimal("0.0000573"))
    assert len(cap.call_spans()) == 2


def test_an_sdk_call_is_recorded_once_not_again_by_its_http_client(cap: Capture) -> None:
    """The openai SDK's ``create`` is recorded by the openai integration; the request its httpx2
    client sends for it is not recorded a second time."""
    with _server() as server, tokentrace.task("sdk") as task:
        client = openai.OpenAI(api_key="sk-test", base_url=server.url + "/v1", max_retries=0)
        client.chat.completions.create(**REQUEST)  # type: ignore[call-overload]
    assert len(cap.call_spans()) == 1
    assert task.totals.llm_calls == 1


def test_an_sdk_clients_low_level_post_is_recorded(cap: Capture) -> None:
    """LiteLLM's way with OpenAI: the SDK client's own ``post("/chat/completions")``, which no SDK
    method tokentrace patches sees, is recorded from the response body, once."""
    with _server() as server, tokentrace.task("low-level") as task:
        client = openai.OpenAI(api_key="sk-test", base_url=server.url + "/v1", max_retries=0)
        client.post("/chat/completions", body=REQUEST, cast_to=openai.types.chat.ChatCompletion)
    (span,) = cap.call_spans()
    assert dict(span.attributes or {})["gen_ai.usage.input_tokens"] == 123
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, Decimal("0.00002865"))


def test_other_traffic_is_left_alone(cap: Capture) -> None:
    """Requests to paths that are no provider API, or to one that ends like one but does not carry
    its request (an application's own ``/api/survey/responses``), are not calls."""
    with (
        ReplayServer(
            {"/health": [Recorded(b"{}")], "/api/survey/responses": [Recorded(b'{"ok": true}')]}
        ) as server,
        tokentrace.task("other") as task,
        httpx.Client() as client,
    ):
        client.get(server.url + "/health")
        client.post(server.url + "/api/survey/responses", json={"answer": 4})
        client.get(server.url + "/v1/chat/completions")
    assert cap.call_spans() == []
    assert task.totals.llm_calls == 0


def test_a_budget_stops_a_bare_http_loop_before_the_request_that_would_cross_it(cap: Capture) -> None:
    """``Budget(max_llm_calls=1)`` lets the first request through and raises ``BudgetExceeded`` for
    the second before it leaves: the server receives one request."""
    with _server() as server, httpx.Client() as client:
        budget = tokentrace.Budget(max_llm_calls=1)
        with tokentrace.task("budgeted", budget=budget) as task:
            client.post(server.url + "/v1/chat/completions", json=REQUEST)
            with pytest.raises(tokentrace.BudgetExceeded):
                client.post(server.url + "/v1/chat/completions", json=REQUEST)
        assert len(server.requests) == 1
    assert task.totals.llm_calls == 1
    assert task.totals.cost_usd == Decimal("0.00002865")


def test_an_error_status_is_a_failed_call_without_usage(cap: Capture) -> None:
    """A 429 from the provider is a call that failed: its status code, no tokens, never $0."""
    error = b'{"error": {"message": "Rate limit reached", "type": "requests"}}'
    with (
        ReplayServer({"/v1/chat/completions": [Recorded(error, status=429)]}) as server,
        tokentrace.task("limited"),
        httpx.Client() as client,
    ):
        assert client.post(server.url + "/v1/chat/completions", json=REQUEST).status_code == 429
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert attrs["error.type"] == "ProviderHTTPError"
    assert attrs["http.response.status_code"] == 429
    assert attrs["tokentrace.cost.status"] == "no_usage"
    assert "gen_ai.usage.input_tokens" not in attrs


def test_a_gzip_body_read_as_a_stream_is_decoded(cap: Capture) -> None:
    """A compressed body the application streams is decompressed to be read: the same call."""
    with (
        ReplayServer(
            {"/v1/chat/completions": [Recorded(gzip.compress(CHAT), headers={"content-encoding": "gzip"})]}
        ) as server,
        tokentrace.task("gzip") as task,
        httpx.Client() as client,
        client.stream("POST", server.url + "/v1/chat/completions", json=REQUEST) as response,
    ):
        assert response.read() == CHAT
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, Decimal("0.00002865"))


def _anthropic_stream() -> tuple[bytes, bytes]:
    (interaction,) = recorded(MESSAGES)
    return interaction.request_body, interaction.body


def test_an_anthropic_stream_is_read_from_its_events(cap: Capture) -> None:
    """A Messages stream posted by hand: its ``message_start`` and ``message_delta`` usage, exact
    (11 + 1,031 cache reads in, 100 out = $0.0018423)."""
    body, events = _anthropic_stream()
    with (
        ReplayServer({"/v1/messages": [Recorded(events, content_type="text/event-stream")]}) as server,
        tokentrace.task("events") as task,
        httpx2.Client() as client,
        client.stream("POST", server.url + "/v1/messages", content=body) as response,
    ):
        for _ in response.iter_lines():
            pass
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1031
    assert attrs["tokentrace.stream.end"] == "completed"
    assert task.totals.cost_usd == Decimal("0.0018423")


def test_a_stream_cut_before_its_final_usage_is_estimated(cap: Capture) -> None:
    """An Anthropic stream whose connection ends before ``message_delta`` is one call, its output
    estimated from the text that arrived, never the ``message_start`` placeholder as exact."""
    body, events = _anthropic_stream()
    cut = events[: events.index(b"event: message_delta")]
    with (
        ReplayServer({"/v1/messages": [Recorded(cut, content_type="text/event-stream")]}) as server,
        tokentrace.task("cut") as task,
        httpx2.Client() as client,
        client.stream("POST", server.url + "/v1/messages", content=body) as response,
    ):
        for _ in response.iter_lines():
            pass
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert attrs["tokentrace.usage.estimated"] is True
    assert attrs["tokentrace.cost.status"] == "estimated"
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1031
    assert task.totals.estimated_calls == 1


def test_uninstrument_restores_the_clients_send() -> None:
    """Undoing the httpx integrations puts the libraries' own ``send`` back; instrumenting wraps
    it once."""
    for lib in LIBRARIES:
        restores(lib.__name__, (lib.Client, "send"), (lib.AsyncClient, "send"))


WIRE_HOOKS = [
    *WIRE_STEPS,
    (_wire, "route"),
    (_wire.Exchange, "read"),
    (_wire_bodies, "json_object"),
    (httpx_integration, "_peek"),
    (httpx_integration, "_received"),
]


def _every_way(url: str) -> list[Any]:
    """What a bare client gets: a read post, a streamed post (both libraries, sync and async), and
    the error of a request to a closed port."""
    seen: list[Any] = []
    for lib in LIBRARIES:
        with lib.Client() as client:
            seen.append(client.post(url + "/v1/chat/completions", json=REQUEST).content)
            with client.stream("POST", url + "/v1/chat/completions", json=REQUEST) as response:
                seen.append(b"".join(response.iter_bytes()))

        async def main(lib: Any = lib) -> bytes:
            async with (
                lib.AsyncClient() as client,
                client.stream("POST", url + "/v1/chat/completions", json=REQUEST) as r,
            ):
                return b"".join([chunk async for chunk in r.aiter_bytes()])

        seen.append(asyncio.run(main()))
        with lib.Client() as client, pytest.raises(lib.ConnectError) as refused:
            client.post("http://127.0.0.1:9/v1/chat/completions", json=REQUEST)
        seen.append(type(refused.value))
    return seen


@pytest.mark.usefixtures("lenient")
@pytest.mark.parametrize(("target", "name"), WIRE_HOOKS, ids=[f"{t.__name__}.{n}" for t, n in WIRE_HOOKS])
def test_a_failing_wire_step_leaves_every_request_as_it_would_be(
    target: Any, name: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With any step of the HTTP client integrations raising, every request returns exactly the
    bytes (or raises exactly the error) it does with tokentrace off, and the failure is logged."""
    with _server() as server:
        baseline = requests_unchanged(
            ("httpx", "httpx2"), lambda: _every_way(server.url), (target, name), monkeypatch, caplog
        )
    assert baseline[0] == CHAT
