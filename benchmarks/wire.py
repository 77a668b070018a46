"""What the HTTP client integrations cost, in instructions (callgrind), per request.

Two kinds of request go through a patched ``httpx2.Client.send`` to a real server on
127.0.0.1 (run by this script's parent process, so the child under callgrind counts only the
client's work):

- ``other``: a ``POST /api/orders`` with a JSON body, the application's own traffic. With
  tokentrace it pays one look at the context, the method and one ``endswith`` on the path (a
  GET stops at the method); the figure to keep under 2% of the request itself.
- ``llm``: ``POST /v1/chat/completions`` through the openai SDK client's low-level ``post()``,
  as LiteLLM sends OpenAI calls: with tokentrace, recorded from the response body (span, price,
  task totals).
- ``requests``: the application's ``POST /api/orders`` sent with ``requests`` (a patched
  ``Session.send``): one look at the context, the method and one ``endswith`` on the URL.
- ``aiohttp``: the application's ``POST /api/orders`` sent with an ``aiohttp.ClientSession`` (a
  patched ``ClientSession._request``), its body read; the requests run one after another in one
  coroutine, the event loop's work included.
- ``botocore``: an AWS JSON-protocol call's ``POST /`` (a DynamoDB ``GetItem``: ``X-Amz-Target``,
  SigV4-signed, its body JSON) sent through a patched ``URLLib3Session.send`` as botocore sends
  every request, the response read whole as ``send`` reads it: the same one look.
- ``lm15``: the application's ``POST /api/orders`` sent with lm15's ``StdlibTransport`` (the
  HTTP client of DSPy's default engine; a patched ``StdlibTransport.stream``), its body read.

    python benchmarks/wire.py [--calls 200] [--repeat 3] [--json] [--only aiohttp,requests]

Needs valgrind. Each configuration runs in its own process; the median of ``--repeat``.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys

from instructions import (  # the same callgrind runner (benchmarks/ is on the path)
    collected,
    drop_spans,
    window,
)

CONFIGS = (
    "other-bare",
    "other-tokentrace",
    "llm-bare",
    "llm-tokentrace",
    "requests-bare",
    "requests-tokentrace",
    "aiohttp-bare",
    "aiohttp-tokentrace",
    "botocore-bare",
    "botocore-tokentrace",
    "lm15-bare",
    "lm15-tokentrace",
)
ORDER = {"sku": "A-1", "quantity": 2}
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def child(config: str, url: str, calls: int, ready: str) -> None:
    """Make ``calls`` requests of one configuration inside ``functools.reduce`` (the window)."""
    if config.startswith("aiohttp-"):
        aiohttp_child(config, url, calls, ready)
        return
    import httpx2
    import openai
    import requests

    import tokentrace

    drop_spans()
    kind, _, setup = config.partition("-")
    if setup == "tokentrace":
        tokentrace.instrument("httpx2", "requests", "botocore", "lm15")
        tokentrace.task("bench").__enter__()
    http = httpx2.Client()
    if kind == "other":
        call = functools.partial(http.post, url + "/api/orders", json=ORDER)
    elif kind == "requests":
        session = requests.Session()
        call = functools.partial(session.post, url + "/api/orders", json=ORDER)
    elif kind == "botocore":
        call = _botocore_call(url)
    elif kind == "lm15":
        call = _lm15_call(url)
    else:
        client = openai.OpenAI(api_key="sk-test", base_url=url + "/v1", http_client=http, max_retries=0)
        call = functools.partial(
            client.post, "/chat/completions", body=REQUEST, cast_to=openai.types.chat.ChatCompletion
        )
    window(call, calls, ready)


def _botocore_call(url: str) -> functools.partial[object]:
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    import botocore.httpsession

    item = botocore.awsrequest.AWSRequest(
        "POST",
        url + "/",
        data=json.dumps({"TableName": "orders", "Key": {"sku": {"S": "A-1"}}}).encode(),
        headers={"X-Amz-Target": "DynamoDB_20120810.GetItem", "Content-Type": "application/x-amz-json-1.0"},
    )
    credentials = botocore.credentials.Credentials("AKIDEXAMPLE", "secret")
    botocore.auth.SigV4Auth(credentials, "dynamodb", "us-east-1").add_auth(item)
    return functools.partial(botocore.httpsession.URLLib3Session().send, item.prepare())


def _lm15_call(url: str) -> functools.partial[object]:
    from lm15.transports import StdlibTransport, TransportRequest

    transport = StdlibTransport()
    headers = [("content-type", "application/json")]
    order = TransportRequest("POST", url + "/api/orders", headers, json.dumps(ORDER).encode())

    def post() -> bytes:
        with transport.stream(order) as response:
            return bytes(response.read())

    return functools.partial(post)


def aiohttp_child(config: str, url: str, calls: int, ready: str) -> None:
    """``calls`` posts of one ``aiohttp.ClientSession``, one after another in one coroutine run
    once inside ``functools.reduce`` (the window): the event loop's work is the request's too."""
    import asyncio

    import aiohttp

    import tokentrace

    drop_spans()
    if config.endswith("-tokentrace"):
        tokentrace.instrument("aiohttp")
        tokentrace.task("bench").__enter__()

    async def post(session: aiohttp.ClientSession) -> None:
        async with session.post(url + "/api/orders", json=ORDER) as response:
            await response.read()

    async def posts(session: aiohttp.ClientSession, n: int) -> None:
        for _ in range(n):
            await post(session)

    loop = asyncio.new_event_loop()
    session = loop.run_until_complete(_session())
    loop.run_until_complete(posts(session, 20))
    # One window step runs all the posts: the event loop's work between them is counted too.
    window(lambda: loop.run_until_complete(posts(session, calls)), 1, ready, warm=0)


async def _session() -> object:
    import aiohttp

    return aiohttp.ClientSession()


def measure(config: str, url: str, calls: int) -> float:
    return collected(__file__, [config, url, str(calls)], config) / calls


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--only",
        default="",
        help="the kinds to run (other,llm,requests,aiohttp,botocore,lm15); all by default",
    )
    args = parser.parse_args()
    kinds = set(filter(None, args.only.split(","))) or {config.partition("-")[0] for config in CONFIGS}

    from tokentrace._cli.demo import RECORDINGS
    from tokentrace.testing import Recorded, ReplayServer

    chat = Recorded((RECORDINGS / "openai_chat.json").read_bytes())
    routes = {
        "/api/orders": [Recorded(b'{"status": "ok"}')],
        "/v1/chat/completions": [chat],
        "/": [
            Recorded(b'{"Item": {"sku": {"S": "A-1"}, "quantity": {"N": "2"}}}', "application/x-amz-json-1.0")
        ],
    }
    with ReplayServer(routes) as server:
        counts = {
            config: statistics.median(measure(config, server.url, args.calls) for _ in range(args.repeat))
            for config in CONFIGS
            if config.partition("-")[0] in kinds
        }
    result: dict[str, object] = {"calls": args.calls, "repeat": args.repeat, "instructions": counts}
    for kind in sorted(kinds):
        added = counts[f"{kind}-tokentrace"] - counts[f"{kind}-bare"]
        result[f"{kind}_added"] = added
        if kind != "llm":
            result[f"{kind}_added_share"] = added / counts[f"{kind}-bare"]
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"instructions per request ({args.calls} requests, median of {args.repeat} processes, callgrind)")
    for config, value in counts.items():
        print(f"  {config:18s} {value:12,.0f}")
    labels = {
        "other": "a request that is no LLM call",
        "llm": "an LLM call recorded on the wire",
        "requests": "a request sent with requests that is no LLM call",
        "aiohttp": "a request sent with aiohttp that is no LLM call",
        "botocore": "a request sent with botocore that is no LLM call",
        "lm15": "a request sent with lm15 that is no LLM call",
    }
    for kind in (kind for kind in labels if kind in kinds):
        share = result.get(f"{kind}_added_share")
        tail = f" ({share:.2%} of the request)" if isinstance(share, float) else ""
        print(f"  {labels[kind]}: +{result[f'{kind}_added']:,.0f}{tail}")


if __name__ == "__main__":
    main()
