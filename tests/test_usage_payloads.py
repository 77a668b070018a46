"""Garbage, partial and None usage never raises into user code; impossible numbers are flagged."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
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


_BAD: Any = object()
_MAX = 10**12


def _num(value: Any) -> Any:
    """A reported count as the readers take it: an int, an integral float, or ``_BAD``."""
    if isinstance(value, bool):
        return _BAD
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return _BAD


def _delivered(obj: Any) -> Any:
    """A usage as the SDK delivered it, as dicts (the SDK turns ``False`` for a count into 0)."""
    if obj is None or isinstance(obj, (bool, int, float, str, list)):
        return obj
    if isinstance(obj, dict):
        return {k: _delivered(v) for k, v in obj.items()}
    fields = {**(getattr(obj, "__pydantic_extra__", None) or {}), **obj.__dict__}
    return {k: _delivered(v) for k, v in fields.items()}


def _opt(fields: dict[str, Any], name: str) -> Any:
    """An optional count (a subset): 0 when absent."""
    value = fields.get(name)
    return 0 if value is None else _num(value)


def _sane(*counts: Any) -> bool:
    return all(c is not _BAD and 0 <= c <= _MAX for c in counts)


def _chat_status(usage: dict[str, Any]) -> str:
    """The status a Chat Completions usage must get, computed independently of tokentrace."""
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if prompt is None and completion is None:
        return "unpriced"  # no usage at all
    if completion is None and usage.get("total_tokens") is not None and prompt is not None:
        total, first = _num(usage["total_tokens"]), _num(prompt)
        completion = _BAD if _BAD in (total, first) else total - first  # derived from the total
    if prompt is None or completion is None:
        return "invalid_usage"  # a count not reported
    details = usage.get("prompt_tokens_details") or {}
    out_details = usage.get("completion_tokens_details") or {}
    inp, out = _num(prompt), _num(completion)
    read, reasoning = _opt(details, "cached_tokens"), _opt(out_details, "reasoning_tokens")
    if not _sane(inp, out, read, reasoning) or reasoning > out:
        return "invalid_usage"
    if details.get("audio_tokens") or out_details.get("audio_tokens"):
        audio_in, audio_out = _opt(details, "audio_tokens"), _opt(out_details, "audio_tokens")
        if not _sane(audio_in, audio_out) or audio_in > inp or audio_out > out:
            return "invalid_usage"
    return "estimated" if read > inp else "priced"  # cache reads beyond the input: kept, not exact


def _anthropic_status(usage: dict[str, Any]) -> str:
    """The status an Anthropic usage must get, computed independently of tokentrace."""
    if usage.get("input_tokens") is None or usage.get("output_tokens") is None:
        return "invalid_usage"
    inp, out = _num(usage["input_tokens"]), _num(usage["output_tokens"])
    read = _opt(usage, "cache_read_input_tokens")
    write = _opt(usage, "cache_creation_input_tokens")
    one_hour = _opt(usage.get("cache_creation") or {}, "ephemeral_1h_input_tokens")
    if not _sane(inp, out, read, write, one_hour) or one_hour > write or inp + read + write > _MAX:
        return "invalid_usage"
    return "priced"


def _responses_status(usage: dict[str, Any]) -> str:
    """The status a Responses API usage must get, computed independently of tokentrace."""
    if usage.get("input_tokens") is None or usage.get("output_tokens") is None:
        return "invalid_usage"
    inp, out = _num(usage["input_tokens"]), _num(usage["output_tokens"])
    read = _opt(usage.get("input_tokens_details") or {}, "cached_tokens")
    reasoning = _opt(usage.get("output_tokens_details") or {}, "reasoning_tokens")
    if not _sane(inp, out, read, reasoning) or reasoning > out:
        return "invalid_usage"
    return "estimated" if read > inp else "priced"


def _check(attrs: dict[str, Any], totals: tokentrace.Totals, expected: str) -> None:
    """The call has exactly the ``expected`` status, and what that status promises."""
    status = attrs["tokentrace.cost.status"]
    assert status == expected
    if status in ("invalid_usage", "unpriced"):
        assert isinstance(attrs["tokentrace.usage.problem"], str)
        assert "gen_ai.usage.input_tokens" not in attrs
        assert "tokentrace.cost.usd" not in attrs
        assert totals.unpriced_calls == 1
        assert (totals.input_tokens, totals.output_tokens, totals.cost_usd) == (0, 0, 0)
    else:  # priced, or estimated: counted, and never at $0 for a call with tokens
        for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
            assert type(attrs[key]) is int
            assert attrs[key] >= 0
        assert totals.unpriced_calls == 0
        assert totals.estimated_calls == (status == "estimated")
        tokens = attrs["gen_ai.usage.input_tokens"] + attrs["gen_ai.usage.output_tokens"]
        assert (totals.cost_usd > 0) == (tokens > 0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(usage=st.one_of(st.none(), OPENAI_USAGE))
def test_openai_usage_fuzz_never_raises(usage: Any) -> None:
    """Any usage object the openai SDK lets through is either priced sanely or flagged."""
    result, attrs, totals = _call("openai", usage)
    assert result.choices[0].message.content == "hi"
    usage = _delivered(result.usage)
    _check(attrs, totals, "unpriced" if usage is None else _chat_status(usage))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(usage=st.one_of(st.none(), ANTHROPIC_USAGE))
def test_anthropic_usage_fuzz_never_raises(usage: Any) -> None:
    """Any usage object the anthropic SDK lets through is either priced sanely or flagged."""
    result, attrs, totals = _call("anthropic", usage)
    assert result.content[0].text == "hi"
    usage = _delivered(result.usage)
    _check(attrs, totals, "unpriced" if usage is None else _anthropic_status(usage))


@pytest.mark.parametrize(
    ("usage", "problem"),
    [
        ({"prompt_tokens": -5, "completion_tokens": 3}, "input_tokens is negative"),
        ({"prompt_tokens": "12", "completion_tokens": 3}, "prompt_tokens is not a token count"),
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
            "cache reads and cache writes together exceed input tokens",
        ),
        (
            {"input_tokens": 10, "cache_read_tokens": 6, "cache_write_tokens": 5, "reasoning_tokens": 1},
            "reasoning tokens exceed output tokens",  # an impossible count comes before the overlap
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
    assert (
        messages_usage({"input_tokens": 2.0, "output_tokens": 1, "cache_read_input_tokens": 1}).input_tokens
        == 3
    )


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
    usage = _delivered(result.usage)
    _check(
        dict(span.attributes or {}), task.totals, "unpriced" if usage is None else _responses_status(usage)
    )


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
        chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hi"
    (span,) = cap.call_spans()
    attrs = dict(span.attributes or {})
    usage = _delivered(chunks[-1].usage) or {}
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if prompt is not None and completion is not None:
        _check(attrs, task.totals, _chat_status(usage))
    elif _sane(*(_num(c) for c in (prompt, completion) if c is not None)):
        # A count not reported is counted offline (8 in, "hi" 1 out), what was reported kept.
        _check(attrs, task.totals, "estimated")
        assert attrs["gen_ai.usage.input_tokens"] == (8 if prompt is None else _num(prompt))
        assert attrs["gen_ai.usage.output_tokens"] == (1 if completion is None else _num(completion))
    else:
        _check(attrs, task.totals, "invalid_usage")


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


def test_sdk_response_fields_are_where_values_reads_them() -> None:
    """Pins the one read of pydantic's storage: a response model's fields are its ``__dict__``
    and its extra fields ``__pydantic_extra__`` (what ``values`` reads instead of ``getattr``,
    which makes pydantic raise and catch an error for each missing name). A pydantic release
    that stores them elsewhere fails here."""
    from openai.types import CompletionUsage

    from tokentrace.integrations import values

    usage = CompletionUsage.model_validate(
        {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, "cost": 0.5}
    )
    assert usage.__dict__["prompt_tokens"] == 3
    assert usage.__pydantic_extra__ == {"cost": 0.5}
    assert dict(values(usage)) == {
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "total_tokens": 7,
        "completion_tokens_details": None,
        "prompt_tokens_details": None,
        "cost": 0.5,
    }


def test_the_base_url_is_read_afresh_from_the_client() -> None:
    """``base_url_of`` gives the client's base URL as text, and a client given a new one gives that."""
    import httpx

    from tokentrace.integrations import base_url_of

    class Client:
        def __init__(self, url: str) -> None:
            self._base_url = httpx.URL(url)

    class Resource:
        def __init__(self, url: str) -> None:
            self._client = Client(url)

    resource = Resource("https://api.openai.com/v1/")
    assert base_url_of(resource) == "https://api.openai.com/v1/"
    resource._client._base_url = httpx.URL("http://127.0.0.1:8000/v1/")
    assert base_url_of(resource) == "http://127.0.0.1:8000/v1/"


def test_a_stainless_clients_base_url_is_where_base_url_of_reads_it() -> None:
    """Pins the read of the openai and anthropic clients' ``_base_url`` (what their public
    ``base_url`` property returns): a release that renames it fails here."""
    import anthropic
    import openai

    from tokentrace.integrations import base_url_of

    for client in (
        openai.OpenAI(api_key="k", base_url="http://127.0.0.1:9/v1"),
        anthropic.Anthropic(api_key="k", base_url="http://127.0.0.1:9"),
    ):
        assert client._base_url == client.base_url
        assert base_url_of(client.chat if hasattr(client, "chat") else client.messages) == str(
            client.base_url
        )
