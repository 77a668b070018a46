"""Privacy: no prompt, completion, API key or auth header leaves the process unless opted in."""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tokentrace
from tests.support.cassettes import Interaction, Replay
from tests.support.clients import anthropic_client, openai_client, recorded, request_kwargs
from tests.support.proc import run_python
from tests.support.servers import otlp_receiver
from tokentrace._telemetry import providers as _telemetry
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
from tests.support.cassettes import Interaction, Replay
from tests.support.clients import anthropic_client, openai_client, recorded, request_kwargs
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


LEAK_PROMPT = "PRIVATE-PROMPT-9d3e: my card number is 4111 1111 1111 1111"
LEAK_KEY = "sk-CANARY-echoed-key-7c21"
ANTHROPIC_400 = "dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion_error.yaml"
OPENAI_400 = "dd-trace-py/tests/contrib/openai/cassettes/v1/response_create_error.yaml"


def _echoing_400(path: str) -> Interaction:
    """A recorded 400 whose error message echoes the request's prompt and the caller's key, as some
    providers' "context too long. Received Messages=[...]" errors do."""
    (recorded_400,) = recorded(path)
    body = json.loads(recorded_400.body)
    body["error"]["message"] = (
        f"prompt is too long. Received Messages=[{{'role': 'user', 'content': '{LEAK_PROMPT}'}}] "
        f"with headers {{'Authorization': 'Bearer {LEAK_KEY}'}}"
    )
    return dataclasses.replace(recorded_400, body=json.dumps(body).encode())


def _call_that_fails(path: str) -> None:
    replay = Replay([_echoing_400(path)])
    messages = [{"role": "user", "content": LEAK_PROMPT}]
    if "anthropic" in path:
        client = anthropic_client(replay)
        send: Any = lambda: client.messages.create(  # noqa: E731
            model="claude-3-opus-20240229", max_tokens=15, messages=messages
        )
    else:
        client = openai_client(replay)
        send = lambda: client.responses.create(model="gpt-4o-mini", input=messages)  # noqa: E731
    with pytest.raises(Exception, match="prompt is too long"), tokentrace.task("leaky"):
        send()


def _exported_and_logged(cap: Capture, caplog: pytest.LogCaptureFixture) -> str:
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("tokentrace")]
    return _everything_exported(cap) + json.dumps(ours)


@pytest.mark.parametrize("path", [ANTHROPIC_400, OPENAI_400])
def test_a_provider_error_that_echoes_the_prompt_and_key_exports_neither(
    path: str, cap: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    """With defaults, a recorded 400 whose message holds a prompt and an API key leaves only the
    exception's type and status code on the call and task spans: no message, no stack trace."""
    caplog.set_level(logging.DEBUG, logger="tokentrace")
    _call_that_fails(path)
    exported = _exported_and_logged(cap, caplog)
    for secret in (LEAK_PROMPT, "4111 1111", LEAK_KEY, "prompt is too long", "Traceback"):
        assert secret not in exported, secret
    (call,) = cap.call_spans()
    (task,) = cap.task_spans()
    error_type = "anthropic.BadRequestError" if "anthropic" in path else "openai.BadRequestError"
    for span in (call, task):
        (event,) = [e for e in span.events if e.name == "exception"]
        assert dict(event.attributes or {}) == {"exception.type": error_type}
        assert span.status.description == "BadRequestError"
    assert (call.attributes or {})["http.response.status_code"] == 400
    assert (call.attributes or {})["error.type"] == "BadRequestError"


@pytest.mark.usefixtures("capture_on")
def test_with_content_capture_on_the_exception_text_is_recorded(cap: Capture) -> None:
    """A user who opted in to content capture gets the provider's error message and stack trace."""
    _call_that_fails(ANTHROPIC_400)
    (call,) = cap.call_spans()
    (event,) = [e for e in call.events if e.name == "exception"]
    attrs = dict(event.attributes or {})
    assert attrs["exception.type"] == "anthropic.BadRequestError"
    assert LEAK_PROMPT in str(attrs["exception.message"])
    assert "Traceback" in str(attrs["exception.stacktrace"])


def test_nothing_private_from_a_provider_error_goes_over_the_wire() -> None:
    """With defaults, the OTLP bytes a real backend receives for a failed call whose error echoes
    the prompt and key hold neither."""
    app = """
import tokentrace
from tests.test_privacy import _call_that_fails, ANTHROPIC_400
tokentrace.configure(service_name="privacy")
tokentrace.instrument("openai", "anthropic")
_call_that_fails(ANTHROPIC_400)
print("sent")
"""
    with otlp_receiver() as (endpoint, bodies):
        out = run_python(app, {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})
        blob = b"".join(body for _, body in bodies)
    assert out.strip() == "sent"
    assert b"anthropic.BadRequestError" in blob  # the scan reads the real exported event
    for secret in (LEAK_PROMPT, "4111 1111", LEAK_KEY, "prompt is too long"):
        assert secret.encode() not in blob, secret
