"""Attribution across processes: an LLM call in a downstream service is attributed to the
upstream task through W3C trace context and baggage (two processes talking HTTP on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import baggage, propagate
from opentelemetry import context as otel_context

import tokentrace
from tests.support.proc import ROOT
from tokentrace._telemetry import providers as _telemetry
from tokentrace.exceptions import ConfigurationError
from tokentrace.testing import Capture

# The downstream service: extracts the caller's context, then makes one call outside any task
# and one inside a task of its own, and answers with the spans it recorded.
SERVICE = """
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from opentelemetry import context, propagate
import tokentrace
from tokentrace.testing import capture
from tests.support.clients import Repeat, openai_client, recorded, request_kwargs

(interaction,) = recorded("dd-trace-py/tests/contrib/litellm/cassettes/completion_reasoning.yaml")
tokentrace.configure(propagate=sys.argv[1])
tokentrace.instrument("openai")
client = openai_client(Repeat(interaction))
kwargs = request_kwargs(interaction, "openai")

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        token = context.attach(propagate.extract({k.lower(): v for k, v in self.headers.items()}))
        try:
            with capture() as cap:
                client.chat.completions.create(**kwargs)
                with tokentrace.task("draft") as task:
                    client.chat.completions.create(**kwargs)
            spans = [{"name": s.name, "trace_id": f"{s.context.trace_id:032x}", **dict(s.attributes)}
                     for s in cap.spans()]
        finally:
            context.detach(token)
        body = json.dumps({"spans": spans, "draft_cost": str(task.totals.cost_usd)}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def _service(mode: str) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TOKENTRACE_"))}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVICE, mode], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{proc.stdout.readline().strip()}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def downstream() -> Iterator[str]:
    yield from _service("tasks")


@pytest.fixture(scope="module")
def downstream_all() -> Iterator[str]:
    yield from _service("all")


def _ask(url: str) -> dict[str, Any]:
    headers: dict[str, str] = {}
    propagate.inject(headers)  # W3C traceparent and baggage, as an HTTP client instrumentation does
    request = urllib.request.Request(url, data=b"{}", headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _upstream(url: str) -> tuple[tokentrace.Task, dict[str, Any], str]:
    with tokentrace.task("resolve_ticket", user_id="u-7", feature="support", tenant="acme") as task:
        answer = _ask(url)
        trace_id = f"{task._span.get_span_context().trace_id:032x}"
    return task, answer, trace_id


@pytest.mark.usefixtures("cap")
def test_a_downstream_call_is_attributed_to_the_upstream_task(downstream: str) -> None:
    """A call made in another process, outside any task there, carries the upstream task's id, name,
    root and feature, in the same trace; no user or tenant id travels by default."""
    task, answer, trace_id = _upstream(downstream)
    bare_call = answer["spans"][0]
    assert bare_call["name"] == "chat o3-mini"
    assert bare_call["trace_id"] == trace_id
    assert bare_call["tokentrace.task.id"] == task.id
    assert bare_call["tokentrace.task.root_id"] == task.id
    assert bare_call["tokentrace.task.name"] == "resolve_ticket"
    assert bare_call["tokentrace.task.root_name"] == "resolve_ticket"
    assert bare_call["tokentrace.feature"] == "support"
    assert "tokentrace.user_id" not in bare_call
    assert "tokentrace.tenant" not in bare_call


@pytest.mark.usefixtures("cap")
def test_a_downstream_task_continues_the_upstream_tree(downstream: str) -> None:
    """A task opened downstream is a child of the upstream task: same root, upstream parent id, the
    upstream feature; its own totals are exact, and its call carries the shared root id."""
    task, answer, _ = _upstream(downstream)
    by_name = {s["name"]: s for s in answer["spans"]}
    draft = by_name["draft"]
    assert draft["tokentrace.task.parent_id"] == task.id
    assert draft["tokentrace.task.root_id"] == task.id
    assert draft["tokentrace.task.root_name"] == "resolve_ticket"
    assert draft["tokentrace.feature"] == "support"
    assert draft["tokentrace.task.cost.usd"] == 0.0001452
    assert answer["draft_cost"] == "0.0001452"
    draft_call = answer["spans"][1]
    assert draft_call["tokentrace.task.id"] == draft["tokentrace.task.id"]
    assert draft_call["tokentrace.task.root_id"] == task.id
    # In-process roll-up stays in-process: the upstream task's own totals hold no downstream call.
    assert task.totals.llm_calls == 0


@pytest.mark.usefixtures("cap")
def test_user_and_tenant_travel_only_when_both_sides_opt_in(downstream_all: str) -> None:
    """With propagate="all" upstream and downstream, user and tenant ids reach the downstream spans."""
    settings = _telemetry.state.settings
    settings.propagate = "all"
    try:
        _, answer, _ = _upstream(downstream_all)
    finally:
        settings.propagate = "tasks"
    # The bare call, the draft task and its call.
    assert len(answer["spans"]) == 3, answer
    for span in answer["spans"]:
        assert (span["tokentrace.user_id"], span["tokentrace.tenant"]) == ("u-7", "acme")


def test_a_task_puts_its_ids_in_the_baggage_and_strips_what_it_may_not_pass_on() -> None:
    """While a task is current its context's baggage names it; an upstream user id is not passed on
    by default."""
    ctx = baggage.set_baggage("tokentrace.user_id", "u-upstream")
    ctx = baggage.set_baggage("tokentrace.task.id", "abc", ctx)
    token = otel_context.attach(ctx)
    try:
        with tokentrace.task("local", feature="f") as task:
            inside = dict(baggage.get_all())
    finally:
        otel_context.detach(token)
    assert inside == {
        "tokentrace.task.id": task.id,
        "tokentrace.task.name": "local",
        "tokentrace.task.root_id": "abc",
        "tokentrace.task.root_name": "local",
        "tokentrace.feature": "f",
    }
    assert task.remote_parent_id == "abc"


def test_propagation_off_sends_and_reads_nothing(cap: Capture) -> None:
    """propagate="none": no baggage is set, and incoming baggage is ignored."""
    settings = _telemetry.state.settings
    settings.propagate = "none"
    token = otel_context.attach(baggage.set_baggage("tokentrace.task.id", "abc"))
    try:
        with tokentrace.task("local") as task:
            inside = dict(baggage.get_all())
    finally:
        otel_context.detach(token)
        settings.propagate = "tasks"
    assert inside == {"tokentrace.task.id": "abc"}  # untouched, not ours
    assert task.root_id == task.id
    assert task.remote_parent_id is None


def test_bad_propagate_values_are_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """configure(propagate=...) and TOKENTRACE_PROPAGATE accept tasks, all or none."""
    with pytest.raises(ConfigurationError, match="propagate must be one of"):
        tokentrace.configure(propagate="everything")
    monkeypatch.setenv("TOKENTRACE_PROPAGATE", "sometimes")
    with pytest.raises(ConfigurationError, match="TOKENTRACE_PROPAGATE='sometimes'"):
        tokentrace.configure()
