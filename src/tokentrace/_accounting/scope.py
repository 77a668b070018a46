"""``tokentrace.task(...)``: the decorator and context manager that open tasks."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

from typing_extensions import ParamSpec

from tokentrace._accounting.task import (
    _CURRENT,
    KINDS,
    WORKFLOW,
    Task,
    activate,
    close_task,
    deactivate,
    open_task,
)
from tokentrace.exceptions import ConfigurationError
from tokentrace.types import Budget

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

_SCALARS = (str, bool, int, float)


def _check_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    if attributes is None:
        return {}
    if not isinstance(attributes, Mapping):
        raise ConfigurationError(
            f"task attributes must be a mapping of str to str/bool/int/float, got {attributes!r}"
        )
    checked: dict[str, Any] = {}
    for key, value in attributes.items():
        if not isinstance(key, str) or not key:
            raise ConfigurationError(f"task attribute names must be non-empty strings, got {key!r}")
        ok = isinstance(value, _SCALARS) or (
            isinstance(value, Sequence)
            and not isinstance(value, (str, bytes))
            and all(isinstance(v, _SCALARS) for v in value)
        )
        if not ok:
            raise ConfigurationError(
                f"task attribute {key!r} must be a str, bool, int, float or a sequence of them "
                f"(an OpenTelemetry attribute value), got {type(value).__name__}"
            )
        checked[key] = tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else value
    return checked


def _check_dimension(name: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ConfigurationError(f"task {name} must be a string or None, got {type(value).__name__}")


class TaskScope:
    """What ``tokentrace.task(...)`` returns: a decorator and a (sync or async) context manager."""

    __slots__ = (
        "_attributes",
        "_budget",
        "_conversation_id",
        "_feature",
        "_kind",
        "_name",
        "_tenant",
        "_user_id",
    )

    def __init__(
        self,
        name: str | None,
        user_id: str | None,
        feature: str | None,
        tenant: str | None,
        attributes: Mapping[str, Any] | None,
        budget: Budget | None = None,
        kind: str = WORKFLOW,
        conversation_id: str | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ConfigurationError(f"task kind must be 'agent' or 'workflow', got {kind!r}")
        self._kind = kind
        if budget is not None and not isinstance(budget, Budget):
            raise ConfigurationError(
                f"budget must be a tokentrace.Budget(max_cost_usd=..., max_tokens=..., max_llm_calls=...), "
                f"got {budget!r}"
            )
        self._budget = budget
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ConfigurationError(f"a task name must be a non-empty string, got {name!r}")
        self._name = name
        self._user_id = _check_dimension("user_id", user_id)
        self._feature = _check_dimension("feature", feature)
        self._tenant = _check_dimension("tenant", tenant)
        self._conversation_id = _check_dimension("conversation_id", conversation_id)
        self._attributes = _check_attributes(attributes)

    def _open(self, default_name: str | None = None) -> Task:
        name = self._name or default_name
        if name is None:
            raise ConfigurationError(
                'a task used as a context manager needs a name: with tokentrace.task("summarise"): ...'
            )
        return open_task(
            name,
            self._user_id,
            self._feature,
            self._tenant,
            self._attributes,
            self._budget,
            self._kind,
            self._conversation_id,
        )

    # --- context manager ----------------------------------------------------------------------
    def __enter__(self) -> Task:
        task = self._open()
        task._activation = activate(task)
        return task

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task = _CURRENT.get()
        if task is None:
            return
        tokens, task._activation = task._activation, None
        if tokens is not None:
            deactivate(tokens)
        close_task(task, exc)

    async def __aenter__(self) -> Task:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # --- decorator ----------------------------------------------------------------------------
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        if not callable(fn):
            raise ConfigurationError(f"tokentrace.task(...) decorates a function, got {fn!r}")
        name = self._name or getattr(fn, "__qualname__", None) or repr(fn)
        scope = self
        wrapper: Callable[..., Any]

        if inspect.isasyncgenfunction(fn):

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return _drive_async(fn(*args, **kwargs), scope, name)

        elif inspect.isgeneratorfunction(fn):

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return _drive_sync(fn(*args, **kwargs), scope, name)

        elif inspect.iscoroutinefunction(fn):

            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                with _Run(scope, name):
                    return await fn(*args, **kwargs)

        else:

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with _Run(scope, name):
                    return fn(*args, **kwargs)

        return functools.wraps(fn)(wrapper)


class _Run:
    """One run of a decorated function (sync or async): its task opened, and current while the
    function runs; closed with the function's error, if any, which goes on unchanged."""

    __slots__ = ("task", "tokens")

    def __init__(self, scope: TaskScope, name: str) -> None:
        self.task = scope._open(name)

    def __enter__(self) -> Task:
        self.tokens = activate(self.task)
        return self.task

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        deactivate(self.tokens)
        close_task(self.task, exc)


