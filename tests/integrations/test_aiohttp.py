"""The aiohttp integration: calls to a provider API sent with ``aiohttp``, to a real server on
127.0.0.1 that answers with recorded bodies, read as the httpx integration reads them."""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import httpx2
import openai
import pytest
import yarl

import tokentrace
from tests.support.clients import recorded
from tests.support.faults import WIRE_STEPS, requests_unchanged, restores
from tokentrace._cli.demo import RECORDINGS
from tokentrace.integrations import _wire, _wire_bodies
from tokentrace.integrations import aiohttp as aiohttp_integration
from tokentrace.testing import Capture, Recorded, ReplayServer

CHAT = (RECORDINGS / "openai_chat.json").read_bytes()  # gpt-4o-mini: 123 in, 17 out = $0.00002865
MESSAGES = "dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion_stream_cache_read.yaml"
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
PRICE = Decimal("0.00002865")
PATH = "/v1/chat/completions"


def _server(*served: Recorded) -> ReplayServer:
    return ReplayServer({PATH: list(served) or [Recorded(CHAT)]})


def _anthropic_stream() -> tuple[bytes, bytes]:
    (interaction,) = recorded(MESSAGES)
    return interaction.request_body, interaction.body


async def _chunks(reads: Any) -> bytes:
    """The bytes of an iterator of chunks (or of ``(chunk, end of HTTP chunk)`` pairs)."""
    return b"".join([chunk[0] if isinstance(chunk, tuple) else chunk async for chunk in reads])


async def _until_empty(read: Callable[[], Awaitable[bytes]]) -> bytes:
    out = b""
    while data := await read():
        out += data
    return out


async def _by_chunk(content: Any) -> bytes:
    out = b""
    while True:
        data, end = await content.readchunk()
        if (data, end) == (b"", False):
            return out
        out += data


# Every way an application reads a response's body: what it returns, from the response.
READS: dict[str, Callable[[aiohttp.ClientResponse], Awaitable[Any]]] = {
    "read": lambda r: r.read(),
    "text": lambda r: r.text(),
    "json": lambda r: r.json(),
    "content.read": lambda r: r.content.read(),
    "content.read(n)": lambda r: _until_empty(lambda: r.content.read(64)),
    "content.readany": lambda r: _until_empty(r.content.readany),
    "content.readline": lambda r: _until_empty(r.content.readline),
    "content.readchunk": lambda r: _by_chunk(r.content),
    "content.iter_chunked": lambda r: _chunks(r.content.iter_chunked(64)),
    "content.iter_any": lambda r: _chunks(r.content.iter_any()),
    "content.iter_chunks": lambda r: _chunks(r.content.iter_chunks()),
    "async for line": lambda r: _chunks(r.content),
}


def _run(main: Callable[[str], Awaitable[Any]], *served: Recorded) -> tuple[Any, ReplayServer]:
    with _server(*served) as server:
        return asyncio.run(main(server.url)), server


@pytest.mark.parametrize("how", list(READS))
def test_a_post_to_a_chat_completions_path_is_one_priced_call(cap: Capture, how: str) -> None:
    """A post whose body the application reads, however it reads it, is recorded once: 123 input
    and 17 output tokens of gpt-4o-mini = $0.00002865."""

    async def main(url: str) -> tuple[Any, tokentrace.Task]:
        async with (
            tokentrace.task("aiohttp") as task,
            aiohttp.ClientSession() as session,
            session.post(url + PATH, json=REQUEST) as response,
        ):
            return await READS[how](response), task

    (body, task), _ = _run(main)
    if how == "json":
        assert body["usage"]["prompt_tokens"] == 123
    else:
        assert (body.encode() if how == "text" else body) == CHAT
    (span,) = cap.call_spans()
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.usage.input_tokens"] == 123
    assert attrs["gen_ai.usage.output_tokens"] == 17
    assert attrs["tokentrace.cost.status"] == "priced"
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, PRICE)


