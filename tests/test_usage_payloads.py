"""Garbage, partial and None usage never raises into user code; impossible numbers are flagged."""

from __future__ import annotations

import dataclasses
import inspect
import json
import pickle
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tokentrace
from tests.support.cassettes import Interaction, Replay
from tests.support.clients import (
    anthropic_client,
    chat_completion_body,
    message_body,
    openai_client,
    synthetic,
)
from tokentrace.integrations.anthropic import messages_usage
from tokentrace.integrations.openai import chat_usage
from tokentrace.testing import capture
from tokentrace.types import Modalities, Usage

NUMBERS = st.one_of(
    st.none(),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)


def _call(provider: str, usage: Any) -> tuple[Any, dict[str, Any], tokentrace.Totals]:
    if provider == "openai":
        replay = Replay(synthetic("https://api.openai.com/v1/chat/completions", chat_completion_body(usage)))
        client = openai_client(replay)
        with capture() as cap, tokentrace.task("fuzz") as task:
            result = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
            )
    else:
        replay = Replay(synthetic("https://api.anthropic.com/v1/messages", message_body(usage)))
        client = anthropic_client(replay)
        with capture() as cap, tokentrace.task("fuzz") as task:
            result = client.messages.create(
                model="claude-sonnet-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
    (span,) = cap.call_spans()
    return result, dict(span.attributes or {}), task.totals


OPENAI_USAGE = st.fixed_dictionaries(
    {},
    optional={
        "prompt_tokens": NUMBERS,
        "completion_tokens": NUMBERS,
        "total_tokens": NUMBERS,
        "prompt_tokens_details": st.one_of(
            st.none(), st.fixed_dictionaries({}, optional={"cached_tokens": NUMBERS, "audio_tokens": NUMBERS})
        ),
        "completion_tokens_details": st.one_of(
            st.none(),
            st.fixed_dictionaries({}, optional={"reasoning_tokens": NUMBERS, "audio_tokens": NUMBERS}),
        ),
        "surprise": st.text(max_size=3),
    },
)
ANTHROPIC_USAGE = st.fixed_dictionaries(
    {},
    optional={
        "input_tokens": NUMBERS,
        "output_tokens": NUMBERS,
        "cache_read_input_tokens": NUMBERS,
        "cache_creation_input_tokens": NUMBERS,
        "cache_creation": st.one_of(
            st.none(), st.fixed_dictionaries({}, optional={"ephemeral_1h_input_tokens": NUMBERS})
        ),
        "surprise": st.text(max_size=3),
    },
)


def _check(attrs: dict[str, Any], totals: tokentrace.Totals) -> None:
    status = attrs["tokentrace.cost.status"]
    assert status in {"priced", "unpriced", "invalid_usage"}
    if status == "invalid_usage":
        assert isinstance(attrs["tokentrace.usage.problem"], str)
        assert "gen_ai.usage.input_tokens" not in attrs
        assert "tokentrace.cost.usd" not in attrs
        assert totals.unpriced_calls == 1
        assert totals.input_tokens == 0
    if status == "priced":
        for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
            assert type(attrs[key]) is int
            assert attrs[key] >= 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(usage=st.one_of(st.none(), OPENAI_USAGE))
def test_openai_usage_fuzz_never_raises(usage: Any) -> None:
    """Any usage object the openai SDK lets through is either priced sanely or flagged."""
    result, attrs, totals = _call("openai", usage)
    assert result.choices[0].message.content == "hi"
    _check(attrs, totals)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(usage=st.one_of(st.none(), ANTHROPIC_USAGE))
def test_anthropic_usage_fuzz_never_raises(usage: Any) -> None:
    """Any usage object the anthropic SDK lets through is either priced sanely or flagged."""
    result, attrs, totals = _call("anthropic", usage)
    assert result.content[0].text == "hi"
    _check(attrs, totals)


@pytest.mark.parametrize(
    ("usage", "problem"),
    [
        ({"prompt_tokens": -5, "completion_tokens": 3}, "input_tokens is negative"),
        ({"prompt_tokens": "12", "completion_tokens": 3}, "prompt_tokens is not a token count"),
        (
            {"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 11}},
            "cache",
        ),
        ({"prompt_tokens": 10**13, "completion_tokens": 3}, "implausibly large"),
        ({"prompt_tokens": 1.5, "completion_tokens": 3}, "not a token count"),
    ],
)
def test_impossible_numbers_are_flagged_not_priced(usage: dict[str, Any], problem: str) -> None:
    """Negative, string, fractional, huge or inconsistent counts become invalid_usage with a reason."""
    _result, attrs, totals = _call("openai", usage)
    assert attrs["tokentrace.cost.status"] == "invalid_usage"
    assert problem in attrs["tokentrace.usage.problem"]
    assert totals.unpriced_calls == 1


_AUDIO_6_4 = Modalities(audio_input=6, audio_cache_read=4)
_AUDIO_5_3 = Modalities(audio_input=5, audio_cache_read=3)
_AUDIO_2_3 = Modalities(audio_input=2, audio_cache_read=3)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"input_tokens": 10, "output_tokens": 5, "cache_read_tokens": 4, "cache_write_tokens": 6}, None),
        ({"input_tokens": 10, "cache_write_tokens": 6, "cache_write_1h_tokens": 6}, None),
        ({"output_tokens": 5, "reasoning_tokens": 5, "web_search_requests": 2}, None),
        ({"input_tokens": 10, "cache_read_tokens": -1}, "cache_read_tokens is negative (-1)"),
        ({"output_tokens": 5, "reasoning_tokens": -5}, "reasoning_tokens is negative (-5)"),
        ({"web_search_requests": -1}, "web_search_requests is negative (-1)"),
        ({"file_search_requests": -2}, "file_search_requests is negative (-2)"),
        ({"file_search_requests": 10**12 + 1}, "file_search_requests is implausibly large"),
        ({"output_tokens": 10**12 + 1}, "output_tokens is implausibly large (1000000000001)"),
        (
            {"input_tokens": 10, "cache_read_tokens": 6, "cache_write_tokens": 5},
            "cache tokens exceed input tokens",
        ),
        (
            {"input_tokens": 10, "cache_write_tokens": 2, "cache_write_1h_tokens": 3},
            "1-hour cache writes exceed",
        ),
        ({"output_tokens": 5, "reasoning_tokens": 6}, "reasoning tokens exceed output tokens"),
        ({"input_tokens": 10.0, "output_tokens": 5}, "input_tokens is not a token count (float)"),
        ({"input_tokens": 10, "output_tokens": "5"}, "output_tokens is not a token count (str)"),
        ({"input_tokens": 10, "modalities": Modalities(audio_input=10)}, None),
        (
            {"input_tokens": 10, "cache_read_tokens": 4, "modalities": _AUDIO_6_4},
            None,
        ),
        (
            {"input_tokens": 10, "modalities": Modalities(audio_input=6, image_input=5)},
            "audio, image and video input tokens exceed input tokens",
        ),
        (
            {"input_tokens": 10, "cache_read_tokens": 2, "modalities": _AUDIO_5_3},
            "audio, image and video cache reads exceed cache reads",
        ),
        (
            {"input_tokens": 10, "cache_read_tokens": 5, "modalities": _AUDIO_2_3},
            "a modality's cache reads exceed its input tokens",
        ),
        (
            {"output_tokens": 5, "modalities": Modalities(image_output=6)},
            "audio, image and video output tokens exceed output tokens",
        ),
        (
            {"input_tokens": 5, "modalities": Modalities(audio_input=-1)},
            "modalities.audio_input is not a plausible token count (-1)",
        ),
        (
            {"input_tokens": 5, "modalities": Modalities(video_input="3")},  # type: ignore[arg-type]
            "modalities.video_input is not a token count (str)",
        ),
        ({"input_tokens": 5, "modalities": {"audio_input": 3}}, "modalities is not a Modalities (dict)"),
        (
            {"input_tokens": -1, "modalities": Modalities(audio_input=1)},
            "input_tokens is negative (-1)",
        ),
    ],
)
def test_usage_problem_names_the_first_impossible_count(fields: dict[str, Any], problem: str | None) -> None:
    """A Usage from any reader (a third party's included) says which count is impossible, or None."""
    found = Usage(**fields).problem()
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(problem)