def _drive_sync(gen: Generator[Any, Any, Any], scope: TaskScope, name: str) -> Generator[Any, Any, Any]:
    """Run ``gen`` step by step with its task current during each step only."""
    task = scope._open(name)
    to_send: Any = None
    to_throw: BaseException | None = None
    try:
        while True:
            tokens = activate(task)
            try:
                item = gen.throw(to_throw) if to_throw is not None else gen.send(to_send)
            except StopIteration as stop:
                return stop.value
            finally:
                deactivate(tokens)
            to_throw = None
            try:
                to_send = yield item
            except GeneratorExit:
                gen.close()
                raise
            except BaseException as exc:  # noqa: BLE001  # not swallowed: thrown into the generator
                to_throw = exc
    except GeneratorExit:
        close_task(task, None)
        raise
    except BaseException as exc:
        close_task(task, exc)
        raise
    finally:
        close_task(task, None)


async def _drive_async(
    agen: AsyncGenerator[Any, Any], scope: TaskScope, name: str
) -> AsyncGenerator[Any, Any]:
    """Run ``agen`` step by step with its task current during each step only."""
    task = scope._open(name)
    to_send: Any = None
    to_throw: BaseException | None = None
    try:
        while True:
            tokens = activate(task)
            try:
                item = await (agen.athrow(to_throw) if to_throw is not None else agen.asend(to_send))
            except StopAsyncIteration:
                return
            finally:
                deactivate(tokens)
            to_throw = None
            try:
                to_send = yield item
            except GeneratorExit:
                await agen.aclose()
                raise
            except BaseException as exc:  # noqa: BLE001  # not swallowed: thrown into the generator
                to_throw = exc
    except GeneratorExit:
        close_task(task, None)
        raise
    except BaseException as exc:
        close_task(task, exc)
        raise
    finally:
        close_task(task, None)


@overload
def task(name: F, /) -> F: ...


@overload
def task(
    name: str | None = None,
    /,
    *,
    user_id: str | None = None,
    feature: str | None = None,
    tenant: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    budget: Budget | None = None,
    kind: Literal["agent", "workflow"] = "workflow",
    conversation_id: str | None = None,
) -> TaskScope: ...


def task(
    name: str | Callable[..., Any] | None = None,
    /,
    *,
    user_id: str | None = None,
    feature: str | None = None,
    tenant: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    budget: Budget | None = None,
    kind: Literal["agent", "workflow"] = "workflow",
    conversation_id: str | None = None,
) -> Any:
    """Open a task around a function (decorator) or a block (``with`` / ``async with``).

    ``@tokentrace.task`` bare names the task after the function's qualified name. The
    dimensions ``user_id``, ``feature`` and ``tenant`` are inherited by nested tasks that do
    not set their own. ``budget`` limits what the task may spend (see ``tokentrace.Budget``);
    without one, a budget configured for the task's name applies, and enclosing tasks' budgets
    always do.

    ``kind`` says what the task is to backends that read the GenAI agent conventions: ``"agent"``
    (an agent run: ``gen_ai.operation.name`` ``invoke_agent``, ``gen_ai.agent.name``) or
    ``"workflow"`` (the default: ``invoke_workflow``, ``gen_ai.workflow.name``).
    ``conversation_id`` puts ``gen_ai.conversation.id`` on the task's span and on the spans of
    every call made in it; nested tasks inherit it.
    """
    if callable(name):
        return TaskScope(None, None, None, None, None)(name)
    return TaskScope(name, user_id, feature, tenant, attributes, budget, kind, conversation_id)
