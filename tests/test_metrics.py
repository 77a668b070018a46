"""Metrics: GenAI token usage and duration, plus cost counters keyed by low-cardinality attributes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import tokentrace
from tests.support.cassettes import Replay
from tests.support.clients import openai_client, recorded, request_kwargs
from tokentrace._telemetry import providers as _telemetry
from tokentrace.testing import Capture

CALL = "dd-trace-py/tests/contrib/litellm/cassettes/completion_reasoning.yaml"  # 12 in, 30 out, $0.0001452


def _calls(n: int, **task_kwargs: str) -> None:
    (interaction,) = recorded(CALL)
    client = openai_client(Replay([interaction] * n))
    with tokentrace.task("billing", **task_kwargs):
        for _ in range(n):
            client.chat.completions.create(**request_kwargs(interaction, "openai"))


@pytest.fixture
def include_user() -> Iterator[None]:
    _telemetry.state.settings.metrics_include_user = True
    yield
    _telemetry.state.settings.metrics_include_user = False


def test_token_usage_histogram_follows_the_genai_convention(cap: Capture) -> None:
    """gen_ai.client.token.usage has one series per token type with the convention's buckets."""
    _calls(2)
    points = {p.attributes["gen_ai.token.type"]: p for p in cap.metric_points("gen_ai.client.token.usage")}
    assert set(points) == {"input", "output"}
    assert (points["input"].sum, points["input"].count) == (24, 2)
    assert points["output"].sum == 60
    assert list(points["input"].explicit_bounds)[:4] == [1, 4, 16, 64]
    attrs = dict(points["input"].attributes)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "o3-mini"
    assert attrs["gen_ai.response.model"] == "o3-mini-2025-01-31"


def test_operation_duration_is_recorded_in_seconds(cap: Capture) -> None:
    """gen_ai.client.operation.duration gets one point per call, in seconds."""
    _calls(3)
    (point,) = cap.metric_points("gen_ai.client.operation.duration")
    assert point.count == 3
    assert 0 < point.sum < 30


def test_cost_counter_sums_to_the_task_cost(cap: Capture) -> None:
    """tokentrace.cost (USD) adds up to the tasks' cost, keyed by provider, model, task and feature."""
    _calls(3, feature="support")
    (point,) = cap.metric_points("tokentrace.cost")
    assert point.value == pytest.approx(3 * 0.0001452)
    assert dict(point.attributes) == {
        "gen_ai.provider.name": "openai",
        "gen_ai.response.model": "o3-mini-2025-01-31",
        "tokentrace.task.name": "billing",
        "tokentrace.feature": "support",
    }


def test_task_cost_histogram_has_one_point_per_task_run(cap: Capture) -> None:
    """tokentrace.task.cost records each task run's inclusive cost with its outcome."""
    _calls(2)
    _calls(1)
    (point,) = cap.metric_points("tokentrace.task.cost")
    assert point.count == 2
    assert point.sum == pytest.approx(3 * 0.0001452)
    assert dict(point.attributes) == {"tokentrace.task.name": "billing", "tokentrace.task.outcome": "success"}


def test_user_and_tenant_stay_off_metrics_by_default(cap: Capture) -> None:
    """High-cardinality ids never reach metric attributes unless the user opts in."""
    _calls(1, user_id="u-123", tenant="acme")
    for name in ("tokentrace.cost", "tokentrace.task.cost", "gen_ai.client.token.usage"):
        points = cap.metric_points(name)
        assert points, name
        for point in points:
            assert "tokentrace.user_id" not in point.attributes
            assert "tokentrace.tenant" not in point.attributes


@pytest.mark.usefixtures("include_user")
def test_user_and_tenant_on_task_metrics_when_opted_in(cap: Capture) -> None:
    """metrics_include_user adds user and tenant to the task cost histogram."""
    _calls(1, user_id="u-123", tenant="acme")
    (point,) = cap.metric_points("tokentrace.task.cost")
    assert point.attributes["tokentrace.user_id"] == "u-123"
    assert point.attributes["tokentrace.tenant"] == "acme"


def test_unpriced_calls_are_counted(cap: Capture) -> None:
    """tokentrace.unpriced_calls counts calls whose cost could not be known."""
    from tests.support.clients import chat_completion_body, synthetic

    body = chat_completion_body({"prompt_tokens": 1, "completion_tokens": 1}, model="acme-private-7b")
    client = openai_client(Replay(synthetic("https://api.openai.com/v1/chat/completions", body)))
    client.chat.completions.create(model="acme-private-7b", messages=[])
    (point,) = cap.metric_points("tokentrace.unpriced_calls")
    assert point.value == 1


def test_metric_records_are_deferred_to_collection_and_bounded(cap: Capture) -> None:
    """Calls only buffer metric records; a collection replays them; the buffer never grows past its cap."""
    _calls(2)
    inst = _telemetry.instruments()
    assert len(inst.buffer._entries) > 0
    (point,) = cap.metric_points("gen_ai.client.operation.duration")
    assert point.count == 2
    assert len(inst.buffer._entries) == 0
    for _ in range(_telemetry.MAX_BUFFERED + 5):
        inst.buffer.add(inst.unpriced.add, 1, {"k": "v"})
    assert len(inst.buffer._entries) <= _telemetry.MAX_BUFFERED


@pytest.mark.usefixtures("lenient")
def test_a_failing_metric_entry_does_not_lose_the_others(
    cap: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An internal error while replaying one call's metrics leaves the task's metrics intact."""
    from tokentrace._core import engine as _engine

    def boom(*args: object) -> None:
        raise RuntimeError("injected")

    monkeypatch.setattr(_engine, "_emit_call_metrics", boom)
    _calls(2)
    assert cap.metric_points("gen_ai.client.token.usage") == []
    (point,) = cap.metric_points("tokentrace.task.cost")
    assert point.count == 1


def test_the_global_meter_provider_is_where_tokentrace_reads_it() -> None:
    """Pins the one private read of OpenTelemetry's metrics API: whether the application set a
    global MeterProvider is ``opentelemetry.metrics._internal._METER_PROVIDER`` (``None`` until
    set), beside the proxy handed out before. A release that moves them fails here."""
    from opentelemetry.metrics import _internal

    assert hasattr(_internal, "_METER_PROVIDER")
    assert hasattr(_internal, "_PROXY_METER_PROVIDER")
    assert isinstance(_internal._PROXY_METER_PROVIDER, _internal._ProxyMeterProvider)