def test_missing_usage_is_unpriced_not_zero() -> None:
    """A successful response without usage is unpriced (never $0) and says why."""
    _result, attrs, totals = _call("openai", None)
    assert attrs["tokentrace.cost.status"] == "unpriced"
    assert attrs["tokentrace.usage.problem"] == "the response reported no usage"
    assert totals.unpriced_calls == 1


def test_integral_floats_are_accepted_as_counts() -> None:
    """12.0 is a count of 12; the readers accept integral floats."""
    assert chat_usage({"prompt_tokens": 12.0, "completion_tokens": 3}).input_tokens == 12
    assert messages_usage({"input_tokens": 2.0, "cache_read_input_tokens": 1}).input_tokens == 3


RESPONSES_USAGE = st.fixed_dictionaries(
    {},
    optional={
        "input_tokens": NUMBERS,
        "output_tokens": NUMBERS,
        "total_tokens": NUMBERS,
        "input_tokens_details": st.one_of(
            st.none(), st.fixed_dictionaries({}, optional={"cached_tokens": NUMBERS})
        ),
        "output_tokens_details": st.one_of(
            st.none(), st.fixed_dictionaries({}, optional={"reasoning_tokens": NUMBERS})
        ),
        "surprise": st.text(max_size=3),
    },
)


