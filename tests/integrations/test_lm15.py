"""The lm15 integration (and DSPy's default engine, which vendors lm15): calls to a provider API
sent with lm15's own HTTP transports, to a real server on 127.0.0.1 that answers with recorded
bodies, read as the httpx integration reads them."""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
from decimal import Decimal
from typing import Any

import lm15.transports as lm15_transports  # the test extra installs lm15
import pytest

import tokentrace
from tests.support.clients import recorded
from tests.support.faults import WIRE_STEPS, requests_unchanged, restores
from tokentrace._cli.demo import RECORDINGS
from tokentrace.integrations import _wire
from tokentrace.integrations import lm15 as lm15_integration
from tokentrace.testing import Capture, Recorded, ReplayServer

CHAT = (RECORDINGS / "openai_chat.json").read_bytes()  # gpt-4o-mini: 123 in, 17 out = $0.00002865
MESSAGES = "dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion_stream_cache_read.yaml"
REQUEST = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
PRICE = Decimal("0.00002865")
Request = lm15_transports.TransportRequest


def _server(**extra: list[Recorded]) -> ReplayServer:
    return ReplayServer({"/v1/chat/completions": [Recorded(CHAT)], **extra})


def _post(url: str, body: bytes = REQUEST) -> Any:
    return Request("POST", url, [("content-type", "application/json")], body)


def _read(response: Any, how: str) -> bytes:
    """The body, read one of the ways lm15 offers (each closes the response at its end)."""
    with response:
        if how == "read":
            return bytes(response.read())
        if how == "iter":
            return b"".join(response)
        return b"".join(response.iter_lines())


async def _aread(response: Any, how: str) -> bytes:
    async with response:
        if how == "read":
            return bytes(await response.read())
        if how == "iter":
            return b"".join([chunk async for chunk in response])
        return b"".join([line async for line in response.aiter_lines()])


@pytest.mark.parametrize("how", ["read", "iter", "iter_lines"])
@pytest.mark.parametrize("mode", ["sync", "async", "async-with"])
def test_a_post_to_a_chat_completions_path_is_one_priced_call(cap: Capture, how: str, mode: str) -> None:
    """A post read whole, iterated or read by lines, sync or async (awaited, or entered as lm15's
    ``async with transport.stream(...)``), is recorded once: 123 input and 17 output tokens of
    gpt-4o-mini = $0.00002865."""
    with _server() as server, tokentrace.task("lm15") as task:
        url = server.url + "/v1/chat/completions"
        if mode == "sync":
            with lm15_transports.StdlibTransport() as transport:
                body = _read(transport.stream(_post(url)), how)
        else:

            async def main() -> bytes:
                async with lm15_transports.StdlibAsyncTransport() as transport:
                    if mode == "async":
                        return await _aread(await transport.stream(_post(url)), how)
                    async with transport.stream(_post(url)) as response:
                        return await _aread(response, how)

            body = asyncio.run(main())
        assert body == CHAT
    (span,) = cap.call_spans()
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.usage.input_tokens"] == 123
    assert attrs["gen_ai.usage.output_tokens"] == 17
    assert attrs["tokentrace.cost.status"] == "priced"
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, PRICE)


def test_an_anthropic_stream_is_read_from_its_events(cap: Capture) -> None:
    """A Messages stream read line by line: its ``message_start`` and ``message_delta`` usage,
    exact (11 + 1,031 cache reads in, 100 out = $0.0018423)."""
    (interaction,) = recorded(MESSAGES)
    with (
        ReplayServer(
            {"/v1/messages": [Recorded(interaction.body, content_type="text/event-stream")]}
        ) as server,
        tokentrace.task("events") as task,
        lm15_transports.StdlibTransport() as transport,
    ):
        _read(transport.stream(_post(server.url + "/v1/messages", interaction.request_body)), "iter_lines")
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.usage.input_tokens"] == 1042
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1031
    assert attrs["gen_ai.usage.output_tokens"] == 100
    assert attrs["tokentrace.stream.end"] == "completed"
    assert task.totals.cost_usd == Decimal("0.0018423")


def test_a_gzip_body_is_read_as_lm15_decodes_it(cap: Capture) -> None:
    """lm15 decodes a compressed body itself; the watcher reads what it hands out."""
    served = Recorded(gzip.compress(CHAT), headers={"content-encoding": "gzip"})
    with (
        ReplayServer({"/v1/chat/completions": [served]}) as server,
        tokentrace.task("gzip") as task,
        lm15_transports.StdlibTransport() as transport,
    ):
        assert _read(transport.stream(_post(server.url + "/v1/chat/completions")), "read") == CHAT
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, PRICE)


def test_a_response_closed_or_dropped_unread_is_one_call_without_usage(cap: Capture) -> None:
    """A response closed before its body is read, or dropped, is a call whose usage is unknown
    (unpriced), never $0, and never left open."""
    with (
        _server() as server,
        tokentrace.task("unread") as task,
        lm15_transports.StdlibTransport() as transport,
    ):
        transport.stream(_post(server.url + "/v1/chat/completions")).close()
        response = transport.stream(_post(server.url + "/v1/chat/completions"))
        del response
        gc.collect()
    assert len(cap.call_spans()) == 2
    assert (task.totals.llm_calls, task.totals.unpriced_calls) == (2, 2)


