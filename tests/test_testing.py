"""tokentrace.testing: capture() and ReplayServer, the helpers users test their own costs with."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

import tokentrace
from tests.support.proc import ROOT
from tokentrace.testing import Recorded, ReplayServer, capture

RECORDINGS = ROOT / "src" / "tokentrace" / "_cli" / "demo" / "recordings"


def test_replay_server_serves_in_turn_and_routes_streams() -> None:
    """Responses are served in order (the last repeats) and stream requests get the #stream route."""
    server = ReplayServer(
        {
            "/v1/chat/completions": [
                Recorded((RECORDINGS / "openai_error_401.json").read_bytes(), status=401),
                Recorded((RECORDINGS / "openai_chat.json").read_bytes()),
            ],
            "/v1/chat/completions#stream": [
                Recorded(
                    (RECORDINGS / "openai_chat_stream.sse").read_bytes(), content_type="text/event-stream"
                )
            ],
        }
    )
    with server, capture() as cap:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="test", max_retries=0)
        messages = [{"role": "user", "content": "x"}]
        with tokentrace.task("replayed") as task:
            with pytest.raises(openai.AuthenticationError):
                client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            for _ in range(2):
                client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            for _ in client.chat.completions.create(model="gpt-3.5-turbo", messages=messages, stream=True):
                pass
    assert [path for path, _ in server.requests] == ["/v1/chat/completions"] * 4
    assert task.totals.llm_calls == 4
    assert task.totals.by_model["gpt-3.5-turbo-0125"].output_tokens == 20
    assert task.totals.by_model["gpt-4o-mini-2024-07-18"].input_tokens == 246
    assert len(cap.call_spans()) == 4
    assert task.totals.cost_usd > Decimal(0)


def test_replay_server_url_needs_a_running_server() -> None:
    """Asking for the URL of a stopped server says how to start it."""
    with pytest.raises(RuntimeError, match="context manager"):
        _ = ReplayServer({}).url


def test_capture_restores_the_previous_providers() -> None:
    """After capture() the telemetry providers are what they were before."""
    from tokentrace._telemetry import providers as _telemetry

    before = (_telemetry.state.tracer_provider, _telemetry.state.meter_provider)
    with capture():
        assert _telemetry.state.tracer_provider is not before[0]
    assert (_telemetry.state.tracer_provider, _telemetry.state.meter_provider) == before


def test_every_fault_point_names_a_step_that_exists() -> None:
    """Each of ``FAULT_POINTS`` resolves to one of tokentrace's functions, replaced and restored."""
    from tokentrace.testing import FAULT_POINTS, inject_fault

    assert len(FAULT_POINTS) == 37
    for point in FAULT_POINTS:
        with inject_fault(point):
            pass
    unknown = r"unknown fault point 'call\.nowhere'"
    with pytest.raises(ValueError, match=unknown), inject_fault("call.nowhere"):
        pass