@pytest.mark.parametrize("how", ["request", "data-bytes", "data-str", "url", "base_url"])
def test_every_way_of_sending_the_request_is_read(cap: Capture, how: str) -> None:
    """``session.request("post", ...)``, a body given as bytes or text, a ``yarl.URL``, and a path
    relative to the session's ``base_url`` are the same call."""

    async def main(url: str) -> tokentrace.Task:
        base = url + "/v1/" if how == "base_url" else None
        async with tokentrace.task("sent") as task, aiohttp.ClientSession(base_url=base) as session:
            if how == "request":
                sent = session.request("post", url + PATH, json=REQUEST)
            elif how == "data-bytes":
                sent = session.post(url + PATH, data=json.dumps(REQUEST).encode())
            elif how == "data-str":
                sent = session.post(url + PATH, data=json.dumps(REQUEST))
            elif how == "url":
                sent = session.post(yarl.URL(url + PATH), json=REQUEST)
            else:
                sent = session.post("chat/completions", json=REQUEST)
            async with sent as response:
                assert await response.read() == CHAT
        return task

    task, server = _run(main)
    assert server.requests[0][0] == PATH
    assert len(cap.call_spans()) == 1
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, PRICE)


def test_an_anthropic_stream_is_read_from_its_events(cap: Capture) -> None:
    """A Messages stream posted with aiohttp and read line by line: its ``message_start`` and
    ``message_delta`` usage, exact (11 + 1,031 cache reads in, 100 out = $0.0018423)."""
    body, events = _anthropic_stream()

    async def main(url: str) -> tokentrace.Task:
        async with (
            tokentrace.task("events") as task,
            aiohttp.ClientSession() as session,
            session.post(url + "/v1/messages", data=body) as response,
        ):
            async for _ in response.content:
                pass
        return task

    with ReplayServer({"/v1/messages": [Recorded(events, content_type="text/event-stream")]}) as server:
        task = asyncio.run(main(server.url))
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.usage.input_tokens"] == 1042
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1031
    assert attrs["gen_ai.usage.output_tokens"] == 100
    assert attrs["tokentrace.stream.end"] == "completed"
    assert task.totals.cost_usd == Decimal("0.0018423")


@pytest.mark.parametrize("decompress", [True, False], ids=["auto_decompress", "raw"])
@pytest.mark.parametrize("where", ["session", "request"])
def test_a_gzip_body_is_read_decoded_or_not(cap: Capture, decompress: bool, where: str) -> None:
    """A compressed body is the same call whether aiohttp decompresses it (its default) or hands it
    out as sent (``auto_decompress=False``, on the session or on the request)."""

    async def main(url: str) -> tuple[bytes, tokentrace.Task]:
        options = {"auto_decompress": decompress}
        async with (
            tokentrace.task("gzip") as task,
            aiohttp.ClientSession(**(options if where == "session" else {})) as session,
            session.post(url + PATH, json=REQUEST, **(options if where == "request" else {})) as response,
        ):
            return await response.read(), task

    (body, task), _ = _run(main, Recorded(gzip.compress(CHAT), headers={"content-encoding": "gzip"}))
    assert (body if decompress else gzip.decompress(body)) == CHAT
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, PRICE)


@pytest.mark.parametrize("how", ["release", "close", "async with", "dropped"])
def test_a_response_closed_or_dropped_unread_is_one_call_without_usage(cap: Capture, how: str) -> None:
    """A response released, closed or left unread (its ``async with`` left, or the response
    dropped) is one call whose usage is unknown (unpriced), never $0, ended there and then."""

    async def main(url: str) -> tokentrace.Task:
        async with tokentrace.task("unread") as task, aiohttp.ClientSession() as session:
            if how == "async with":
                async with session.post(url + PATH, json=REQUEST):
                    pass
            else:
                response = await session.post(url + PATH, json=REQUEST)
                if how == "release":
                    response.release()
                elif how == "close":
                    response.close()
                else:
                    # Until its body has arrived, aiohttp's stream holds the response.
                    await response.content.wait_eof()
                    del response
                    gc.collect()
            assert len(cap.call_spans()) == 1  # ended then, not when the session closes
        return task

    task, _ = _run(main)
    (span,) = cap.call_spans()
    assert dict(span.attributes or {})["tokentrace.cost.status"] != "priced"
    assert (task.totals.llm_calls, task.totals.unpriced_calls) == (1, 1)


