"""tokentrace.task: decorator and context-manager forms, nesting, attribution and roll-up."""

from __future__ import annotations

import asyncio
import inspect
from decimal import Decimal
from typing import Any

import pytest

import tokentrace
from tests.support.cassettes import Replay
from tests.support.clients import openai_client, recorded, request_kwargs
from tokentrace.exceptions import ConfigurationError
from tokentrace.testing import Capture

CALL = "dd-trace-py/tests/contrib/litellm/cassettes/completion_reasoning.yaml"  # $0.0001452 a call
ONE = Decimal("0.0001452")
STREAM = "dd-trace-py/tests/contrib/litellm/cassettes/completion_stream.yaml"  # 13 in, 20 out, $0.0000365


def _client(calls: int = 1, use_async: bool = False) -> Any:
    (interaction,) = recorded(CALL)
    return openai_client(Replay([interaction] * calls), use_async=use_async), request_kwargs(
        interaction, "openai"
    )


def test_nested_tasks_roll_up_inclusively(cap: Capture) -> None:
    """A parent's totals include its nested tasks' calls; each child reports its own."""
    client, kwargs = _client(3)
    with tokentrace.task("parent") as parent:
        client.chat.completions.create(**kwargs)
        with tokentrace.task("child") as child:
            client.chat.completions.create(**kwargs)
            with tokentrace.task("grandchild") as grandchild:
                client.chat.completions.create(**kwargs)
    assert (parent.totals.llm_calls, child.totals.llm_calls, grandchild.totals.llm_calls) == (3, 2, 1)
    assert parent.totals.cost_usd == 3 * ONE
    assert child.totals.cost_usd == 2 * ONE
    spans = {s.name: dict(s.attributes or {}) for s in cap.task_spans()}
    assert spans["parent"]["tokentrace.task.llm_calls"] == 3
    assert spans["child"]["tokentrace.task.parent_id"] == parent.id
    assert spans["grandchild"]["tokentrace.task.root_id"] == parent.id
    assert spans["parent"]["tokentrace.task.cost.usd"] == float(3 * ONE)
    call_task_ids = [dict(s.attributes or {}).get("tokentrace.task.id") for s in cap.call_spans()]
    assert call_task_ids == [parent.id, child.id, grandchild.id]
    # Every call span carries its tree's root, so a backend can sum the tree (across services too).
    assert [dict(s.attributes or {})["tokentrace.task.root_id"] for s in cap.call_spans()] == [parent.id] * 3


def test_totals_are_readable_while_the_task_is_open() -> None:
    """Task.totals is a running total while open and frozen once ended."""
    client, kwargs = _client(2)
    with tokentrace.task("running") as task:
        client.chat.completions.create(**kwargs)
        first = task.totals
        assert task.is_open
        client.chat.completions.create(**kwargs)
    assert first.llm_calls == 1
    assert task.totals.llm_calls == 2
    assert not task.is_open
    with pytest.raises(AttributeError):
        first.llm_calls = 5  # type: ignore[misc]


def test_a_call_that_ends_after_its_task_leaves_the_tasks_totals_as_they_ended(cap: Capture) -> None:
    """A stream returned from a task and read after it ended is left out of that task's totals
    (they stay what its span says) and counted by an enclosing task still open."""
    (interaction,) = recorded(STREAM)
    client = openai_client(Replay([interaction]))
    with tokentrace.task("answer") as answer:
        with tokentrace.task("draft") as draft:
            stream = client.chat.completions.create(**request_kwargs(interaction, "openai"))
        at_end = draft.totals
        assert len(list(stream)) > 1
    assert draft.totals == at_end
    assert (draft.totals.llm_calls, draft.totals.cost_usd) == (0, Decimal(0))
    assert (answer.totals.llm_calls, answer.totals.cost_usd) == (1, Decimal("0.0000365"))
    spans = {s.name: dict(s.attributes or {}) for s in cap.task_spans()}
    assert (spans["draft"]["tokentrace.task.llm_calls"], spans["answer"]["tokentrace.task.llm_calls"]) == (
        0,
        1,
    )
    (call,) = cap.call_spans()
    assert dict(call.attributes or {})["tokentrace.task.id"] == draft.id


def test_totals_have_exactly_the_contract_fields() -> None:
    """Totals carries exactly the documented fields (core, waste, cost split) and the per-model breakdown."""
    assert list(tokentrace.Totals.__dataclass_fields__) == [
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "cost_usd",
        "llm_calls",
        "retries",
        "unpriced_calls",
        "estimated_calls",
        "duplicate_calls",
        "duplicate_cost_usd",
        "retry_waste_tokens",
        "retry_waste_cost_usd",
        "cost_breakdown",
        "by_model",
    ]


