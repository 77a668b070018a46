"""Tasks: the unit that tokentrace attributes cost to.

A task is opened by ``tokentrace.task(...)`` as a decorator or a context manager. While it is
the current task (a ``ContextVar``, so asyncio tasks inherit it and threads get it through the
threading integration) every LLM call is added to it and to each enclosing task.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode

from tokentrace._accounting.budget import Guard
from tokentrace._accounting.tally import CallRecord, Tally
from tokentrace._foundation import semconv as sc
from tokentrace._foundation.safety import guarded, renew_after_fork
from tokentrace._telemetry import exception_events as _exception_events
from tokentrace._telemetry import propagation as _propagation
from tokentrace._telemetry import providers as _telemetry
from tokentrace.exceptions import ConfigurationError
from tokentrace.types import Budget, Totals

_CURRENT: ContextVar[Task | None] = ContextVar("tokentrace.task", default=None)

Activation = tuple[Token["Task | None"], object]

AGENT = "agent"
WORKFLOW = "workflow"
KINDS = (AGENT, WORKFLOW)
"""What ``task(kind=...)`` takes: an agent run or a workflow run, in the GenAI agent conventions."""

SUCCESS = "success"
FAILURE = "failure"
_UNITS_LOCK = threading.Lock()

renew_after_fork(globals(), "_UNITS_LOCK")


class Task:
    """A handle on one run of a task: its identity, attribution and running totals."""

    __slots__ = (
        "_activation",
        "_closed",
        "_dims",
        "_final",
        "_guard",
        "_guarded",
        "_outcome",
        "_outcome_set",
        "_span",
        "_start_ns",
        "_tally",
        "_units",
        "attributes",
        "budget",
        "conversation_id",
        "feature",
        "id",
        "kind",
        "name",
        "parent",
        "remote_parent_id",
        "root_id",
        "root_name",
        "tenant",
        "user_id",
    )

    def __init__(
        self,
        name: str,
        parent: Task | None,
        user_id: str | None,
        feature: str | None,
        tenant: str | None,
        attributes: Mapping[str, Any],
        budget: Budget | None = None,
        kind: str = WORKFLOW,
        conversation_id: str | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        """``"agent"`` or ``"workflow"``: the GenAI operation its span records."""
        self.id = f"{random.getrandbits(64):016x}"
        self.parent = parent
        self.remote_parent_id: str | None = None
        """The id of the task in another process that this one continues (see docs/backends.md)."""
        if parent is not None:
            self.root_id: str = parent.root_id
            self.root_name: str = parent.root_name
            user_id = parent.user_id if user_id is None else user_id
            feature = parent.feature if feature is None else feature
            tenant = parent.tenant if tenant is None else tenant
            conversation_id = parent.conversation_id if conversation_id is None else conversation_id
        else:
            self.root_id, self.root_name = self.id, name
            up = guarded("task.upstream", _propagation.upstream, None)
            if up is not None:
                self.root_id, self.root_name = up.root_id, up.root_name or name
                self.remote_parent_id = up.task_id
                user_id = up.user_id if user_id is None else user_id
                feature = up.feature if feature is None else feature
                tenant = up.tenant if tenant is None else tenant
        self.user_id: str | None = user_id
        self.feature: str | None = feature
        self.tenant: str | None = tenant
        self.conversation_id: str | None = conversation_id
        """The conversation (chat session, thread) this task belongs to, inherited by nested tasks."""
        self.attributes = attributes
        self._dims: dict[str, Any] | None = None
        self._tally = Tally()
        self._final: Totals | None = None
        self._span: Span = INVALID_SPAN
        self._closed = False
        self._outcome: str | None = None
        self._outcome_set = False
        self._units: dict[str, int | float] | None = None
        self.budget = budget
        """This task's own budget (enclosing tasks' budgets apply too)."""
        self._guard: Guard | None = Guard(budget) if budget is not None else None
        # Whether any budget applies to calls in this task (its own or an enclosing task's).
        self._guarded: bool = budget is not None or (parent is not None and parent._guarded)
        self._activation: Activation | None = None
        self._start_ns = time.perf_counter_ns()

    @property
    def totals(self) -> Totals:
        """A frozen snapshot of the totals so far; once the task has ended, its totals at the end
        (those on its span), which a call still running then (a stream read later) leaves unchanged."""
        final = self._final
        return final if final is not None else self._tally.snapshot()

    @property
    def is_open(self) -> bool:
        """Whether the task is still running."""
        return not self._closed

    @property
    def outcome(self) -> str | None:
        """The outcome set with ``set_outcome``, else ``success`` or ``failure`` once the task
        ended (``failure`` when its body raised), else ``None``."""
        return self._outcome

    @property
    def units(self) -> Mapping[str, int | float]:
        """Units of work added with ``add_units`` here and in nested tasks, per unit name."""
        with _UNITS_LOCK:
            return dict(self._units or {})

    def set_outcome(self, outcome: str) -> None:
        """Say how the task ended: ``"success"``, ``"failure"`` or a name of your own.

        An outcome set here is kept even when the task's body then raises.
        """
        if not isinstance(outcome, str) or not outcome.strip():
            raise ConfigurationError(f'an outcome is a non-empty string such as "success", got {outcome!r}')
        if self._closed:
            raise ConfigurationError(f"task {self.name!r} has ended: set its outcome before it ends")
        self._outcome = outcome
        self._outcome_set = True

    def add_units(self, n: int | float = 1, unit: str = "unit") -> None:
        """Count ``n`` units of work this task did (documents, tickets...), for cost per unit.

        Units roll up to enclosing tasks, as cost does.
        """
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n) or n < 0:
            raise ConfigurationError(f"add_units takes a finite, non-negative number, got {n!r}")
        if not isinstance(unit, str) or not unit.strip() or not unit.replace("_", "").isalnum():
            raise ConfigurationError(
                f"a unit name is a non-empty word of letters, digits and underscores, got {unit!r}"
            )
        if self._closed:
            raise ConfigurationError(f"task {self.name!r} has ended: add units before it ends")
        with _UNITS_LOCK:
            task: Task | None = self
            while task is not None:
                units = task._units
                if units is None:
                    units = task._units = {}
                units[unit] = units.get(unit, 0) + n
                task = task.parent

    def __repr__(self) -> str:
        return f"<Task {self.name!r} id={self.id} open={not self._closed}>"

    def _record(self, rec: CallRecord) -> bool:
        """Charge a call to this task and every enclosing one; whether it duplicates one here."""
        duplicate = self._tally.add(rec)
        task = self.parent
        while task is not None:
            task._tally.add(rec)
            task = task.parent
        return duplicate

    def _dimensions(self) -> dict[str, Any]:
        """The attribution attributes every span under this task carries (built once, read-only)."""
        dims = self._dims
        if dims is None:
            dims = self._dims = self._build_dimensions()
        return dims

    def _build_dimensions(self) -> dict[str, Any]:
        # Every call span carries the root task id, so a backend can sum a task tree's cost across
        # services (a task's calls in another process share the root id; see _propagation).
        attrs: dict[str, Any] = {sc.TASK_NAME: self.name, sc.TASK_ID: self.id, sc.TASK_ROOT_ID: self.root_id}
        if self.user_id is not None:
            attrs[sc.USER_ID] = self.user_id
        if self.feature is not None:
            attrs[sc.FEATURE] = self.feature
        if self.tenant is not None:
            attrs[sc.TENANT] = self.tenant
        if self.conversation_id is not None:
            attrs[sc.GEN_AI_CONVERSATION_ID] = self.conversation_id
        return attrs


def current_task() -> Task | None:
    """The innermost open task in this context, or ``None``."""
    return _CURRENT.get()


def activate(task: Task) -> Activation:
    """Make ``task`` (and its span) current in this context."""
    current = otel_context.get_current()
    context = guarded("task.baggage", _propagation.with_entries, current, task, current)
    return _CURRENT.set(task), otel_context.attach(trace.set_span_in_context(task._span, context))


def deactivate(tokens: Activation) -> None:
    """Undo ``activate`` (in the same context)."""
    task_token, ctx_token = tokens
    otel_context.detach(ctx_token)  # type: ignore[arg-type]  # the token attach() returned
    _CURRENT.reset(task_token)


def _start_span(task: Task) -> Span:
    attrs = dict(task._dimensions())
    # Backends that render agent and workflow runs (Phoenix, Langfuse, Datadog, Grafana) read the
    # GenAI agent conventions; the roll-up stays tokentrace.task.* (never gen_ai.usage.*).
    if task.kind == AGENT:
        attrs[sc.GEN_AI_AGENT_NAME] = task.name
    else:
        attrs[sc.GEN_AI_WORKFLOW_NAME] = task.name
    attrs[sc.TASK_ROOT_NAME] = task.root_name
    parent_id = task.parent.id if task.parent is not None else task.remote_parent_id
    if parent_id is not None:
        attrs[sc.TASK_PARENT_ID] = parent_id
    budget = task.budget
    if budget is not None:
        if budget.max_cost_usd is not None:
            attrs[sc.TASK_BUDGET_MAX_COST_USD] = float(budget.max_cost_usd)
        if budget.max_tokens is not None:
            attrs[sc.TASK_BUDGET_MAX_TOKENS] = budget.max_tokens
        if budget.max_llm_calls is not None:
            attrs[sc.TASK_BUDGET_MAX_LLM_CALLS] = budget.max_llm_calls
    attrs.update(task.attributes)
    # Set last: the ledger tells task spans from call spans by it.
    attrs[sc.GEN_AI_OPERATION_NAME] = (
        sc.OPERATION_INVOKE_AGENT if task.kind == AGENT else sc.OPERATION_INVOKE_WORKFLOW
    )
    return _telemetry.tracer().start_span(task.name, kind=SpanKind.INTERNAL, attributes=attrs)


def open_task(
    name: str,
    user_id: str | None,
    feature: str | None,
    tenant: str | None,
    attributes: Mapping[str, Any],
    budget: Budget | None = None,
    kind: str = WORKFLOW,
    conversation_id: str | None = None,
) -> Task:
    """Create a task under the current one and start its span (not yet current)."""
    if budget is None:
        budget = _telemetry.state.settings.budgets.get(name)
    task = Task(name, _CURRENT.get(), user_id, feature, tenant, attributes, budget, kind, conversation_id)
    task._span = guarded("task.start_span", _start_span, INVALID_SPAN, task)
    return task


def close_task(task: Task, error: BaseException | None) -> None:
    """End ``task``: freeze its outcome, put its roll-up on its span, record its cost metric."""
    if task._closed:
        return
    task._closed = True
    task._final = guarded("task.totals", task._tally.snapshot, None)
    if not task._outcome_set:
        task._outcome = FAILURE if error is not None else SUCCESS
    guarded("task.end_span", _end_span, None, task, error)


def _end_span(task: Task, error: BaseException | None) -> None:
    totals = task.totals
    span = task._span
    outcome = task._outcome or SUCCESS
    if span.is_recording():
        parts = totals.cost_breakdown
        extra: dict[str, Any] = {}
        if totals.cost_usd:
            extra = {
                sc.TASK_COST_INPUT_USD: float(parts.input_usd),
                sc.TASK_COST_CACHE_READ_USD: float(parts.cache_read_usd),
                sc.TASK_COST_CACHE_WRITE_USD: float(parts.cache_write_usd),
                sc.TASK_COST_OUTPUT_USD: float(parts.output_usd),
                sc.TASK_COST_OTHER_USD: float(parts.other_usd),
            }
        for unit, n in task.units.items():
            extra[sc.TASK_UNITS_PREFIX + unit] = n
        guard = task._guard
        if guard is not None:
            extra[sc.TASK_BUDGET_EXCEEDED] = guard.exceeded is not None
            extra[sc.TASK_BUDGET_BLOCKED_CALLS] = guard.blocked
        span.set_attributes(
            {
                sc.TASK_INPUT_TOKENS: totals.input_tokens,
                sc.TASK_OUTPUT_TOKENS: totals.output_tokens,
                sc.TASK_CACHE_READ_TOKENS: totals.cache_read_tokens,
                sc.TASK_CACHE_WRITE_TOKENS: totals.cache_write_tokens,
                sc.TASK_REASONING_TOKENS: totals.reasoning_tokens,
                sc.TASK_COST_USD: float(totals.cost_usd),
                **(
                    {sc.TASK_COST_USD_EXACT: str(totals.cost_usd)}
                    if len(totals.cost_usd.as_tuple().digits) > 15
                    else {}
                ),
                sc.TASK_LLM_CALLS: totals.llm_calls,
                sc.TASK_RETRIES: totals.retries,
                sc.TASK_UNPRICED_CALLS: totals.unpriced_calls,
                sc.TASK_ESTIMATED_CALLS: totals.estimated_calls,
                sc.TASK_DUPLICATE_CALLS: totals.duplicate_calls,
                sc.TASK_DUPLICATE_COST_USD: float(totals.duplicate_cost_usd),
                sc.TASK_RETRY_WASTE_TOKENS: totals.retry_waste_tokens,
                sc.TASK_RETRY_WASTE_COST_USD: float(totals.retry_waste_cost_usd),
                sc.TASK_OUTCOME: outcome,
                sc.TASK_MODELS: sorted(totals.by_model),
                **extra,
            }
        )
        if error is not None:
            _exception_events.record(span, error)
            span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
            span.set_attribute(sc.ERROR_TYPE, type(error).__qualname__)
    span.end()
    metric_attrs: dict[str, Any] = {sc.TASK_NAME: task.name, sc.TASK_OUTCOME: outcome}
    if task.feature is not None:
        metric_attrs[sc.FEATURE] = task.feature
    settings = _telemetry.state.settings
    if settings.metrics_include_user:
        if task.user_id is not None:
            metric_attrs[sc.USER_ID] = task.user_id
        if task.tenant is not None:
            metric_attrs[sc.TENANT] = task.tenant
    inst = _telemetry.instruments()
    if not inst.noop:
        inst.buffer.add(inst.task_cost.record, float(totals.cost_usd), metric_attrs)
        # Inclusive, like the task cost beside it: per task name, cost / units is cost per unit.
        for unit, n in task.units.items():
            inst.buffer.add(inst.task_units.add, n, {**metric_attrs, sc.UNIT: unit})