def test_other_traffic_is_left_alone(cap: Capture) -> None:
    """A GET, a POST to a path that is no provider API, one that ends like one without its
    request's fields (an application's own ``/api/survey/responses``), a form and a GET of a
    provider path are not calls."""
    routes = {"/health": [Recorded(b"{}")], "/api/survey/responses": [Recorded(b'{"ok": true}')]}

    async def main(url: str) -> tokentrace.Task:
        async with tokentrace.task("other") as task, aiohttp.ClientSession() as session:
            async with session.get(url + "/health") as response:
                await response.read()
            async with session.post(url + "/api/survey/responses", json={"answer": 4}) as response:
                await response.read()
            async with session.post(url + "/api/survey/responses?x=/v1/chat/completions", data="a=1") as r:
                await r.read()
            async with session.post(url + "/api/survey/responses", data={"model": "m", "input": "x"}) as r:
                await r.read()
            async with session.get(url + PATH) as response:
                await response.read()
        return task

    with ReplayServer({**routes, PATH: [Recorded(CHAT)]}) as server:
        task = asyncio.run(main(server.url))
    assert cap.call_spans() == []
    assert task.totals.llm_calls == 0


def test_a_budget_stops_a_loop_before_the_request_that_would_cross_it(cap: Capture) -> None:
    """``Budget(max_llm_calls=1)``: the second post raises ``BudgetExceeded`` before it leaves."""

    async def main(url: str) -> tokentrace.Task:
        budget = tokentrace.Budget(max_llm_calls=1)
        async with tokentrace.task("budgeted", budget=budget) as task, aiohttp.ClientSession() as session:
            async with session.post(url + PATH, json=REQUEST) as response:
                await response.read()
            with pytest.raises(tokentrace.BudgetExceeded):
                await session.post(url + PATH, json=REQUEST)
        return task

    task, server = _run(main)
    assert len(server.requests) == 1
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, PRICE)


@pytest.mark.parametrize("read", [True, False], ids=["read", "unread"])
def test_an_error_status_is_a_failed_call_without_usage(cap: Capture, read: bool) -> None:
    """A 429 from the provider is a call that failed, its body read or not: its status code, no
    tokens, never $0."""
    error = b'{"error": {"message": "Rate limit reached", "type": "requests"}}'

    async def main(url: str) -> int:
        async with (
            tokentrace.task("limited"),
            aiohttp.ClientSession() as session,
            session.post(url + PATH, json=REQUEST) as response,
        ):
            if read:
                assert await response.read() == error
            return response.status

    status, _ = _run(main, Recorded(error, status=429))
    assert status == 429
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert attrs["error.type"] == "ProviderHTTPError"
    assert attrs["http.response.status_code"] == 429
    assert attrs["tokentrace.cost.status"] == "no_usage"


def test_a_request_that_cannot_connect_is_a_failed_call(cap: Capture) -> None:
    """A connection refused is the application's ``ClientConnectorError``, and a call that failed."""

    async def main() -> None:
        async with tokentrace.task("refused"), aiohttp.ClientSession() as session:
            await session.post("http://127.0.0.1:9" + PATH, json=REQUEST)

    with pytest.raises(aiohttp.ClientConnectorError):
        asyncio.run(main())
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert attrs["error.type"] == "ClientConnectorError"


