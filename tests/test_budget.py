"""Budgets: calls stopped before they are sent, nested limits, races, warn and callback modes."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

import tokentrace
from tests.support.cassettes import Interaction, Replay
from tests.support.clients import Repeat, anthropic_client, openai_client, recorded, request_kwargs
from tokentrace.exceptions import ConfigurationError
from tokentrace.testing import Capture

# claude-3-opus at $15 / $75 per million: 22 input + 15 output tokens = $0.001455 a call.
OPUS = "dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion.yaml"
CALL_COST = Decimal("0.001455")
CALL_TOKENS = 37
# Offline estimate before sending: 17 input tokens (o200k family) + the request's max_tokens=15.
EST_TOKENS = 32
EST_COST = Decimal("0.001380")  # 17 * $15 + 15 * $75 per million


class Counting(Repeat):
    """Serves one recorded response to every request and keeps each request that arrived."""

    def handler(self, request: Any) -> Any:
        with self._lock:
            self.sent.append(request)
        return super().handler(request)

    def __init__(self, interaction: Interaction) -> None:
        super().__init__(interaction)
        self._lock = threading.Lock()


def _opus() -> tuple[Interaction, dict[str, Any]]:
    (interaction,) = recorded(OPUS)
    return interaction, request_kwargs(interaction, "anthropic")


def _stopped(body: Callable[[], object]) -> tokentrace.BudgetExceeded:
    """Run ``body`` and return the BudgetExceeded it must raise."""
    with pytest.raises(tokentrace.BudgetExceeded) as info:
        body()
    return info.value


def _runaway(
    budget: tokentrace.Budget, steps: int = 10
) -> tuple[Counting, tokentrace.Task, list[BaseException]]:
    """An agent loop that keeps calling the model until something stops it."""
    interaction, kwargs = _opus()
    replay = Counting(interaction)
    client = anthropic_client(replay)
    opened: list[tokentrace.Task] = []

    def loop() -> None:
        with tokentrace.task("agent", budget=budget) as task:
            opened.append(task)
            for _ in range(steps):
                client.messages.create(**kwargs)

    error = _stopped(loop)
    return replay, opened[0], [error]


def test_estimate_of_the_recorded_request() -> None:
    """The offline estimate of the recorded request: 17 input tokens, 15 capped output, $0.00138."""
    from tokentrace._core import requests as _requests

    _, kwargs = _opus()
    assert _requests.estimate(kwargs["model"], "anthropic", None, kwargs) == tokentrace.types.CallEstimate(
        input_tokens=17, output_tokens=15, output_capped=True, cost_usd=EST_COST
    )


def test_max_llm_calls_stops_the_loop_before_the_fourth_request(cap: Capture) -> None:
    """max_llm_calls=3 raises on the 4th call, before any HTTP request for it leaves."""
    replay, task, (error,) = _runaway(tokentrace.Budget(max_llm_calls=3))
    assert len(replay.sent) == 3
    assert isinstance(error, tokentrace.BudgetExceeded)
    breach = error.breach
    assert (breach.limit, breach.limit_value, breach.spent, breach.projected) == ("max_llm_calls", 3, 3, 4)
    assert breach.task is task
    assert error.totals.llm_calls == 3
    assert error.totals.cost_usd == 3 * CALL_COST
    assert task.totals.llm_calls == 3
    assert task.outcome == "failure"
    assert "request was not sent" in str(error)
    spans = cap.call_spans()
    assert len(spans) == 4
    blocked = dict(spans[-1].attributes or {})
    assert blocked["tokentrace.budget.blocked"] is True
    assert blocked["tokentrace.budget.limit"] == "max_llm_calls"
    assert blocked["error.type"] == "BudgetExceeded"
    assert "gen_ai.usage.input_tokens" not in blocked
    (task_span,) = cap.task_spans("agent")
    attrs = dict(task_span.attributes or {})
    assert attrs["tokentrace.task.budget_exceeded"] is False
    assert attrs["tokentrace.task.budget.blocked_calls"] == 1
    assert attrs["tokentrace.task.budget.max_llm_calls"] == 3
    assert attrs["tokentrace.task.llm_calls"] == 3
    assert attrs["tokentrace.task.outcome"] == "failure"
    (event,) = [e for e in task_span.events if e.name == "tokentrace.budget.blocked"]
    assert dict(event.attributes or {})["tokentrace.budget.spent"] == 3


def test_max_tokens_stops_the_call_whose_estimate_would_cross_it() -> None:
    """max_tokens=100: after 2 calls (74 tokens) the 3rd's estimate (32) would reach 106: stopped."""
    replay, task, (error,) = _runaway(tokentrace.Budget(max_tokens=100))
    assert len(replay.sent) == 2
    breach = error.breach  # type: ignore[attr-defined]
    assert (breach.limit, breach.spent, breach.projected) == (
        "max_tokens",
        2 * CALL_TOKENS,
        2 * CALL_TOKENS + EST_TOKENS,
    )
    assert breach.estimate.input_tokens == 17
    assert task.totals.input_tokens + task.totals.output_tokens == 74


