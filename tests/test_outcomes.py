"""Outcomes and units of work: set_outcome, automatic failure, add_units, spans and metrics."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import tokentrace
from tests.support.cassettes import Replay
from tests.support.clients import openai_client, recorded, request_kwargs
from tokentrace.exceptions import ConfigurationError
from tokentrace.testing import Capture

REASONING = "dd-trace-py/tests/contrib/litellm/cassettes/completion_reasoning.yaml"  # $0.0001452 a call


def _attrs(cap: Capture, name: str) -> dict[str, Any]:
    (span,) = cap.task_spans(name)
    return dict(span.attributes or {})


def test_outcome_defaults_to_success_and_failure_when_the_body_raises(cap: Capture) -> None:
    """A task that returns is a success; one whose body raises is a failure."""
    with tokentrace.task("fine") as fine:
        pass
    with pytest.raises(KeyError), tokentrace.task("broken") as broken:
        raise KeyError("x")
    assert (fine.outcome, broken.outcome) == ("success", "failure")
    assert _attrs(cap, "fine")["tokentrace.task.outcome"] == "success"
    assert _attrs(cap, "broken")["tokentrace.task.outcome"] == "failure"


def test_set_outcome_names_a_custom_outcome_and_survives_an_exception(cap: Capture) -> None:
    """An explicit outcome is kept, even when the body raises afterwards."""
    with tokentrace.task("ticket") as ticket:
        ticket.set_outcome("escalated")
    opened: list[tokentrace.Task] = []

    def rescue() -> None:
        with tokentrace.task("rescued") as rescued:
            opened.append(rescued)
            rescued.set_outcome("success")
            raise RuntimeError("cleanup failed")

    with pytest.raises(RuntimeError):
        rescue()
    assert (ticket.outcome, opened[0].outcome) == ("escalated", "success")
    assert _attrs(cap, "ticket")["tokentrace.task.outcome"] == "escalated"
    assert _attrs(cap, "rescued")["tokentrace.task.outcome"] == "success"


def test_units_roll_up_and_land_on_spans(cap: Capture) -> None:
    """add_units counts per unit name; enclosing tasks include their nested tasks' units."""
    with tokentrace.task("batch") as batch:
        for _ in range(3):
            with tokentrace.task("summarise") as doc:
                doc.add_units(1, unit="document")
        batch.add_units(2.5, unit="page_hours")
    assert batch.units == {"document": 3, "page_hours": 2.5}
    assert doc.units == {"document": 1}
    attrs = _attrs(cap, "batch")
    assert attrs["tokentrace.task.units.document"] == 3
    assert attrs["tokentrace.task.units.page_hours"] == 2.5


def test_outcome_and_units_reach_the_metrics(cap: Capture) -> None:
    """tokentrace.task.cost carries the outcome; tokentrace.task.units counts units per outcome."""
    (interaction,) = recorded(REASONING)
    client = openai_client(Replay([interaction] * 2))
    kwargs = request_kwargs(interaction, "openai")
    for outcome in ("success", "failure"):
        with tokentrace.task("resolve", feature="support") as task:
            client.chat.completions.create(**kwargs)
            task.add_units(1, unit="ticket")
            task.set_outcome(outcome)
    costs = {
        p.attributes["tokentrace.task.outcome"]: (p.count, p.sum)
        for p in cap.metric_points("tokentrace.task.cost")
    }
    assert costs == {"success": (1, 0.0001452), "failure": (1, 0.0001452)}
    units = {
        (
            p.attributes["tokentrace.task.outcome"],
            p.attributes["tokentrace.unit"],
            p.attributes["tokentrace.feature"],
        ): p.value
        for p in cap.metric_points("tokentrace.task.units")
    }
    assert units == {("success", "ticket", "support"): 1, ("failure", "ticket", "support"): 1}
    assert task.totals.cost_usd == Decimal("0.0001452")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.set_outcome(""), "non-empty string"),
        (lambda t: t.set_outcome(1), "non-empty string"),
        (lambda t: t.add_units(-1), "non-negative"),
        (lambda t: t.add_units(True), "non-negative"),
        (lambda t: t.add_units(float("inf")), "non-negative"),
        (lambda t: t.add_units(1, unit="two words"), "unit name"),
        (lambda t: t.add_units(1, unit=""), "unit name"),
    ],
)
def test_bad_outcomes_and_units_are_refused(call: Any, message: str) -> None:
    """set_outcome and add_units validate their arguments with a clear error."""
    with tokentrace.task("strict") as task, pytest.raises(ConfigurationError, match=message):
        call(task)


def test_an_ended_task_refuses_outcomes_and_units() -> None:
    """After the task ended its span is gone: set_outcome and add_units say so."""
    with tokentrace.task("over") as task:
        pass
    with pytest.raises(ConfigurationError, match="has ended"):
        task.set_outcome("success")
    with pytest.raises(ConfigurationError, match="has ended"):
        task.add_units(1)
