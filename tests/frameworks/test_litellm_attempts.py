"""LiteLLM's own retries (``num_retries``), a Router's retries and fallbacks, and budget stops:
each litellm call is one call, whose requests are its attempts, each with its model and status;
its cost is what its attempts were billed."""

from __future__ import annotations

import asyncio
import gc
import logging
from decimal import Decimal
from typing import Any

import genai_prices
import litellm
import pytest
import wrapt

import tokentrace
from tests.frameworks import recordings as rec
from tests.frameworks.matrix import note
from tests.frameworks.recordings import Server
from tests.frameworks.test_litellm import CHAT_MODEL, MESSAGES, STREAM_MODEL, _run, _target
from tokentrace._core import engine as _engine
from tokentrace._core import relay as _relay
from tokentrace.integrations.litellm import LiteLLMIntegration
from tokentrace.testing import Capture, inject_fault

ATTEMPT = "tokentrace.attempt"
TWO = "one call, 2 attempts"


def _attempt_events(span: Any) -> list[dict[str, Any]]:
    return [dict(event.attributes or {}) for event in span.events if event.name == ATTEMPT]


def _router(
    server: Server,
    *,
    streamed: bool = False,
    fallback: bool = True,
    retries: int = 0,
    continuation: bool = False,
) -> Any:
    """A Router with a model group "gpt" (OpenAI) falling back to "claude" (Anthropic); with
    ``continuation``, a stream cut after content goes on at "claude" from the text already sent
    (its deployment declared able to continue an assistant's text)."""
    models = STREAM_MODEL if streamed else CHAT_MODEL
    gpt = {"model": models["openai"], **_target("openai", server.url)}
    model_list: list[dict[str, Any]] = [{"model_name": "gpt", "litellm_params": gpt}]
    if fallback:
        claude = {"model": models["anthropic"], **_target("anthropic", server.url)}
        info = {"supports_assistant_prefill": True} if continuation else {}
        model_list.append({"model_name": "claude", "litellm_params": claude, "model_info": info})
    fallbacks = [{"gpt": ["claude"]}] if fallback else []
    return litellm.Router(
        model_list=model_list,
        fallbacks=fallbacks,
        num_retries=retries,
        enable_mid_stream_fallback_continuation=continuation,
    )


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_num_retries_are_attempts_of_one_call(provider: str, mode: str, cap: Capture) -> None:
    """completion(num_retries=1) whose first request gets HTTP 500: one call span with two
    attempts (500, then 200), one retry, and the usage and cost of the request that answered."""
    with Server(fail_first=1) as server, tokentrace.task("retried") as task:
        kwargs = {"model": CHAT_MODEL[provider], "messages": MESSAGES, **_target(provider, server.url)}
        _run(mode, litellm.completion, litellm.acompletion, {**kwargs, "num_retries": 1})
    (span,) = cap.call_spans()
    (recording,) = server.served
    attrs = dict(span.attributes or {})
    note("litellm", f"num_retries=1, first request HTTP 500 ({provider}/)", mode, TWO, 2, 1)
    assert len(server.requests) == 2
    assert attrs["tokentrace.attempts"] == ("500", "200")
    assert attrs["tokentrace.retries"] == 1
    assert attrs["gen_ai.usage.input_tokens"] == recording.input_tokens
    assert attrs["gen_ai.usage.output_tokens"] == recording.output_tokens
    assert "error.type" not in attrs
    first, second = _attempt_events(span)
    assert first == {
        "tokentrace.attempt.number": 1,
        "tokentrace.attempt.outcome": "500",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": recording.model,
    }
    assert second["tokentrace.attempt.outcome"] == "200"
    assert second["gen_ai.usage.input_tokens"] == recording.input_tokens
    assert second["gen_ai.usage.output_tokens"] == recording.output_tokens
    assert isinstance(second["tokentrace.cost.usd"], float)
    totals = task.totals
    assert (totals.llm_calls, totals.retries) == (1, 1)
    assert (totals.input_tokens, totals.output_tokens) == (recording.input_tokens, recording.output_tokens)
    assert totals.cost_usd == recording.cost()
    assert totals.retry_waste_cost_usd == Decimal(0)