def test_max_cost_usd_stops_the_call_whose_estimate_would_cross_it() -> None:
    """max_cost_usd=$0.004: $0.00291 spent after 2 calls, +$0.00138 estimated is $0.00429: stopped."""
    replay, task, (error,) = _runaway(tokentrace.Budget(max_cost_usd="0.004"))
    assert len(replay.sent) == 2
    breach = error.breach  # type: ignore[attr-defined]
    assert (breach.limit, breach.limit_value) == ("max_cost_usd", Decimal("0.004"))
    assert breach.spent == 2 * CALL_COST
    assert breach.projected == 2 * CALL_COST + EST_COST
    assert task.totals.cost_usd == Decimal("0.00291")


def test_a_call_that_overshoots_its_estimate_marks_the_task(
    cap: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    """At $0.0043 the 3rd call fits its estimate ($0.00429) but really costs more: budget_exceeded."""
    with caplog.at_level(logging.WARNING, logger="tokentrace"):
        replay, task, _ = _runaway(tokentrace.Budget(max_cost_usd=Decimal("0.0043")))
    assert len(replay.sent) == 3
    assert task.totals.cost_usd == Decimal("0.004365")
    (task_span,) = cap.task_spans("agent")
    attrs = dict(task_span.attributes or {})
    assert attrs["tokentrace.task.budget_exceeded"] is True
    assert attrs["tokentrace.task.budget.max_cost.usd"] == 0.0043
    (event,) = [e for e in task_span.events if e.name == "tokentrace.budget.exceeded"]
    assert dict(event.attributes or {}) == {
        "tokentrace.budget.limit": "max_cost_usd",
        "tokentrace.budget.limit_value": 0.0043,
        "tokentrace.budget.spent": 0.004365,
    }
    assert "went over max_cost_usd=0.0043" in caplog.text


def test_nested_task_cannot_spend_more_than_its_parent_has_left() -> None:
    """A child with 5 calls of its own, under a parent with 3 of which 1 is spent, gets 2."""
    interaction, kwargs = _opus()
    replay = Counting(interaction)
    client = anthropic_client(replay)
    made: list[tokentrace.Task] = []

    def child_loop() -> None:
        with tokentrace.task("child", budget=tokentrace.Budget(max_llm_calls=5)) as child:
            for _ in range(5):
                client.messages.create(**kwargs)
                made.append(child)

    with tokentrace.task("parent", budget=tokentrace.Budget(max_llm_calls=3)) as parent:
        client.messages.create(**kwargs)
        error = _stopped(child_loop)
    assert len(made) == 2
    assert len(replay.sent) == 3
    assert error.breach.task is parent
    assert (made[0].totals.llm_calls, parent.totals.llm_calls) == (2, 3)


def test_a_nested_task_without_a_budget_is_bound_by_its_parents() -> None:
    """Calls in a nested task without its own budget count against the enclosing task's."""
    interaction, kwargs = _opus()
    replay = Counting(interaction)
    client = anthropic_client(replay)

    def loop() -> None:
        with tokentrace.task("outer", budget=tokentrace.Budget(max_llm_calls=2)):
            for _ in range(3):
                with tokentrace.task("step"):
                    client.messages.create(**kwargs)

    assert _stopped(loop).breach.task.name == "outer"
    assert len(replay.sent) == 2


def test_threads_racing_for_the_last_calls_never_exceed_the_cap() -> None:
    """16 threads x 10 calls against max_llm_calls=50: exactly 50 requests leave, 110 are stopped."""
    interaction, kwargs = _opus()
    replay = Counting(interaction)
    lock = threading.Lock()
    client = anthropic_client(replay)
    outcomes: list[str] = []

    def worker() -> None:
        for _ in range(10):
            try:
                client.messages.create(**kwargs)
                outcome = "ok"
            except tokentrace.BudgetExceeded:
                outcome = "stopped"
            with lock:
                outcomes.append(outcome)

    with (
        tokentrace.task("swarm", budget=tokentrace.Budget(max_llm_calls=50)) as task,
        ThreadPoolExecutor(16) as pool,
    ):
        for future in [pool.submit(worker) for _ in range(16)]:
            future.result()
    assert (outcomes.count("ok"), outcomes.count("stopped")) == (50, 110)
    assert len(replay.sent) == 50
    assert task.totals.llm_calls == 50
    assert task.totals.cost_usd == 50 * CALL_COST


def test_threads_racing_for_money_stay_under_a_cost_cap_that_estimates_cover() -> None:
    """With max_tokens=100 the estimate ($0.007755) covers each real call ($0.001455): never over $0.05."""
    interaction, kwargs = _opus()
    kwargs = {**kwargs, "max_tokens": 100}
    client = anthropic_client(Counting(interaction))
    cap = Decimal("0.05")

    def worker() -> None:
        for _ in range(20):
            try:
                client.messages.create(**kwargs)
            except tokentrace.BudgetExceeded:
                return

    with (
        tokentrace.task("swarm", budget=tokentrace.Budget(max_cost_usd=cap)) as task,
        ThreadPoolExecutor(8) as pool,
    ):
        for future in [pool.submit(worker) for _ in range(8)]:
            future.result()
    assert task.totals.cost_usd <= cap
    # Sequentially 33 calls fit ($0.048015 spent + $0.007755 > $0.05 on the 34th); racing never lets more in.
    assert 7 <= task.totals.llm_calls <= 33
    assert task.totals.cost_usd == task.totals.llm_calls * CALL_COST


def test_async_calls_are_stopped_too() -> None:
    """An async client inside an async task is stopped before the request like a sync one."""
    interaction, kwargs = _opus()
    replay = Counting(interaction)

    async def run() -> int:
        client = anthropic_client(replay, use_async=True)
        made = 0
        async with tokentrace.task("aagent", budget=tokentrace.Budget(max_llm_calls=2)):
            try:
                for _ in range(5):
                    await client.messages.create(**kwargs)
                    made += 1
            except tokentrace.BudgetExceeded:
                pass
        return made

    assert asyncio.run(run()) == 2
    assert len(replay.sent) == 2


def test_streamed_calls_are_charged_when_the_stream_ends() -> None:
    """A stream reserves its estimate when opened and is charged its real use when consumed."""
    (interaction,) = recorded(
        "dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion_stream.yaml"
    )
    kwargs = request_kwargs(interaction, "anthropic")
    replay = Counting(interaction)
    client = anthropic_client(replay)
    with tokentrace.task("streamer", budget=tokentrace.Budget(max_llm_calls=1)) as task:
        for _ in client.messages.create(**kwargs):
            pass
        with pytest.raises(tokentrace.BudgetExceeded):
            client.messages.create(**kwargs)
    assert len(replay.sent) == 1
    assert (task.totals.input_tokens, task.totals.output_tokens) == (27, 15)


def test_warn_mode_lets_calls_through_and_records_why(cap: Capture, caplog: pytest.LogCaptureFixture) -> None:
    """on_exceed="warn": every call is sent, each one past the limit logs a warning and an event."""
    interaction, kwargs = _opus()
    replay = Counting(interaction)
    client = anthropic_client(replay)
    budget = tokentrace.Budget(max_llm_calls=2, on_exceed="warn")
    with (
        caplog.at_level(logging.WARNING, logger="tokentrace"),
        tokentrace.task("lenient", budget=budget) as task,
    ):
        for _ in range(4):
            client.messages.create(**kwargs)
    assert len(replay.sent) == 4
    assert task.totals.llm_calls == 4
    (task_span,) = cap.task_spans("lenient")
    warnings = [e for e in task_span.events if e.name == "tokentrace.budget.warning"]
    assert len(warnings) == 2
    assert dict(warnings[0].attributes or {})["tokentrace.budget.action"] == "warn"
    assert dict(task_span.attributes or {})["tokentrace.task.budget_exceeded"] is True
    assert caplog.text.count("the call goes ahead (warn)") == 2


def test_a_callback_can_switch_to_a_cheaper_model() -> None:
    """A callback returning {"model": ...} sends the call with that model instead."""
    interaction, kwargs = _opus()
    replay = Counting(interaction)
    client = anthropic_client(replay)
    seen: list[tokentrace.BudgetBreach] = []

    def downgrade(breach: tokentrace.BudgetBreach) -> dict[str, str]:
        seen.append(breach)
        return {"model": "claude-3-haiku-20240307"}

    with tokentrace.task("thrifty", budget=tokentrace.Budget(max_cost_usd="0.003", on_exceed=downgrade)):
        for _ in range(3):
            client.messages.create(**kwargs)
    models = [json.loads(r.content)["model"] for r in replay.sent]
    assert models == ["claude-3-opus-20240229", "claude-3-opus-20240229", "claude-3-haiku-20240307"]
    assert kwargs["model"] == "claude-3-opus-20240229"  # the caller's arguments are untouched
    assert seen[0].request_kwargs["model"] == "claude-3-opus-20240229"
    assert seen[0].limit == "max_cost_usd"


def test_a_callback_that_raises_stops_the_call_with_its_own_error() -> None:
    """A callback's exception reaches the caller unchanged and no request leaves."""
    interaction, kwargs = _opus()
    replay = Counting(interaction)
    client = anthropic_client(replay)

    class Escalate(Exception):
        pass

    def refuse(breach: tokentrace.BudgetBreach) -> None:
        raise Escalate(breach.limit)

    with tokentrace.task("strict", budget=tokentrace.Budget(max_llm_calls=1, on_exceed=refuse)):
        client.messages.create(**kwargs)
        with pytest.raises(Escalate, match="max_llm_calls"):
            client.messages.create(**kwargs)
    assert len(replay.sent) == 1


def test_budgets_configured_by_task_name() -> None:
    """configure(budgets={name: Budget}) applies to tasks of that name opened without budget=."""
    interaction, kwargs = _opus()
    replay = Counting(interaction)
    client = anthropic_client(replay)
    tokentrace.configure(budgets={"capped": tokentrace.Budget(max_llm_calls=1)})
    try:
        with tokentrace.task("capped") as task:
            client.messages.create(**kwargs)
            _stopped(lambda: client.messages.create(**kwargs))
        assert task.budget == tokentrace.Budget(max_llm_calls=1)
        with tokentrace.task("other"):
            client.messages.create(**kwargs)
            client.messages.create(**kwargs)
    finally:
        tokentrace.configure(budgets={})
    assert len(replay.sent) == 3


def test_unpriced_models_are_not_stopped_by_a_cost_limit(caplog: pytest.LogCaptureFixture) -> None:
    """A model with no price cannot be held to max_cost_usd: the call goes, its tokens still count."""
    interaction, kwargs = _opus()
    replay = Counting(interaction)
    client = anthropic_client(replay)
    with tokentrace.task("mystery", budget=tokentrace.Budget(max_cost_usd="0.0000001")) as task:
        client.messages.create(**{**kwargs, "model": "claude-unknown-x"})
    # The recorded response names claude-3-opus, which is priced: the charge after the call is real.
    assert len(replay.sent) == 1
    assert task.totals.cost_usd == CALL_COST


def test_calls_outside_any_budget_are_not_estimated(cap: Capture) -> None:
    """Without a budget, call spans carry no estimate attributes (no tokenizer runs)."""
    interaction, kwargs = _opus()
    client = anthropic_client(Replay([interaction]))
    with tokentrace.task("free"):
        client.messages.create(**kwargs)
    (span,) = cap.call_spans()
    assert not any(k.startswith("tokentrace.budget.") for k in (span.attributes or {}))


def test_estimate_attributes_are_on_budgeted_call_spans(cap: Capture) -> None:
    """A budgeted call span carries its pre-call estimate, flagged by name as an estimate."""
    interaction, kwargs = _opus()
    client = anthropic_client(Replay([interaction]))
    with tokentrace.task("budgeted", budget=tokentrace.Budget(max_tokens=1000)):
        client.messages.create(**kwargs)
    (span,) = cap.call_spans()
    attrs = dict(span.attributes or {})
    assert attrs["tokentrace.budget.estimate.input_tokens"] == 17
    assert attrs["tokentrace.budget.estimate.output_tokens"] == 15
    assert attrs["tokentrace.budget.estimate.cost.usd"] == 0.00138


def test_openai_requests_are_estimated_with_their_tokenizer() -> None:
    """An OpenAI chat request is counted with o200k and the documented framing: 13 estimated, 12 billed."""
    (interaction,) = recorded("dd-trace-py/tests/contrib/litellm/cassettes/completion_reasoning.yaml")
    replay = Counting(interaction)
    client = openai_client(replay)
    kwargs = request_kwargs(interaction, "openai")
    with tokentrace.task("o3", budget=tokentrace.Budget(max_tokens=1000)) as task:
        client.chat.completions.create(**kwargs)
    from tokentrace._core import requests as _requests

    assert _requests.input_tokens("o3-mini", kwargs) == 13
    assert task.totals.input_tokens == 12


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "at least one of"),
        ({"max_llm_calls": -1}, "max_llm_calls must be a non-negative int"),
        ({"max_tokens": 1.5}, "max_tokens must be a non-negative int"),
        ({"max_llm_calls": True}, "max_llm_calls must be a non-negative int"),
        ({"max_cost_usd": "ten"}, "max_cost_usd must be a number"),
        ({"max_cost_usd": float("nan")}, "finite, non-negative"),
        ({"max_cost_usd": -1}, "finite, non-negative"),
        ({"max_llm_calls": 1, "on_exceed": "explode"}, "on_exceed must be"),
    ],
)
def test_bad_budgets_are_refused_with_a_clear_error(kwargs: dict[str, Any], message: str) -> None:
    """Budget() validates its limits and mode when it is built."""
    with pytest.raises(ConfigurationError, match=message):
        tokentrace.Budget(**kwargs)


def test_budget_normalises_money_exactly() -> None:
    """max_cost_usd given as a float, str or int becomes the exact Decimal the user wrote."""
    assert tokentrace.Budget(max_cost_usd=0.1).max_cost_usd == Decimal("0.1")
    assert tokentrace.Budget(max_cost_usd="2.50").max_cost_usd == Decimal("2.50")
    assert tokentrace.Budget(max_cost_usd=3).max_cost_usd == Decimal(3)


def test_task_and_configure_refuse_things_that_are_not_budgets() -> None:
    """budget= and configure(budgets=) take Budget objects only."""
    with pytest.raises(ConfigurationError, match=r"must be a tokentrace\.Budget"):
        tokentrace.task("x", budget={"max_llm_calls": 1})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"budgets\['x'\] must be a tokentrace\.Budget"):
        tokentrace.configure(budgets={"x": 3})  # type: ignore[dict-item]
