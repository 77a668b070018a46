"""Carries the current task into worker processes: ``ProcessPoolExecutor`` and ``multiprocessing.Pool``.

A function submitted to a pool is wrapped in ``Carried``, which takes the submitter's
OpenTelemetry context along as a W3C carrier (trace context and baggage, see
``tokentrace._telemetry.propagation``). In the worker it restores that context around the function, so a
task opened there continues the submitter's task tree (same root id and root name, parent id
the submitter's task) and a call made there outside any task is attributed to the submitter's
task. ``Carried`` also makes sure the worker records at all:

- a worker started by ``spawn`` or ``forkserver`` has a fresh interpreter: the integrations the
  submitter had instrumented are instrumented there on the first call (``configure()`` defaults
  apply: the same ``OTEL_*`` and ``TOKENTRACE_*`` environment);
- pool workers end with ``os._exit``, which skips ``atexit``: a multiprocessing finalizer flushes
  the worker's spans when it exits.

The submitter's task totals do not include its workers' calls (another process): the ledger and
tracing backends sum the tree by its root id (see docs/backends.md).
"""

from __future__ import annotations

import os
from typing import Any

from tokentrace.integrations import Integration, Patch

_flush_registered_in: int | None = None


class Carried:
    """A picklable callable: ``fn`` run in the OpenTelemetry context described by ``carrier``."""

    __slots__ = ("carrier", "fn", "names")

    def __init__(self, fn: Any, carrier: dict[str, str], names: tuple[str, ...]) -> None:
        self.fn = fn
        self.carrier = carrier
        self.names = names

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from opentelemetry import context, propagate

        from tokentrace.integrations import guarded

        guarded("processes.worker", _prepare_worker, None, self.names)
        token = guarded("processes.attach", lambda: context.attach(propagate.extract(self.carrier)), None)
        try:
            return self.fn(*args, **kwargs)
        finally:
            if token is not None:
                context.detach(token)

    def __getstate__(self) -> tuple[Any, dict[str, str], tuple[str, ...]]:
        return self.fn, self.carrier, self.names

    def __setstate__(self, state: tuple[Any, dict[str, str], tuple[str, ...]]) -> None:
        self.fn, self.carrier, self.names = state


def _prepare_worker(names: tuple[str, ...]) -> None:
    global _flush_registered_in
    from tokentrace._core import registry as _registry

    missing = [name for name in names if name not in _registry.instrumented()]
    if missing:
        import tokentrace

        tokentrace.instrument(*missing)
    pid = os.getpid()
    if _flush_registered_in != pid:
        from multiprocessing import util

        util.Finalize(None, _flush, exitpriority=100)
        _flush_registered_in = pid


def _flush() -> None:
    from opentelemetry import metrics, trace

    from tokentrace._telemetry import providers as _telemetry

    for provider in (
        _telemetry.state.tracer_provider or trace.get_tracer_provider(),
        metrics.get_meter_provider(),
    ):
        flush = getattr(provider, "force_flush", None)
        if flush is not None:
            flush()


def _carry(fn: Any) -> Carried:
    from opentelemetry import propagate

    from tokentrace._core import registry as _registry

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return Carried(fn, carrier, tuple(n for n in _registry.instrumented() if n != "processes"))


def _wrap_first(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``submit(fn, ...)``, ``apply_async(func, ...)``, ``imap(func, ...)``: carry the function."""
    if args and callable(args[0]):
        from tokentrace.integrations import guarded

        carried = guarded("processes.carry", _carry, None, args[0])
        if carried is not None:
            args = (carried, *args[1:])
    return wrapped(*args, **kwargs)


class ProcessesIntegration(Integration):
    name = "processes"

    def patches(self) -> tuple[Patch, ...]:
        return (
            Patch("concurrent.futures.process", "ProcessPoolExecutor.submit", _wrap_first),
            Patch("multiprocessing.pool", "Pool.apply_async", _wrap_first),
            Patch("multiprocessing.pool", "Pool._map_async", _wrap_first),
            Patch("multiprocessing.pool", "Pool.imap", _wrap_first),
            Patch("multiprocessing.pool", "Pool.imap_unordered", _wrap_first),
        )