class _ThroughAiohttp(httpx2.AsyncBaseTransport):
    """An httpx2 transport that sends with aiohttp, as aiohttp-backed SDK clients do."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        async with self.session.request(request.method, str(request.url), data=request.content) as response:
            body = await response.read()
        return httpx2.Response(response.status, headers={"content-type": "application/json"}, content=body)


def test_an_sdk_call_is_recorded_once_not_again_by_aiohttp(cap: Capture) -> None:
    """The openai SDK's ``create`` over a transport that sends with aiohttp is recorded by the
    openai integration; the request aiohttp sends for it is not recorded a second time."""

    async def main(url: str) -> tokentrace.Task:
        async with tokentrace.task("sdk") as task, aiohttp.ClientSession() as session:
            http = httpx2.AsyncClient(transport=_ThroughAiohttp(session))
            client = openai.AsyncOpenAI(
                api_key="sk-test", base_url=url + "/v1", http_client=http, max_retries=0
            )
            await client.chat.completions.create(**REQUEST)  # type: ignore[call-overload]
        return task

    task, server = _run(main)
    assert len(server.requests) == 1
    assert len(cap.call_spans()) == 1
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, PRICE)


async def _paused_server(body: bytes, resume: asyncio.Event) -> asyncio.Server:
    """A server on 127.0.0.1 that answers with the first half of an event stream, waits for
    ``resume``, then sends the rest (a provider pausing between events)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        half = len(body) // 2
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body[:half]
        )
        await writer.drain()
        await resume.wait()
        writer.write(body[half:])
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


def test_a_read_given_up_by_a_timeout_leaves_the_stream_to_be_read_on(cap: Capture) -> None:
    """A line read cancelled by its timeout while the provider pauses, then read on to the end (an
    event loop with a heartbeat timeout): one call, with the stream's exact usage (11 + 1,031
    cache reads in, 100 out = $0.0018423), not a failed one."""
    request, events = _anthropic_stream()

    async def main() -> int:
        resume = asyncio.Event()
        server = await _paused_server(events, resume)
        port = server.sockets[0].getsockname()[1]
        timeouts = 0
        async with server, aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/v1/messages"
            async with session.post(url, data=request) as response:
                while True:
                    try:
                        line = await asyncio.wait_for(response.content.readline(), 0.2)
                    except asyncio.TimeoutError:
                        timeouts += 1
                        resume.set()
                        continue
                    if not line:
                        return timeouts

    with tokentrace.task("paused") as task:
        assert asyncio.run(main()) >= 1
    (span,) = cap.call_spans()
    attrs = dict(span.attributes or {})
    assert "error.type" not in attrs
    assert attrs["gen_ai.usage.input_tokens"] == 1042
    assert attrs["gen_ai.usage.output_tokens"] == 100
    assert attrs["tokentrace.stream.end"] == "completed"
    assert task.totals.cost_usd == Decimal("0.0018423")


def test_uninstrument_restores_the_sessions_request() -> None:
    """Undoing the integration puts ``ClientSession._request`` back; instrumenting wraps it once."""
    restores("aiohttp", (aiohttp.ClientSession, "_request"))


HOOKS = [
    *WIRE_STEPS,
    (_wire, "may_route"),
    (_wire, "route"),
    (_wire_bodies, "json_object"),
    (aiohttp_integration, "_peek"),
    (aiohttp_integration, "_received"),
    (aiohttp_integration._WatchedContent, "_self_at_end"),
]


async def _every_way(url: str) -> list[Any]:
    """What the application gets: the body read every way, a response released unread, and the
    error of a request to a closed port."""
    seen: list[Any] = []
    async with aiohttp.ClientSession() as session:
        for read in READS.values():
            async with session.post(url + PATH, json=REQUEST) as response:
                seen.append(await read(response))
        response = await session.post(url + PATH, json=REQUEST)
        response.release()
        seen.append(response.status)
        with pytest.raises(aiohttp.ClientConnectorError) as refused:
            await session.post("http://127.0.0.1:9" + PATH, json=REQUEST)
        seen.append(type(refused.value))
    return seen


@pytest.mark.usefixtures("lenient")
@pytest.mark.parametrize(("target", "name"), HOOKS, ids=[f"{t.__name__}.{n}" for t, n in HOOKS])
def test_a_failing_wire_step_leaves_every_request_as_it_would_be(
    target: Any, name: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With any of tokentrace's steps raising, every request returns exactly what it does with
    tokentrace off (or raises exactly the same error), and the failure is logged."""
    with _server() as server:
        baseline = requests_unchanged(
            ("aiohttp",), lambda: asyncio.run(_every_way(server.url)), (target, name), monkeypatch, caplog
        )
    assert baseline[0] == CHAT
