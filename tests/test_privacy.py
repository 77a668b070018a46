"""Privacy: no prompt, completion, API key or auth header leaves the process unless opted in."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tokentrace
from tests.support.cassettes import Replay
from tests.support.clients import anthropic_client, recorded, request_kwargs
from tests.support.proc import run_python
from tests.support.servers import otlp_receiver
from tokentrace import _telemetry
from tokentrace.testing import Capture

CALL = "dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion_cache_read.yaml"
API_KEY = "sk-ant-test"


def _everything_exported(cap: Capture) -> str:
    """Every attribute, event and metric attribute value that was exported, as one string."""
    parts: list[Any] = []
    for span in cap.spans():
        parts.append(dict(span.attributes or {}))
        parts.extend(dict(e.attributes or {}) for e in span.events)
        parts.append(span.name)
    data = cap.reader.get_metrics_data()
    if data is not None:
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    parts.extend(dict(p.attributes) for p in metric.data.data_points)
    return json.dumps(parts, default=str)


def _run() -> tuple[str, str]:
    (interaction,) = recorded(CALL)
    client = anthropic_client(Replay([interaction]))
    with tokentrace.task("private"):
        result = client.messages.create(**request_kwargs(interaction, "anthropic"))
    prompt = json.dumps(request_kwargs(interaction, "anthropic")["messages"])
    return prompt, result.content[0].text


@pytest.fixture
def capture_on() -> Iterator[None]:
    settings = _telemetry.state.settings
    settings.capture_content = True
    settings.content_max_chars = 200
    yield
    settings.capture_content = False
    settings.content_max_chars = 4096
    settings.redact = None


def test_defaults_export_no_content_key_or_auth_header(cap: Capture) -> None:
    """By default nothing exported contains the prompt, the completion, the API key or auth headers."""
    prompt, completion = _run()
    exported = _everything_exported(cap)
    prompt_text = json.loads(prompt)[0]["content"]
    snippet = prompt_text if isinstance(prompt_text, str) else json.dumps(prompt_text)[:40]
    for secret in (snippet[:40], completion[:40], API_KEY, "x-api-key", "authorization"):
        assert secret.lower() not in exported.lower(), secret
    assert "gen_ai.input.messages" not in exported


@pytest.mark.usefixtures("capture_on")
def test_opt_in_capture_is_truncated_to_the_configured_size(cap: Capture) -> None:
    """With capture on, messages are recorded as JSON, cut at the configured size."""
    _run()
    attrs = dict(cap.call_spans()[0].attributes or {})
    for key in ("gen_ai.input.messages", "gen_ai.output.messages"):
        assert len(attrs[key]) <= 200 + len("...[truncated]")
    assert API_KEY not in _everything_exported(cap)


@pytest.mark.usefixtures("capture_on")
def test_redaction_hook_sees_content_before_it_is_recorded(cap: Capture) -> None:
    """A user redact hook replaces content before it reaches any span."""
    _telemetry.state.settings.redact = lambda content: "[redacted]"
    _run()
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert attrs["gen_ai.input.messages"] == '"[redacted]"'
    assert attrs["gen_ai.output.messages"] == '"[redacted]"'


CACHED = "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_prompt_caching_cache_read.yaml"
WIRE_APP = """
import json, sys, tokentrace
from tests.support.cassettes import Replay
from tests.support.clients import anthropic_client, recorded, request_kwargs
from tests.support.proc import run_python
from tests.support.servers import otlp_receiver
import openai

PROMPT = "PRIVATE-PROMPT-4f1c9e: my card number is 4111 1111 1111 1111"
tokentrace.configure(service_name="privacy")
tokentrace.instrument("openai", "anthropic")
chat, = recorded("CACHED")
stream = recorded("dd-trace-py/tests/contrib/litellm/cassettes/completion_stream.yaml")
message, = recorded("dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion_cache_read.yaml")
replay = Replay([chat, chat, *stream])
oai = openai.OpenAI(api_key="sk-CANARY-openai-key-0b7d", http_client=replay.sync_client(), max_retries=0,
                    default_headers={"Authorization": "Bearer sk-CANARY-header-5e2a"})
ant = anthropic_client(Replay([message]))
completions = []
budget = tokentrace.Budget(max_cost_usd="1")
with tokentrace.task("private", user_id="u-1", budget=budget):
    for _ in range(2):  # a duplicate: compared by a keyed hash only
        r = oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": PROMPT}])
    completions.append(r.choices[0].message.content)
    kw = request_kwargs(stream[0], "openai")
    kw["messages"] = [{"role": "user", "content": PROMPT}]
    text = "".join(c.choices[0].delta.content or "" for c in oai.chat.completions.create(**kw) if c.choices)
    completions.append(text)
    kw = request_kwargs(message, "anthropic")
    kw["messages"] = [{"role": "user", "content": PROMPT}]
    completions.append(ant.messages.create(**kw).content[0].text)
print(json.dumps({"prompt": PROMPT, "completions": completions}))
""".replace("CACHED", CACHED)
SECRETS = (
    "sk-CANARY-openai-key-0b7d",
    "sk-CANARY-header-5e2a",
    "sk-ant-test",
    "bearer",
    "x-api-key",
    "authorization",
)


def _assert_nothing_private(blob: bytes, shown: dict[str, Any]) -> None:
    text = blob.decode("utf-8", "replace").lower()
    needles = [*SECRETS, shown["prompt"], "4111 1111", *(c[:30] for c in shown["completions"] if c)]
    for needle in needles:
        assert needle.lower() not in text, needle
    assert len(shown["completions"]) == 3


def test_nothing_private_goes_over_the_wire_to_an_otlp_backend() -> None:
    """With defaults, the OTLP bytes of every span and metric a real backend receives hold no prompt,
    completion, API key or auth header (chat, a duplicate, a stream, Anthropic, a budget)."""
    with otlp_receiver() as (endpoint, bodies):
        out = run_python(WIRE_APP, {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})
        paths = {path for path, _ in bodies}
        blob = b"".join(body for _, body in bodies)
    assert paths == {"/v1/traces", "/v1/metrics"}
    assert b"tokentrace.task.cost.usd" in blob  # the scan reads real exported data
    _assert_nothing_private(blob, json.loads(out))


def test_nothing_private_lands_in_the_ledger(tmp_path: Path) -> None:
    """With defaults, the ledger's bytes (database and journal files) hold no prompt, completion, API
    key or auth header."""
    path = tmp_path / "ledger.db"
    out = run_python(WIRE_APP, {"TOKENTRACE_LEDGER": str(path)})
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone() == (4,)
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    _assert_nothing_private(blob, json.loads(out))
