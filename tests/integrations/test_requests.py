"""The requests integration: calls to a provider API sent with ``requests``, to a real server on
127.0.0.1 that answers with recorded bodies, read as the httpx integration reads them."""

from __future__ import annotations

import gc
import gzip
from decimal import Decimal
from typing import Any

import pytest
import requests

import tokentrace
from tests.support.clients import recorded
from tests.support.faults import WIRE_STEPS, requests_unchanged, restores
from tokentrace._cli.demo import RECORDINGS
from tokentrace.integrations import _wire, _wire_urllib3
from tokentrace.integrations import requests as requests_integration
from tokentrace.testing import Capture, Recorded, ReplayServer

CHAT = (RECORDINGS / "openai_chat.json").read_bytes()  # gpt-4o-mini: 123 in, 17 out = $0.00002865
MESSAGES = "dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion_stream_cache_read.yaml"
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
PRICE = Decimal("0.00002865")


def _server(**extra: list[Recorded]) -> ReplayServer:
    return ReplayServer({"/v1/chat/completions": [Recorded(CHAT)], **extra})


def _anthropic_stream() -> tuple[bytes, bytes]:
    (interaction,) = recorded(MESSAGES)
    return interaction.request_body, interaction.body


@pytest.mark.parametrize("how", ["read", "content", "iter_content", "iter_lines", "raw.read"])
def test_a_post_to_a_chat_completions_path_is_one_priced_call(cap: Capture, how: str) -> None:
    """A post whose body ``requests`` reads (the default) or the application reads, however it
    reads it, is recorded once: 123 input and 17 output tokens of gpt-4o-mini = $0.00002865."""
    with _server() as server, tokentrace.task("requests") as task, requests.Session() as session:
        url = server.url + "/v1/chat/completions"
        if how == "read":
            assert session.post(url, json=REQUEST).content == CHAT
        else:
            response = session.post(url, json=REQUEST, stream=True)
            if how == "content":
                body = response.content
            elif how == "iter_content":
                body = b"".join(response.iter_content(chunk_size=64))
            elif how == "iter_lines":
                body = b"\n".join(response.iter_lines())
            else:
                body = response.raw.read()
            response.close()
            assert body.replace(b"\n", b"") == CHAT.replace(b"\n", b"")
    (span,) = cap.call_spans()
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.usage.input_tokens"] == 123
    assert attrs["gen_ai.usage.output_tokens"] == 17
    assert attrs["tokentrace.cost.status"] == "priced"
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, PRICE)


def test_an_anthropic_stream_is_read_from_its_events(cap: Capture) -> None:
    """A Messages stream posted with ``requests`` and read line by line: its ``message_start`` and
    ``message_delta`` usage, exact (11 + 1,031 cache reads in, 100 out = $0.0018423)."""
    body, events = _anthropic_stream()
    with (
        ReplayServer({"/v1/messages": [Recorded(events, content_type="text/event-stream")]}) as server,
        tokentrace.task("events") as task,
    ):
        response = requests.post(server.url + "/v1/messages", data=body, stream=True)
        for _ in response.iter_lines():
            pass
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.usage.input_tokens"] == 1042
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1031
    assert attrs["gen_ai.usage.output_tokens"] == 100
    assert attrs["tokentrace.stream.end"] == "completed"
    assert task.totals.cost_usd == Decimal("0.0018423")


@pytest.mark.parametrize("decoded", [True, False], ids=["iter_content", "raw.read"])
def test_a_gzip_body_is_read_decoded_or_not(cap: Capture, decoded: bool) -> None:
    """A compressed body is the same call whether the application reads it decoded
    (``iter_content``) or as sent (``raw.read()``)."""
    served = Recorded(gzip.compress(CHAT), headers={"content-encoding": "gzip"})
    with (
        ReplayServer({"/v1/chat/completions": [served]}) as server,
        tokentrace.task("gzip") as task,
    ):
        response = requests.post(server.url + "/v1/chat/completions", json=REQUEST, stream=True)
        if decoded:
            assert b"".join(response.iter_content(chunk_size=None)) == CHAT
        else:
            assert gzip.decompress(response.raw.read()) == CHAT
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, PRICE)