def test_per_model_breakdown() -> None:
    """by_model holds one ModelTotals per response model."""
    client, kwargs = _client(2)
    with tokentrace.task("models") as task:
        client.chat.completions.create(**kwargs)
        client.chat.completions.create(**kwargs)
    (model,) = task.totals.by_model.values()
    assert (model.model, model.provider, model.llm_calls, model.cost_usd) == (
        "o3-mini-2025-01-31",
        "openai",
        2,
        2 * ONE,
    )


def test_bare_decorator_uses_the_qualified_name(cap: Capture) -> None:
    """@tokentrace.task with no arguments names the task after the function."""

    @tokentrace.task
    def summarise(x: int) -> int:
        assert tokentrace.current_task() is not None
        return x * 2

    assert summarise(21) == 42
    assert cap.task_spans()[0].name == "test_bare_decorator_uses_the_qualified_name.<locals>.summarise"


def test_decorator_keeps_signature_and_async_nature() -> None:
    """The decorated function keeps its name, signature and coroutine-ness."""

    async def raw(ticket: str, *, urgent: bool = False) -> str:
        return ticket

    handler = tokentrace.task("named", feature="f")(raw)
    assert handler.__name__ == "raw"
    assert inspect.signature(handler) == inspect.signature(raw)
    assert list(inspect.signature(handler).parameters) == ["ticket", "urgent"]
    assert inspect.iscoroutinefunction(handler)
    assert asyncio.run(handler("T-1")) == "T-1"


def test_async_function_task_attributes_spawned_asyncio_tasks() -> None:
    """Calls made in asyncio tasks spawned inside a task roll up into it."""

    @tokentrace.task("agent")
    async def agent() -> tokentrace.Totals:
        client, kwargs = _client(5, use_async=True)
        await asyncio.gather(*(client.chat.completions.create(**kwargs) for _ in range(5)))
        task = tokentrace.current_task()
        assert task is not None
        return task.totals

    totals = asyncio.run(agent())
    assert totals.llm_calls == 5
    assert totals.cost_usd == 5 * ONE


def test_generator_task_is_current_only_while_it_runs() -> None:
    """A generator's task is current inside its steps, never in the caller between them."""
    seen: list[str | None] = []

    @tokentrace.task("producer")
    def produce() -> Any:
        for i in range(3):
            task = tokentrace.current_task()
            seen.append(task.name if task else None)
            received = yield i
            assert received == f"ack{i}" or received is None

    gen = produce()
    assert next(gen) == 0
    assert tokentrace.current_task() is None
    assert gen.send("ack0") == 1
    assert list(gen) == [2]
    assert seen == ["producer"] * 3


def test_generator_exception_is_thrown_in_and_task_fails(cap: Capture) -> None:
    """throw() reaches the generator, and an escaping exception marks the task failed."""

    @tokentrace.task("gen")
    def gen() -> Any:
        yield 1
        yield 2

    g = gen()
    next(g)
    with pytest.raises(KeyError):
        g.throw(KeyError("x"))
    (span,) = cap.task_spans("gen")
    assert span.attributes is not None
    assert span.attributes["tokentrace.task.outcome"] == "failure"


def test_async_generator_task(cap: Capture) -> None:
    """An async generator's calls roll into its task and the caller's context stays clean."""

    @tokentrace.task("stream-items")
    async def items() -> Any:
        client, kwargs = _client(2, use_async=True)
        for _ in range(2):
            await client.chat.completions.create(**kwargs)
            yield tokentrace.current_task()

    async def consume() -> list[Any]:
        out = []
        async for task in items():
            assert tokentrace.current_task() is None
            out.append(task)
        return out

    tasks = asyncio.run(consume())
    assert tasks[0] is tasks[1]
    assert tasks[0].totals.llm_calls == 2
    assert len(cap.task_spans("stream-items")) == 1


def test_body_exception_is_reraised_unchanged_and_marks_failure(cap: Capture) -> None:
    """The user's exception object passes through untouched; the task's outcome is failure."""
    boom = ValueError("boom")

    @tokentrace.task("fails")
    def fails() -> None:
        raise boom

    with pytest.raises(ValueError, match="boom") as info:
        fails()
    assert info.value is boom
    (span,) = cap.task_spans("fails")
    assert span.attributes is not None
    assert span.attributes["tokentrace.task.outcome"] == "failure"
    assert span.attributes["error.type"] == "ValueError"
    assert span.status.status_code.name == "ERROR"


def test_dimensions_are_inherited_and_overridable(cap: Capture) -> None:
    """Nested tasks inherit user, feature and tenant unless they set their own; call spans carry them."""
    client, kwargs = _client(1)
    with (
        tokentrace.task("outer", user_id="u1", feature="support", tenant="acme"),
        tokentrace.task("inner", feature="triage") as inner,
    ):
        client.chat.completions.create(**kwargs)
    assert (inner.user_id, inner.feature, inner.tenant) == ("u1", "triage", "acme")
    (call,) = cap.call_spans()
    attrs = dict(call.attributes or {})
    assert attrs["tokentrace.user_id"] == "u1"
    assert attrs["tokentrace.feature"] == "triage"
    assert attrs["tokentrace.tenant"] == "acme"
    assert attrs["tokentrace.task.name"] == "inner"