@pytest.mark.parametrize("mode", ["sync", "async", "stream", "async stream"])
def test_a_router_fallback_is_an_attempt_of_one_call(mode: str, cap: Capture) -> None:
    """Router "gpt" (OpenAI) falls back to "claude" (Anthropic) after an HTTP 500: one call span
    named for the model group, two attempts each with its model and provider, and the call priced
    as the Anthropic answer that was billed."""
    streamed = "stream" in mode
    with Server(fail_first=1) as server, tokentrace.task("fallback") as task:
        url = server.url
        router = _router(server, streamed=streamed)
        kwargs = {"model": "gpt", "messages": MESSAGES, "stream": streamed}
        _run(mode, router.completion, router.acompletion, kwargs)
    (span,) = cap.call_spans()
    (recording,) = server.served
    openai_model = (rec.CHAT_STREAM if streamed else rec.CHAT).model
    attrs = dict(span.attributes or {})
    note("litellm", "Router fallback after HTTP 500 (openai/ to anthropic/)", mode, TWO, 2, 1)
    assert [path for path, _ in server.requests] == ["/v1/chat/completions", "/v1/messages"]
    assert span.name == "chat gpt"
    assert attrs["gen_ai.request.model"] == "gpt"
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.response.model"] == recording.model
    assert attrs["tokentrace.base_url"] == url  # where the answer was sent, as whatif re-prices it
    assert attrs["tokentrace.attempts"] == ("500", "200")
    assert attrs["tokentrace.retries"] == 1
    first, second = _attempt_events(span)
    assert (first["gen_ai.provider.name"], first["gen_ai.request.model"]) == ("openai", openai_model)
    assert "tokentrace.cost.usd" not in first
    assert (second["gen_ai.provider.name"], second["gen_ai.request.model"]) == ("anthropic", recording.model)
    assert second["tokentrace.attempt.outcome"] == "200"
    totals = task.totals
    assert (totals.llm_calls, totals.retries) == (1, 1)
    assert (totals.input_tokens, totals.output_tokens) == (recording.input_tokens, recording.output_tokens)
    assert totals.cost_usd == recording.cost()
    assert list(totals.by_model) == [recording.model]


def _read(mode: str, router: Any, kwargs: dict[str, Any]) -> list[str]:
    """Call the Router's completion or acompletion and read its stream to the end: the text of
    each chunk the application receives."""
    if mode == "stream":
        return [chunk.choices[0].delta.content or "" for chunk in router.completion(**kwargs)]

    async def run() -> list[str]:
        stream = await router.acompletion(**kwargs)
        return [chunk.choices[0].delta.content or "" async for chunk in stream]

    return asyncio.run(run())


def _cut_then_answered(span: Any, task: Any, answer: rec.Recording) -> dict[str, Any]:
    """Assert a call whose first attempt, to OpenAI, was a stream cut by its provider's error and
    whose second, to Anthropic, streamed ``answer``: one call of two attempts, billed both, the
    cut one's part as retry waste. Returns the cut attempt's event."""
    attrs = dict(span.attributes or {})
    cut, second = _attempt_events(span)
    assert span.name == "chat gpt"
    assert attrs["tokentrace.retries"] == 1
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.response.model"] == answer.model
    assert "error.type" not in attrs
    assert attrs["tokentrace.attempts"] == ("server_error", "200")  # the provider's name for the cut
    assert cut["tokentrace.attempt.outcome"] == "server_error"
    assert (cut["gen_ai.provider.name"], cut["gen_ai.request.model"]) == ("openai", rec.CHAT_STREAM.model)
    assert (second["gen_ai.provider.name"], second["tokentrace.attempt.outcome"]) == ("anthropic", "200")
    assert second["gen_ai.usage.input_tokens"] == answer.input_tokens
    assert second["gen_ai.usage.output_tokens"] == answer.output_tokens
    # The cut stream has no usage in its body (OpenAI sends it last): what it was billed is counted
    # offline, flagged estimated, and its cost is that count's at its model's price.
    usage = genai_prices.Usage(
        input_tokens=cut["gen_ai.usage.input_tokens"], output_tokens=cut["gen_ai.usage.output_tokens"]
    )
    cut_cost = Decimal(
        genai_prices.calc_price(usage, rec.CHAT_STREAM.model, provider_id="openai").total_price
    )
    assert cut_cost > 0
    assert attrs["tokentrace.cost.status"] == "estimated"
    assert attrs["gen_ai.usage.input_tokens"] == answer.input_tokens + cut["gen_ai.usage.input_tokens"]
    assert attrs["gen_ai.usage.output_tokens"] == answer.output_tokens + cut["gen_ai.usage.output_tokens"]
    totals = task.totals
    assert (totals.llm_calls, totals.retries, totals.estimated_calls) == (1, 1, 1)
    assert totals.cost_usd == answer.cost() + cut_cost
    assert totals.retry_waste_tokens == cut["gen_ai.usage.input_tokens"] + cut["gen_ai.usage.output_tokens"]
    assert totals.retry_waste_cost_usd == cut_cost
    return cut


