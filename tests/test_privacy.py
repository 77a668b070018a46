"""Privacy: no prompt, completion, API key or auth header leaves the process unless opted in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import tokentrace
from tests.support.cassettes import Replay
from tests.support.clients import anthropic_client, recorded, request_kwargs
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