def test_custom_attributes_go_on_the_task_span(cap: Capture) -> None:
    """attributes= values appear on the task span with their types."""
    with tokentrace.task("attrs", attributes={"ticket.priority": 2, "ticket.tags": ["a", "b"]}):
        pass
    (span,) = cap.task_spans("attrs")
    assert span.attributes is not None
    assert span.attributes["ticket.priority"] == 2
    assert span.attributes["ticket.tags"] == ("a", "b")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "non-empty string"),
        ({"name": "x", "attributes": {"k": {"nested": 1}}}, "OpenTelemetry attribute value"),
        ({"name": "x", "attributes": {"": 1}}, "non-empty strings"),
        ({"name": "x", "user_id": 42}, "user_id must be a string"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs: dict[str, Any], message: str) -> None:
    """Invalid task arguments raise ConfigurationError naming the problem."""
    name = kwargs.pop("name")
    with pytest.raises(ConfigurationError, match=message):
        tokentrace.task(name, **kwargs)


def test_context_manager_needs_a_name() -> None:
    """An unnamed task used with 'with' says how to name it."""
    with pytest.raises(ConfigurationError, match="needs a name"), tokentrace.task():
        pass


def test_current_task_is_the_innermost() -> None:
    """current_task() returns the innermost open task, then None outside."""
    assert tokentrace.current_task() is None
    with tokentrace.task("a") as a:
        with tokentrace.task("b") as b:
            assert tokentrace.current_task() is b
        assert tokentrace.current_task() is a
    assert tokentrace.current_task() is None


def test_calls_outside_any_task_still_get_a_span(cap: Capture) -> None:
    """A call with no open task is recorded on its span without task attributes."""
    client, kwargs = _client(1)
    client.chat.completions.create(**kwargs)
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert attrs["tokentrace.cost.usd"] == float(ONE)
    assert "tokentrace.task.name" not in attrs


def test_task_spans_follow_the_genai_agent_conventions(cap: Capture) -> None:
    """kind="agent" records invoke_agent with gen_ai.agent.name; the default records invoke_workflow
    with gen_ai.workflow.name; neither carries gen_ai.usage.*, and calls stay call spans."""
    client, kwargs = _client(2)
    with tokentrace.task("triage", kind="agent"):
        client.chat.completions.create(**kwargs)
        with tokentrace.task("lookup"):
            client.chat.completions.create(**kwargs)
    tasks = {s.name: dict(s.attributes or {}) for s in cap.task_spans()}
    assert {n: {k: v for k, v in a.items() if k.startswith("gen_ai.")} for n, a in tasks.items()} == {
        "triage": {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage"},
        "lookup": {"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": "lookup"},
    }
    assert tasks["triage"]["tokentrace.task.cost.usd"] == float(2 * ONE)
    calls = cap.call_spans()
    assert [dict(s.attributes or {})["gen_ai.operation.name"] for s in calls] == ["chat", "chat"]
    assert all("gen_ai.agent.name" not in (s.attributes or {}) for s in calls)


def test_a_conversation_id_lands_on_the_task_its_nested_tasks_and_their_calls(cap: Capture) -> None:
    """conversation_id= sets gen_ai.conversation.id on the task span and on every call span made
    inside it, nested tasks included; a task without one sets none."""
    client, kwargs = _client(3)
    with tokentrace.task("chat_turn", kind="agent", conversation_id="conv-7"):
        client.chat.completions.create(**kwargs)
        with tokentrace.task("tool"):
            client.chat.completions.create(**kwargs)
    with tokentrace.task("batch"):
        client.chat.completions.create(**kwargs)
    conversation = {s.name: (s.attributes or {}).get("gen_ai.conversation.id") for s in cap.task_spans()}
    assert conversation == {"tool": "conv-7", "chat_turn": "conv-7", "batch": None}
    calls = [(s.attributes or {}).get("gen_ai.conversation.id") for s in cap.call_spans()]
    assert calls == ["conv-7", "conv-7", None]


@pytest.mark.parametrize("kind", ["Agent", "chain", "", None, 1])
def test_a_bad_task_kind_names_the_choices(kind: Any) -> None:
    """A kind other than "agent" or "workflow" is a ConfigurationError that lists both."""
    with pytest.raises(ConfigurationError, match="'agent' or 'workflow'"):
        tokentrace.task("t", kind=kind)


def test_a_conversation_id_must_be_a_string() -> None:
    """A conversation id that is not a string is refused, as the other dimensions are."""
    with pytest.raises(ConfigurationError, match="conversation_id"):
        tokentrace.task("t", conversation_id=7)  # type: ignore[arg-type]
