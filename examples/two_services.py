"""Two services, one task tree: a front service classifies a ticket and asks a drafting service
(another process, over HTTP on 127.0.0.1) for a reply.

The front's task travels to the drafting service in the W3C trace context and OpenTelemetry
baggage, so the task opened there continues the same tree (same root id). Each process sums
only its own calls in-process; the tree's total is the sum of both, which a backend (or the
shared ledger, ``tokentrace report --by root``) adds up by root id. Offline by default, on
recorded real OpenAI responses; ``--live`` calls the real API.

    python examples/two_services.py
    python examples/two_services.py --live
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
from opentelemetry import context, propagate

import tokentrace
from tokentrace._cli.demo import RECORDINGS
from tokentrace.testing import Recorded, ReplayServer


@contextlib.contextmanager
def client(live: bool) -> Iterator[openai.OpenAI]:
    if live:
        yield openai.OpenAI()
        return
    body = (RECORDINGS / "openai_chat_cached.json").read_bytes()
    with ReplayServer({"/v1/chat/completions": [Recorded(body)] * 10}) as server:
        yield openai.OpenAI(base_url=server.url + "/v1", api_key="offline")


def drafting_service(live: bool) -> None:
    """The downstream process: POST /draft drafts a reply inside a task of its own."""
    tokentrace.instrument("openai")
    with client(live) as oa:

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                ticket = json.loads(self.rfile.read(int(self.headers["content-length"])))["ticket"]
                # What an HTTP server instrumentation does: continue the caller's context.
                token = context.attach(propagate.extract({k.lower(): v for k, v in self.headers.items()}))
                try:
                    with tokentrace.task("draft_reply") as task:
                        oa.chat.completions.create(
                            model="gpt-4o", messages=[{"role": "user", "content": f"Draft a reply: {ticket}"}]
                        )
                finally:
                    context.detach(token)
                body = json.dumps({"cost": str(task.totals.cost_usd), "root_id": task.root_id}).encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        print(server.server_address[1], flush=True)
        server.serve_forever()


def front(live: bool) -> None:
    service = subprocess.Popen(
        [sys.executable, __file__, "--service", *(["--live"] if live else [])],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert service.stdout is not None
        url = f"http://127.0.0.1:{service.stdout.readline().strip()}/draft"
        tokentrace.instrument("openai")
        ticket = "My invoice shows two charges."
        with client(live) as oa, tokentrace.task("handle_ticket", feature="support") as task:
            oa.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": f"Classify: {ticket}"}]
            )
            headers = {"content-type": "application/json"}
            propagate.inject(headers)  # an HTTP client instrumentation does this for you
            request = urllib.request.Request(url, json.dumps({"ticket": ticket}).encode(), headers)
            with urllib.request.urlopen(request, timeout=60) as response:
                drafted = json.loads(response.read())
    finally:
        service.terminate()
        service.wait(10)
    here = task.totals.cost_usd
    there = Decimal(drafted["cost"])
    print(f"handle_ticket {task.id}: ${here.normalize():f} in this process")
    print(f"draft_reply in the drafting service: ${there.normalize():f}, root {drafted['root_id']}")
    print(f"the whole tree (root {task.root_id}): ${(here + there).normalize():f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--live", action="store_true", help="call the real API instead of recordings")
    parser.add_argument("--service", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.service:
        drafting_service(args.live)
    else:
        front(args.live)


if __name__ == "__main__":
    main()