def _responses_body(usage: Any) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "model": "gpt-4o-mini",
        "status": "completed",
        "output": [
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "hi", "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }


def _sse(events: list[dict[str, Any]]) -> Interaction:
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return Interaction(
        "POST",
        "https://api.openai.com/v1/chat/completions",
        b"{}",
        200,
        [("content-type", "text/event-stream")],
        body.encode(),
    )


@settings(max_examples=60, deadline=None)
@given(usage=st.one_of(st.none(), RESPONSES_USAGE))
def test_responses_usage_fuzz_never_raises(usage: Any) -> None:
    """Any usage the Responses API could send is either priced sanely or flagged."""
    replay = Replay(synthetic("https://api.openai.com/v1/responses", _responses_body(usage)))
    with capture() as cap, tokentrace.task("fuzz") as task:
        result = openai_client(replay).responses.create(model="gpt-4o-mini", input="x")
    assert result.output_text == "hi"
    (span,) = cap.call_spans()
    _check(dict(span.attributes or {}), task.totals)


@settings(max_examples=60, deadline=None)
@given(usage=st.one_of(st.none(), OPENAI_USAGE))
def test_streamed_usage_fuzz_never_raises(usage: Any) -> None:
    """A stream whose final usage chunk holds anything yields every chunk unchanged; the call is priced
    sanely, flagged, or counted offline as an estimate."""
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    events = [
        {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}}]},
        {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**chunk, "choices": [], "usage": usage},
    ]
    with capture() as cap, tokentrace.task("fuzz") as task:
        stream = openai_client(Replay([_sse(events)])).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "hi"
    (span,) = cap.call_spans()
    attrs = dict(span.attributes or {})
    if usage is None:  # no usage at all: counted offline from the text, and flagged as an estimate
        assert attrs["tokentrace.cost.status"] == "estimated"
        assert task.totals.estimated_calls == 1
        assert task.totals.output_tokens == 1  # "hi"
    else:
        _check(attrs, task.totals)


def test_usage_constructor_takes_every_field_in_order_with_zero_defaults() -> None:
    """Usage's hand-written constructor (faster than the generated one) matches its fields exactly
    (the counts default to 0, the modality breakdown to ``None``) and builds a real, frozen,
    hashable, picklable Usage."""
    names = [f.name for f in dataclasses.fields(Usage)]
    params = list(inspect.signature(Usage).parameters.values())
    assert [p.name for p in params] == names
    assert names[-1] == "modalities"
    assert [p.default for p in params] == [0] * (len(names) - 1) + [None]
    modalities = Modalities(audio_input=1, image_output=2)
    values = [*range(1, len(names)), modalities]
    usage = Usage(*values)
    assert [getattr(usage, name) for name in names] == values
    assert usage == Usage(**dict(zip(names, values, strict=True)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        usage.input_tokens = 0  # type: ignore[misc]
    assert type(usage) is Usage
    assert hash(usage) == hash(Usage(*values))
    assert pickle.loads(pickle.dumps(usage)) == usage
    assert dataclasses.replace(usage, output_tokens=40).output_tokens == 40
    assert Usage() == Usage(0, 0, 0, 0, 0, 0, 0, 0, None)
    with pytest.raises(TypeError):
        Usage(*values, 0)  # type: ignore[misc]
    with pytest.raises(TypeError):
        Usage(bogus=1)  # type: ignore[call-arg]
