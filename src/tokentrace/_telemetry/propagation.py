"""Attribution across processes: a task's dimensions travel in OpenTelemetry baggage.

While a task is current, its context carries baggage entries (``tokentrace.task.id``,
``tokentrace.task.name``, ``tokentrace.task.root_id``, ``tokentrace.task.root_name``,
``tokentrace.feature``; with ``propagate="all"`` also ``tokentrace.user_id`` and
``tokentrace.tenant``). Any W3C propagator (OpenTelemetry's default: trace context and
baggage) sends them with outgoing requests. In the process that receives them, once the
application (or its HTTP server instrumentation) has made the extracted context current:

- a task opened there with no local parent is a child of the remote task: same root id and
  root name, its ``parent_id`` the remote task's id, and the feature, user and tenant the remote
  task had unless given;
- an LLM call made there outside any task is attributed to the remote task on its span.

Only ids and names travel by default: baggage goes out with every request an HTTP
instrumentation touches, the LLM providers' included, so user and tenant ids need the opt-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import baggage
from opentelemetry.context import Context

from tokentrace._foundation import semconv as sc
from tokentrace._telemetry import providers as _telemetry

if TYPE_CHECKING:
    from tokentrace._accounting.task import Task

TASKS = "tasks"
ALL = "all"
NONE = "none"
MODES = (TASKS, ALL, NONE)
# The baggage keys are the span attribute names.
_KEYS = (sc.TASK_ID, sc.TASK_NAME, sc.TASK_ROOT_ID, sc.TASK_ROOT_NAME, sc.FEATURE, sc.USER_ID, sc.TENANT)
_PRIVATE = (sc.USER_ID, sc.TENANT)


@dataclass(frozen=True, slots=True)
class Upstream:
    """The task of another process that this context continues."""

    task_id: str
    task_name: str | None
    root_id: str
    root_name: str | None
    feature: str | None
    user_id: str | None
    tenant: str | None


def entries(task: Task) -> dict[str, str]:
    """The baggage a task puts in its context (empty when propagation is off)."""
    mode = _telemetry.state.settings.propagate
    if mode == NONE:
        return {}
    values = {
        sc.TASK_ID: task.id,
        sc.TASK_NAME: task.name,
        sc.TASK_ROOT_ID: task.root_id,
        sc.TASK_ROOT_NAME: task.root_name,
        sc.FEATURE: task.feature,
    }
    if mode == ALL:
        values[sc.USER_ID] = task.user_id
        values[sc.TENANT] = task.tenant
    return {k: v for k, v in values.items() if v is not None}


def with_entries(task: Task, context: Context) -> Context:
    for key, value in entries(task).items():
        context = baggage.set_baggage(key, value, context)
    if _telemetry.state.settings.propagate != ALL:
        # Never pass on an upstream user or tenant that this process was not asked to propagate.
        for key in _PRIVATE:
            if baggage.get_baggage(key, context) is not None:
                context = baggage.remove_baggage(key, context)
    return context


def upstream(context: Context | None = None) -> Upstream | None:
    """The remote task the current context continues, if its baggage names one."""
    if _telemetry.state.settings.propagate == NONE:
        return None
    found = baggage.get_all(context)
    if not found:
        return None
    task_id = _text(found.get(sc.TASK_ID))
    if task_id is None:
        return None
    return Upstream(
        task_id=task_id,
        task_name=_text(found.get(sc.TASK_NAME)),
        root_id=_text(found.get(sc.TASK_ROOT_ID)) or task_id,
        root_name=_text(found.get(sc.TASK_ROOT_NAME)),
        feature=_text(found.get(sc.FEATURE)),
        user_id=_text(found.get(sc.USER_ID)),
        tenant=_text(found.get(sc.TENANT)),
    )


def call_dimensions() -> dict[str, Any]:
    """Attribution for a call made outside any local task, from the upstream task (if any)."""
    up = upstream()
    if up is None:
        return {}
    dims: dict[str, Any] = {sc.TASK_ID: up.task_id, sc.TASK_ROOT_ID: up.root_id}
    optional = (
        (sc.TASK_NAME, up.task_name),
        (sc.TASK_ROOT_NAME, up.root_name),
        (sc.FEATURE, up.feature),
        (sc.USER_ID, up.user_id),
        (sc.TENANT, up.tenant),
    )
    dims.update((k, v) for k, v in optional if v is not None)
    return dims


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