def test_other_traffic_is_left_alone(cap: Capture) -> None:
    """A GET, a POST to a path that is no provider API, and one that ends like one without its
    request's fields are not calls, and get the server's bytes."""
    routes = {"/health": [Recorded(b"{}")], "/api/survey/responses": [Recorded(b'{"ok": true}')]}
    with (
        ReplayServer(routes) as server,
        tokentrace.task("other") as task,
        lm15_transports.StdlibTransport() as transport,
    ):
        assert _read(transport.stream(Request("GET", server.url + "/health")), "read") == b"{}"
        survey = _post(server.url + "/api/survey/responses", b'{"answer": 4}')
        assert _read(transport.stream(survey), "read") == b'{"ok": true}'
    assert cap.call_spans() == []
    assert task.totals.llm_calls == 0


def test_a_budget_stops_a_loop_before_the_request_that_would_cross_it(cap: Capture) -> None:
    """``Budget(max_llm_calls=1)``: the second post raises ``BudgetExceeded`` before it leaves."""
    with (
        _server() as server,
        tokentrace.task("budgeted", budget=tokentrace.Budget(max_llm_calls=1)) as task,
        lm15_transports.StdlibTransport() as transport,
    ):
        _read(transport.stream(_post(server.url + "/v1/chat/completions")), "read")
        with pytest.raises(tokentrace.BudgetExceeded):
            transport.stream(_post(server.url + "/v1/chat/completions"))
        assert len(server.requests) == 1
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, PRICE)


def test_an_error_status_is_a_failed_call_without_usage(cap: Capture) -> None:
    """A 429 from the provider is a call that failed: its status code, no tokens, never $0."""
    error = b'{"error": {"message": "Rate limit reached", "type": "requests"}}'
    with (
        ReplayServer({"/v1/chat/completions": [Recorded(error, status=429)]}) as server,
        tokentrace.task("limited"),
        lm15_transports.StdlibTransport() as transport,
    ):
        response = transport.stream(_post(server.url + "/v1/chat/completions"))
        assert response.status == 429
        assert _read(response, "read") == error
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert attrs["error.type"] == "ProviderHTTPError"
    assert attrs["http.response.status_code"] == 429
    assert attrs["tokentrace.cost.status"] == "no_usage"


def test_a_request_that_cannot_connect_is_a_failed_call(cap: Capture) -> None:
    """A connection refused is lm15's ``ConnectError``, and a call that failed."""
    with (
        tokentrace.task("refused"),
        lm15_transports.StdlibTransport() as transport,
        pytest.raises(lm15_transports.ConnectError),
    ):
        transport.stream(_post("http://127.0.0.1:9/v1/chat/completions"))
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert attrs["error.type"] == "ConnectError"


def test_uninstrument_restores_the_transports() -> None:
    """Undoing the integration puts both transports' doors back; instrumenting wraps them once."""
    restores(
        "lm15",
        (lm15_transports.StdlibTransport, "stream"),
        (lm15_transports.StdlibAsyncTransport, "_do_stream"),
    )


HOOKS = [
    *WIRE_STEPS,
    (_wire, "may_route"),
    (_wire, "peek_url"),
    (lm15_integration, "_peek"),
    (lm15_integration, "_received"),
]


def _every_way(url: str) -> list[Any]:
    """What the application gets: posts read each way, sync and async, and the error of a
    request to a closed port."""
    seen: list[Any] = []
    with lm15_transports.StdlibTransport() as transport:
        for how in ("read", "iter", "iter_lines"):
            seen.append(_read(transport.stream(_post(url + "/v1/chat/completions")), how))
        with pytest.raises(lm15_transports.ConnectError) as refused:
            transport.stream(_post("http://127.0.0.1:9/v1/chat/completions"))
        seen.append(type(refused.value))

    async def main() -> list[bytes]:
        async with lm15_transports.StdlibAsyncTransport() as transport:
            return [
                await _aread(await transport.stream(_post(url + "/v1/chat/completions")), h)
                for h in ("read", "iter")
            ]

    seen.extend(asyncio.run(main()))
    return seen


@pytest.mark.usefixtures("lenient")
@pytest.mark.parametrize(("target", "name"), HOOKS, ids=[f"{t.__name__}.{n}" for t, n in HOOKS])
def test_a_failing_wire_step_leaves_every_request_as_it_would_be(
    target: Any, name: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With any of tokentrace's steps raising, every request returns exactly the bytes (or raises
    exactly the error) it does with tokentrace off, and the failure is logged."""
    with _server() as server:
        baseline = requests_unchanged(
            ("lm15",), lambda: _every_way(server.url), (target, name), monkeypatch, caplog
        )
    assert baseline[0] == CHAT
