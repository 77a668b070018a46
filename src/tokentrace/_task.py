"""Tasks: the unit that tokentrace attributes cost to.

A task is opened by ``tokentrace.task(...)`` as a decorator or a context manager. While it is
the current task (a ``ContextVar``, so asyncio tasks inherit it and threads get it through the
threading integration) every LLM call is added to it and to each enclosing task.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode

from tokentrace import _semconv as sc
from tokentrace import _telemetry
from tokentrace._safety import guarded
from tokentrace._tally import CallRecord, Tally
from tokentrace.types import Totals

_CURRENT: ContextVar[Task | None] = ContextVar("tokentrace.task", default=None)

Activation = tuple[Token["Task | None"], object]

SUCCESS = "success"
FAILURE = "failure"


class Task:
    """A handle on one run of a task: its identity, attribution and running totals."""

    __slots__ = (
        "_activation",
        "_closed",
        "_dims",
        "_outcome",
        "_span",
        "_start_ns",
        "_tally",
        "attributes",
        "feature",
        "id",
        "name",
        "parent",
        "root_id",
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
    ) -> None:
        self.name = name
        self.id = f"{random.getrandbits(64):016x}"
        self.parent = parent
        self.root_id: str = parent.root_id if parent is not None else self.id
        if parent is not None:
            user_id = parent.user_id if user_id is None else user_id
            feature = parent.feature if feature is None else feature
            tenant = parent.tenant if tenant is None else tenant
        self.user_id: str | None = user_id
        self.feature: str | None = feature
        self.tenant: str | None = tenant
        self.attributes = attributes
        self._dims: dict[str, Any] | None = None
        self._tally = Tally()
        self._span: Span = INVALID_SPAN
        self._closed = False
        self._outcome: str | None = None
        self._activation: Activation | None = None
        self._start_ns = time.perf_counter_ns()

    @property
    def totals(self) -> Totals:
        """A frozen snapshot of the totals so far (final once the task has ended)."""
        return self._tally.snapshot()

    @property
    def is_open(self) -> bool:
        """Whether the task is still running."""
        return not self._closed

    @property
    def outcome(self) -> str | None:
        """``success`` or ``failure`` once the task ended (``failure`` when its body raised)."""
        return self._outcome

    def __repr__(self) -> str:
        return f"<Task {self.name!r} id={self.id} open={not self._closed}>"

    def _record(self, rec: CallRecord) -> None:
        task: Task | None = self
        while task is not None:
            task._tally.add(rec)
            task = task.parent

    def _dimensions(self) -> dict[str, Any]:
        """The attribution attributes every span under this task carries (built once, read-only)."""
        dims = self._dims
        if dims is None:
            dims = self._dims = self._build_dimensions()
        return dims

    def _build_dimensions(self) -> dict[str, Any]:
        # The root is on the task's own span; a call reaches it through its task id.
        attrs: dict[str, Any] = {sc.TASK_NAME: self.name, sc.TASK_ID: self.id}
        if self.user_id is not None:
            attrs[sc.USER_ID] = self.user_id
        if self.feature is not None:
            attrs[sc.FEATURE] = self.feature
        if self.tenant is not None:
            attrs[sc.TENANT] = self.tenant
        return attrs


def current_task() -> Task | None:
    """The innermost open task in this context, or ``None``."""
    return _CURRENT.get()


def activate(task: Task) -> Activation:
    """Make ``task`` (and its span) current in this context."""
    return _CURRENT.set(task), otel_context.attach(trace.set_span_in_context(task._span))


def deactivate(tokens: Activation) -> None:
    """Undo ``activate`` (in the same context)."""
    task_token, ctx_token = tokens
    otel_context.detach(ctx_token)  # type: ignore[arg-type]  # the token attach() returned
    _CURRENT.reset(task_token)


def _start_span(task: Task) -> Span:
    attrs = dict(task._dimensions())
    attrs[sc.TASK_ROOT_ID] = task.root_id
    root = task
    while root.parent is not None:
        root = root.parent
    attrs[sc.TASK_ROOT_NAME] = root.name
    if task.parent is not None:
        attrs[sc.TASK_PARENT_ID] = task.parent.id
    attrs.update(task.attributes)
    return _telemetry.tracer().start_span(task.name, kind=SpanKind.INTERNAL, attributes=attrs)


def open_task(
    name: str,
    user_id: str | None,
    feature: str | None,
    tenant: str | None,
    attributes: Mapping[str, Any],
) -> Task:
    """Create a task under the current one and start its span (not yet current)."""
    task = Task(name, _CURRENT.get(), user_id, feature, tenant, attributes)
    task._span = guarded("task.start_span", _start_span, INVALID_SPAN, task)
    return task


def close_task(task: Task, error: BaseException | None) -> None:
    """End ``task``: freeze its outcome, put its roll-up on its span, record its cost metric."""
    if task._closed:
        return
    task._closed = True
    task._outcome = FAILURE if error is not None else SUCCESS
    guarded("task.end_span", _end_span, None, task, error)


def _end_span(task: Task, error: BaseException | None) -> None:
    totals = task.totals
    span = task._span
    if span.is_recording():
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
                sc.TASK_OUTCOME: task._outcome or SUCCESS,
                sc.TASK_MODELS: sorted(totals.by_model),
            }
        )
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
            span.set_attribute(sc.ERROR_TYPE, type(error).__qualname__)
    span.end()
    metric_attrs: dict[str, Any] = {sc.TASK_NAME: task.name, sc.TASK_OUTCOME: task._outcome or SUCCESS}
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