def test_a_stream_closed_or_dropped_unread_is_one_call_without_usage(cap: Capture) -> None:
    """A streamed response closed before its body is read, or dropped, is a call whose usage is
    unknown (unpriced), never $0, and never left open."""
    with _server() as server, tokentrace.task("unread") as task:
        requests.post(server.url + "/v1/chat/completions", json=REQUEST, stream=True).close()
        response = requests.post(server.url + "/v1/chat/completions", json=REQUEST, stream=True)
        del response
        gc.collect()
    assert len(cap.call_spans()) == 2
    assert (task.totals.llm_calls, task.totals.unpriced_calls) == (2, 2)


def test_other_traffic_is_left_alone(cap: Capture) -> None:
    """A GET, a POST to a path that is no provider API, and one that ends like one without its
    request's fields (an application's own ``/api/survey/responses``) are not calls."""
    routes = {"/health": [Recorded(b"{}")], "/api/survey/responses": [Recorded(b'{"ok": true}')]}
    with ReplayServer(routes) as server, tokentrace.task("other") as task:
        requests.get(server.url + "/health")
        requests.post(server.url + "/api/survey/responses", json={"answer": 4})
        requests.post(server.url + "/api/survey/responses?x=/v1/chat/completions", data="a=1")
        requests.get(server.url + "/v1/chat/completions")
    assert cap.call_spans() == []
    assert task.totals.llm_calls == 0


def test_a_budget_stops_a_requests_loop_before_the_request_that_would_cross_it(cap: Capture) -> None:
    """``Budget(max_llm_calls=1)``: the second post raises ``BudgetExceeded`` before it leaves."""
    with _server() as server, tokentrace.task("budgeted", budget=tokentrace.Budget(max_llm_calls=1)) as task:
        requests.post(server.url + "/v1/chat/completions", json=REQUEST)
        with pytest.raises(tokentrace.BudgetExceeded):
            requests.post(server.url + "/v1/chat/completions", json=REQUEST)
        assert len(server.requests) == 1
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, PRICE)


def test_an_error_status_is_a_failed_call_without_usage(cap: Capture) -> None:
    """A 429 from the provider is a call that failed: its status code, no tokens, never $0."""
    error = b'{"error": {"message": "Rate limit reached", "type": "requests"}}'
    with (
        ReplayServer({"/v1/chat/completions": [Recorded(error, status=429)]}) as server,
        tokentrace.task("limited"),
    ):
        assert requests.post(server.url + "/v1/chat/completions", json=REQUEST).status_code == 429
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert attrs["error.type"] == "ProviderHTTPError"
    assert attrs["http.response.status_code"] == 429
    assert attrs["tokentrace.cost.status"] == "no_usage"


def test_a_request_that_cannot_connect_is_a_failed_call(cap: Capture) -> None:
    """A connection refused is the application's ``ConnectionError``, and a call that failed."""
    with tokentrace.task("refused"), pytest.raises(requests.ConnectionError):
        requests.post("http://127.0.0.1:9/v1/chat/completions", json=REQUEST)
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert attrs["error.type"] == "ConnectionError"


def test_uninstrument_restores_the_sessions_send() -> None:
    """Undoing the integration puts ``Session.send`` back; instrumenting wraps it once."""
    restores("requests", (requests.Session, "send"))


HOOKS = [
    *WIRE_STEPS,
    (_wire, "may_route"),
    (_wire.Exchange, "read"),
    (requests_integration, "_peek"),
    (requests_integration, "_received"),
    (_wire_urllib3.WatchedRaw, "_self_decoded"),
]


def _every_way(url: str) -> list[Any]:
    """What the application gets: a read post, streamed posts read four ways, and the error of a
    request to a closed port."""
    seen: list[Any] = [requests.post(url + "/v1/chat/completions", json=REQUEST).content]
    for how in ("content", "iter_content", "iter_lines", "raw"):
        response = requests.post(url + "/v1/chat/completions", json=REQUEST, stream=True)
        if how == "content":
            seen.append(response.content)
        elif how == "iter_content":
            seen.append(b"".join(response.iter_content(chunk_size=16)))
        elif how == "iter_lines":
            seen.append(list(response.iter_lines()))
        else:
            seen.append(response.raw.read())
        response.close()
    with pytest.raises(requests.ConnectionError) as refused:
        requests.post("http://127.0.0.1:9/v1/chat/completions", json=REQUEST)
    seen.append(type(refused.value))
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
            ("requests",), lambda: _every_way(server.url), (target, name), monkeypatch, caplog
        )
    assert baseline[0] == CHAT
