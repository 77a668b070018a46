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
- ``botocore``: an AWS JSON-protocol call's ``POST /`` (a DynamoDB ``GetItem``: ``X-Amz-Target``,
  SigV4-signed, its body JSON) sent through a patched ``URLLib3Session.send`` as botocore sends
  every request, the response read whole as ``send`` reads it: the same one look.

    python benchmarks/wire.py [--calls 200] [--repeat 3] [--json]

Needs valgrind. Each configuration runs in its own process; the median of ``--repeat``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import statistics
import sys
import time
from pathlib import Path

from instructions import collected  # the same callgrind runner (benchmarks/ is on the path)

CONFIGS = (
    "other-bare",
    "other-tokentrace",
    "llm-bare",
    "llm-tokentrace",
    "requests-bare",
    "requests-tokentrace",
    "botocore-bare",
    "botocore-tokentrace",
)
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def child(config: str, url: str, calls: int, ready: str) -> None:
    """Make ``calls`` requests of one configuration inside ``functools.reduce`` (the window)."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    import botocore.httpsession
    import httpx2
    import openai
    import requests
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    import tokentrace

    class Drop(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(Drop(), max_queue_size=1_000_000, schedule_delay_millis=600_000)
    )
    trace.set_tracer_provider(provider)
    kind, _, setup = config.partition("-")
    if setup == "tokentrace":
        tokentrace.instrument("httpx2", "requests", "botocore")
        tokentrace.task("bench").__enter__()
    http = httpx2.Client()
    if kind == "other":
        call = functools.partial(http.post, url + "/api/orders", json={"sku": "A-1", "quantity": 2})
    elif kind == "requests":
        session = requests.Session()
        call = functools.partial(session.post, url + "/api/orders", json={"sku": "A-1", "quantity": 2})
    elif kind == "botocore":
        item = botocore.awsrequest.AWSRequest(
            "POST",
            url + "/",
            data=json.dumps({"TableName": "orders", "Key": {"sku": {"S": "A-1"}}}).encode(),
            headers={
                "X-Amz-Target": "DynamoDB_20120810.GetItem",
                "Content-Type": "application/x-amz-json-1.0",
            },
        )
        credentials = botocore.credentials.Credentials("AKIDEXAMPLE", "secret")
        botocore.auth.SigV4Auth(credentials, "dynamodb", "us-east-1").add_auth(item)
        call = functools.partial(botocore.httpsession.URLLib3Session().send, item.prepare())
    else:
        client = openai.OpenAI(api_key="sk-test", base_url=url + "/v1", http_client=http, max_retries=0)
        call = functools.partial(
            client.post, "/chat/completions", body=REQUEST, cast_to=openai.types.chat.ChatCompletion
        )
    for _ in range(20):
        call()
    gc.collect()
    gc.disable()
    Path(ready).touch()
    while Path(ready).exists():
        time.sleep(0.05)
    functools.reduce(lambda acc, _: call(), range(calls), None)


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
    args = parser.parse_args()

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
        }
    result = {
        "calls": args.calls,
        "repeat": args.repeat,
        "instructions": counts,
        "other_added": counts["other-tokentrace"] - counts["other-bare"],
        "other_added_share": (counts["other-tokentrace"] - counts["other-bare"]) / counts["other-bare"],
        "llm_added": counts["llm-tokentrace"] - counts["llm-bare"],
        "requests_added": counts["requests-tokentrace"] - counts["requests-bare"],
        "requests_added_share": (counts["requests-tokentrace"] - counts["requests-bare"])
        / counts["requests-bare"],
        "botocore_added": counts["botocore-tokentrace"] - counts["botocore-bare"],
        "botocore_added_share": (counts["botocore-tokentrace"] - counts["botocore-bare"])
        / counts["botocore-bare"],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"instructions per request ({args.calls} requests, median of {args.repeat} processes, callgrind)")
    for config, value in counts.items():
        print(f"  {config:18s} {value:12,.0f}")
    print(
        f"  a request that is no LLM call: +{result['other_added']:,.0f} "
        f"({result['other_added_share']:.2%} of the request)"
    )
    print(f"  an LLM call recorded on the wire: +{result['llm_added']:,.0f}")
    print(
        f"  a request sent with requests that is no LLM call: +{result['requests_added']:,.0f} "
        f"({result['requests_added_share']:.2%} of the request)"
    )
    print(
        f"  a request sent with botocore that is no LLM call: +{result['botocore_added']:,.0f} "
        f"({result['botocore_added_share']:.2%} of the request)"
    )


if __name__ == "__main__":
    main()
