"""One LLM call in flight: the object the engine, the stream proxies and budgets share."""

from __future__ import annotations

import time
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span

from tokentrace._core.integration import AttemptHook, Method, ProviderIntegration, Request
from tokentrace.types import Budget, BudgetBreach, CallEstimate

if TYPE_CHECKING:
    from tokentrace._accounting.budget import Reservation
    from tokentrace._accounting.limits import Hold
    from tokentrace._accounting.task import Task
    from tokentrace._core.attempts import Attempt
    from tokentrace._core.relay import Relayed


class Call:
    """One logical LLM call in flight."""

    __slots__ = (
        "ask_usage",
        "attempt_of",
        "attempts",
        "breach",
        "budget",
        "context_tokens",
        "done",
        "estimate",
        "integration",
        "limit_hold",
        "method",
        "provider",
        "relay",
        "request",
        "reservation",
        "span",
        "start_ns",
        "task",
    )

    def __init__(
        self, integration: ProviderIntegration, method: Method, request: Request, task: Task | None
    ) -> None:
        self.integration = integration
        self.method = method
        self.request = request
        self.provider = request.provider or integration.provider
        self.task = task
        self.attempts: list[str | tuple[AttemptHook, Any] | Attempt] = []
        """Each attempt's error type name, or the hook that noted it and the SDK's result (see
        ``_attempts.outcome``), or the outcome an SDK's own hook reported (``settle_attempt``);
        for a relayed call, once it is accounted, its requests seen on the wire."""
        self.relay: Relayed | None = None
        """For a call made through a library that sends its own requests (``RelayIntegration``):
        the requests seen on the wire beneath it, its attempts."""
        self.attempt_of: Attempt | None = None
        """For one such request: the attempt it is, which its relayed call accounts for."""
        self.done = False
        self.context_tokens: tuple[Token[Call | None], object] | None = None
        """What to reset when the call leaves its context: the active call and the OTel context."""
        self.span: Span = trace.INVALID_SPAN
        self.estimate: CallEstimate | None = None
        self.reservation: Reservation | None = None
        self.breach: BudgetBreach | None = None
        self.budget: Budget | None = None
        self.limit_hold: Hold | None = None
        """What the call reserved on the counters of limits across replicas, until it is settled."""
        self.ask_usage: dict[str, Any] | None = None
        """What tokentrace adds to a streamed request's arguments so that the stream reports its
        usage (``configure(request_stream_usage=True)``); the stream then hides the extra chunk."""
        self.start_ns = time.perf_counter_ns()


_ACTIVE_CALL: ContextVar[Call | None] = ContextVar("tokentrace.call", default=None)


def active_call() -> Call | None:
    """The LLM call being made in this context, if any (for attempt hooks and layered SDKs). A
    relayed call whose answer is in is not (see ``in_flight``)."""
    return in_flight(_ACTIVE_CALL.get())


def in_flight(call: Call | None) -> Call | None:
    """``call`` (the context's), unless it is a relayed call that takes no more requests: work a
    library starts while its stream is read (a success callback, a cache storing the answer, in
    tasks and threads that inherit the context) makes calls of its own once the answer is in."""
    if call is not None and call.relay is not None and not call.relay.takes_requests():
        return None
    return call


def settle_attempt(outcome: str) -> None:
    """Name the outcome of the attempt in flight, for an SDK that reports it after the attempt
    was noted (through its own retry or response hooks)."""
    call = _ACTIVE_CALL.get()
    if call is not None and call.attempts:
        call.attempts[-1] = outcome


def leave(call: Call) -> None:
    tokens, call.context_tokens = call.context_tokens, None
    if tokens is not None:
        otel_context.detach(tokens[1])  # type: ignore[arg-type]  # the token attach() returned
        _ACTIVE_CALL.reset(tokens[0])