@pytest.mark.parametrize("mode", ["stream", "async stream"])
def test_a_router_fallback_mid_stream_is_an_attempt_of_one_call(mode: str, cap: Capture) -> None:
    """Router "gpt" whose OpenAI stream is cut by an error event after its first chunk, before any
    content: litellm falls back to "claude" while the application reads the stream, and that
    request is the second attempt of the one call, whose cost is what both were billed."""
    with Server(cut_first=1) as server, tokentrace.task("mid-stream") as task:
        router = _router(server, streamed=True)
        received = _read(mode, router, {"model": "gpt", "messages": MESSAGES, "stream": True})
    spans = cap.call_spans()
    (answer,) = server.served
    note("litellm", "Router fallback mid-stream (openai/ cut before content, to anthropic/)", mode, TWO, 2, 1)
    assert [path for path, _ in server.requests] == ["/v1/chat/completions", "/v1/messages"]
    assert "".join(received) == "Hello there!"  # the cut stream's one chunk had no text
    (span,) = spans
    cut = _cut_then_answered(span, task, answer)
    assert cut["gen_ai.usage.output_tokens"] == 0


def test_a_router_continuing_a_stream_cut_after_content_is_one_call(cap: Capture) -> None:
    """Router(enable_mid_stream_fallback_continuation=True), async only in litellm: "gpt"'s OpenAI
    stream is cut after it sent text, and "claude" goes on from that text while the application
    reads; one call of two attempts, the cut one billed for the text it sent (counted offline)."""
    with Server(cut_first=1, cut_after=3) as server, tokentrace.task("continued") as task:
        router = _router(server, streamed=True, continuation=True)
        received = _read("async stream", router, {"model": "gpt", "messages": MESSAGES, "stream": True})
    (answer,) = server.served
    spans = cap.call_spans()
    text = "continued on the fallback from the text already sent"
    surface = "Router fallback mid-stream (openai/ cut after content, to anthropic/)"
    note("litellm", surface, "async stream", TWO, 2, len(spans), text)
    assert [path for path, _ in server.requests] == ["/v1/chat/completions", "/v1/messages"]
    assert "".join(received) == "Hello!Hello there!"  # the replay server answers the same text
    (span,) = spans
    cut = _cut_then_answered(span, task, answer)
    assert cut["gen_ai.usage.output_tokens"] == 2  # "Hello!", counted offline


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_router_retries_are_attempts_of_one_call(mode: str, cap: Capture) -> None:
    """Router(num_retries=1) retrying its one deployment after an HTTP 500: one call, two attempts."""
    with Server(fail_first=1) as server, tokentrace.task("router retry") as task:
        router = _router(server, fallback=False, retries=1)
        _run(mode, router.completion, router.acompletion, {"model": "gpt", "messages": MESSAGES})
    (span,) = cap.call_spans()
    (recording,) = server.served
    note("litellm", "Router num_retries=1, first request HTTP 500 (openai/)", mode, TWO, 2, 1)
    assert len(server.requests) == 2
    assert dict(span.attributes or {})["tokentrace.attempts"] == ("500", "200")
    assert (task.totals.llm_calls, task.totals.retries) == (1, 1)
    assert task.totals.cost_usd == recording.cost()


def test_a_router_that_fails_every_attempt_is_one_failed_call(cap: Capture) -> None:
    """Both deployments answer HTTP 500: litellm raises, and the one call span has the error, both
    attempts and no usage (nothing was billed)."""
    with Server(fail_first=2) as server, tokentrace.task("down") as task:
        router = _router(server)
        with pytest.raises(litellm.InternalServerError):
            router.completion(model="gpt", messages=MESSAGES)
    (span,) = cap.call_spans()
    attrs = dict(span.attributes or {})
    assert len(server.requests) == 2
    assert attrs["tokentrace.attempts"] == ("500", "500")
    assert attrs["error.type"] == "InternalServerError"
    assert attrs["tokentrace.cost.status"] == "no_usage"
    assert "gen_ai.usage.input_tokens" not in attrs
    assert (task.totals.llm_calls, task.totals.retries, task.totals.cost_usd) == (1, 1, Decimal(0))


# --- budgets ------------------------------------------------------------------------------------


def _loop(call: Any, kwargs: dict[str, Any], mode: str) -> list[BaseException]:
    """Three calls in a row; what the first failing one raised."""
    raised: list[BaseException] = []
    for _ in range(3):
        try:
            if mode == "sync":
                call[0](**kwargs)
            else:
                asyncio.run(call[1](**kwargs))
        except Exception as exc:  # the test reports what the user sees
            raised.append(exc)
            break
    return raised


@pytest.mark.parametrize("provider", ["openai", "anthropic", "router"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_budget_stops_the_second_call_with_budget_exceeded(provider: str, mode: str, cap: Capture) -> None:
    """Budget(max_llm_calls=1) around a litellm loop: the first call goes out, the second is stopped
    before litellm builds a request (the server sees one request, and nothing is retried), and the
    application gets tokentrace.BudgetExceeded itself, not wrapped by litellm."""
    budget = tokentrace.Budget(max_llm_calls=1)
    with Server() as server, tokentrace.task("loop", budget=budget) as task:
        if provider == "router":
            router = _router(server, fallback=False)
            kwargs = {"model": "gpt", "messages": MESSAGES}
            raised = _loop((router.completion, router.acompletion), kwargs, mode)
        else:
            kwargs = {"model": CHAT_MODEL[provider], "messages": MESSAGES, **_target(provider, server.url)}
            raised = _loop((litellm.completion, litellm.acompletion), kwargs, mode)
    spans = cap.call_spans()
    blocked = [s for s in spans if (s.attributes or {}).get("tokentrace.budget.blocked")]
    kind = f"{type(raised[0]).__module__}.{type(raised[0]).__qualname__}" if raised else "nothing"
    where = "Router" if provider == "router" else f"{provider}/"
    seen = len(server.requests)
    outcome = "stopped" if seen == 1 else "not stopped"
    text = f"the second call raises `{kind}`"
    surface = f"Budget(max_llm_calls=1) loop ({where})"
    note("litellm", surface, mode, outcome, seen, len(spans) - len(blocked), text)
    assert len(server.requests) == 1
    assert [type(exc) for exc in raised] == [tokentrace.BudgetExceeded]
    assert raised[0].__cause__ is None
    assert task.totals.llm_calls == 1
    assert len(spans) == 2
    (stopped,) = blocked
    assert dict(stopped.attributes or {})["error.type"] == "BudgetExceeded"


def _budget_stop(error: BaseException | None) -> tokentrace.BudgetExceeded | None:
    """docs/guards.md's helper: the BudgetExceeded behind a library's error, if any."""
    seen = 0
    while error is not None and seen < 20:
        if isinstance(error, tokentrace.BudgetExceeded):
            return error
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_unwrapped_litellm_function_is_still_stopped_before_sending(provider: str, cap: Capture) -> None:
    """A litellm function tokentrace does not wrap (imported before instrument()) is stopped where
    its request leaves the HTTP client: nothing more is sent, and litellm's own error has the
    BudgetExceeded in its chain of causes, as docs/guards.md says."""
    tokentrace.uninstrument("litellm")
    with Server() as server, tokentrace.task("loop", budget=tokentrace.Budget(max_llm_calls=1)) as task:
        kwargs = {"model": CHAT_MODEL[provider], "messages": MESSAGES, **_target(provider, server.url)}
        raised = _loop((litellm.completion, litellm.acompletion), kwargs, "sync")
    assert len(server.requests) == 1
    assert isinstance(raised[0], litellm.InternalServerError)
    assert isinstance(_budget_stop(raised[0]), tokentrace.BudgetExceeded)
    assert task.totals.llm_calls == 1


def test_a_budget_callback_can_switch_the_model_litellm_calls(cap: Capture) -> None:
    """An on_exceed callback that returns other arguments changes what litellm is called with: the
    call goes ahead to the model the callback chose."""

    def cheaper(breach: tokentrace.BudgetBreach) -> dict[str, Any]:
        return {"model": CHAT_MODEL["anthropic"], **_target("anthropic", server.url)}

    budget = tokentrace.Budget(max_llm_calls=0, on_exceed=cheaper)
    with Server() as server, tokentrace.task("switched", budget=budget) as task:
        litellm.completion(model=CHAT_MODEL["openai"], messages=MESSAGES, **_target("openai", server.url))
    (span,) = cap.call_spans()
    assert [path for path, _ in server.requests] == ["/v1/messages"]
    assert dict(span.attributes or {})["gen_ai.request.model"] == rec.MESSAGES.model
    assert task.totals.cost_usd == rec.MESSAGES.cost()


# --- calls without a request tokentrace reads -------------------------------------------------


def test_a_mocked_response_is_one_unpriced_call_that_says_why(cap: Capture) -> None:
    """completion(mock_response=...) sends nothing: one call, unpriced, with the reason (never a
    silent $0)."""
    with tokentrace.task("mocked") as task:
        litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, mock_response="Hi!")
    (span,) = cap.call_spans()
    attrs = dict(span.attributes or {})
    assert attrs["tokentrace.cost.status"] == "unpriced"
    assert attrs["tokentrace.usage.problem"] == _relay.NO_REQUEST
    assert (task.totals.llm_calls, task.totals.unpriced_calls) == (1, 1)


def test_a_call_litellm_refuses_before_sending_is_not_an_llm_call(cap: Capture) -> None:
    """A call litellm refuses before any request (an unknown provider) raises litellm's error and
    counts no LLM call; its span has the error."""
    with tokentrace.task("refused") as task, pytest.raises(litellm.BadRequestError):
        litellm.completion(model="no-such-provider/some-model", messages=MESSAGES)
    (span,) = cap.call_spans()
    assert dict(span.attributes or {})["error.type"] == "BadRequestError"
    assert task.totals.llm_calls == 0


# --- the integration's contract -----------------------------------------------------------------


def test_instrument_is_idempotent_and_uninstrument_is_exact() -> None:
    """litellm's functions and the Router core's methods are wrapped once and restored exactly."""
    targets = [(m.module, m.qualname) for m in LiteLLMIntegration.methods]
    tokentrace.uninstrument()
    originals = {t: wrapt.resolve_path(*t)[2] for t in targets}
    assert tokentrace.instrument("litellm") == ["litellm"]
    wrapped = {t: wrapt.resolve_path(*t)[2] for t in targets}
    assert all(isinstance(v, wrapt.FunctionWrapper) for v in wrapped.values())
    assert len(wrapped) == 15  # 8 functions, 7 Router methods (its sync responses is served by name)
    assert tokentrace.instrument("litellm") == []
    tokentrace.uninstrument("litellm")
    assert all(wrapt.resolve_path(*t)[2] is original for t, original in originals.items())


# tokentrace's own steps a LiteLLM call goes through, by their stable names (FAULT_POINTS).
HOOKS = [
    "call.begin",
    "relay.attempt",
    "relay.attempt_settled",
    "relay.returned",
    "relay.ended",
    "relay.account",
    "call.account",
    "stream.wrap",
]


def _calls(server_fail: int) -> dict[str, Any]:
    """What a plain call, a stream, a retried call and a failing Router call give the application."""
    out: dict[str, Any] = {}
    with Server() as server:
        kwargs = {"model": CHAT_MODEL["anthropic"], "messages": MESSAGES, **_target("anthropic", server.url)}
        response = litellm.completion(**kwargs)
        out["plain"] = (response.choices[0].message.content, response.usage.prompt_tokens)
        stream = litellm.completion(**{**kwargs, "model": STREAM_MODEL["anthropic"]}, stream=True)
        out["stream"] = [chunk.choices[0].delta.content for chunk in stream]
    with Server(fail_first=1) as server:
        kwargs = {"model": CHAT_MODEL["openai"], "messages": MESSAGES, **_target("openai", server.url)}
        response = asyncio.run(litellm.acompletion(**kwargs, num_retries=1))
        out["retried"] = response.choices[0].message.content
    with Server(fail_first=server_fail) as server:
        try:
            _router(server).completion(model="gpt", messages=MESSAGES)
        except litellm.InternalServerError as exc:
            out["error"] = (type(exc), exc.status_code)
    return out


@pytest.mark.usefixtures("lenient")
@pytest.mark.parametrize("point", HOOKS)
def test_a_failing_relay_step_never_changes_what_litellm_returns(
    point: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With any step of a relayed call raising, litellm returns and raises exactly what it does
    uninstrumented; the fault is logged, and no call context leaks."""
    tokentrace.uninstrument()
    try:
        baseline = _calls(2)
    finally:
        tokentrace.instrument()
    gc.collect()
    with (
        caplog.at_level(logging.WARNING, logger="tokentrace"),
        tokentrace.task("faults"),
        inject_fault(point),
    ):
        assert _calls(2) == baseline
    assert any("injected fault" in r.getMessage() for r in caplog.records), "the fault was never reached"
    assert _engine.active_call() is None
