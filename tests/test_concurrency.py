"""Totals stay exact under threads and asyncio concurrency."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import tokentrace
from tests.support.clients import Repeat, openai_client, recorded, request_kwargs
from tokentrace._telemetry import providers as _telemetry

# o3-mini: 12 in, 30 out (15 reasoning), $0.0001452
CALL = "dd-trace-py/tests/contrib/litellm/cassettes/completion_reasoning.yaml"
ONE = Decimal("0.0001452")


def _setup(use_async: bool = False) -> tuple[object, dict[str, object]]:
    (interaction,) = recorded(CALL)
    return openai_client(Repeat(interaction), use_async=use_async), request_kwargs(interaction, "openai")


class _Counting(SpanExporter):
    """Counts exported spans by name (a backend that keeps up with anything)."""

    def __init__(self) -> None:
        self.names: Counter[str] = Counter()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.names.update(span.name for span in spans)
        return SpanExportResult.SUCCESS


@pytest.fixture
def batch_export() -> Iterator[tuple[TracerProvider, _Counting]]:
    """A production-like pipeline: SDK provider, batch processor (a queue that holds the whole load)."""
    exporter = _Counting()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=200_000))
    _telemetry.use_providers(provider, None)
    yield provider, exporter
    _telemetry.use_providers(None, None)


def test_32_threads_x_1000_calls_in_nested_tasks_add_up_exactly(
    batch_export: tuple[TracerProvider, _Counting],
) -> None:
    """32 threads x 1,000 calls, each thread in its own task of 10 nested batches, sum exactly at every
    level, and every span reaches the exporter."""
    client, kwargs = _setup()

    def worker(i: int) -> tokentrace.Task:
        with tokentrace.task("worker") as mine:
            for _ in range(10):
                with tokentrace.task("batch") as batch:
                    for _ in range(100):
                        client.chat.completions.create(**kwargs)  # type: ignore[attr-defined]
                assert batch.totals.llm_calls == 100
                assert batch.totals.cost_usd == 100 * ONE
        return mine

    with tokentrace.task("load") as task, ThreadPoolExecutor(max_workers=32) as pool:
        workers = list(pool.map(worker, range(32)))
    totals = task.totals
    assert totals.llm_calls == 32_000
    assert (totals.input_tokens, totals.output_tokens, totals.reasoning_tokens) == (384_000, 960_000, 480_000)
    assert totals.cost_usd == 32_000 * ONE == Decimal("4.6464")
    assert {w.totals.llm_calls for w in workers} == {1000}
    assert sum((w.totals.cost_usd for w in workers), Decimal(0)) == totals.cost_usd
    provider, exporter = batch_export
    provider.force_flush()
    assert exporter.names == Counter({"chat o3-mini": 32_000, "batch": 320, "worker": 32, "load": 1})


def test_plain_threads_started_in_a_task_are_attributed_to_it() -> None:
    """threading.Thread (and a subclass overriding run) carry the task they were started in."""
    client, kwargs = _setup()

    class Worker(threading.Thread):
        def run(self) -> None:
            client.chat.completions.create(**kwargs)  # type: ignore[attr-defined]

    with tokentrace.task("threads") as task:
        threads = [
            threading.Thread(target=lambda: client.chat.completions.create(**kwargs)) for _ in range(3)
        ]
        threads += [Worker() for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert task.totals.llm_calls == 5


def test_nested_tasks_in_threads_roll_up_into_the_parent() -> None:
    """A task opened inside a worker thread is a child of the submitting task."""
    client, kwargs = _setup()

    def job(i: int) -> tokentrace.Task:
        with tokentrace.task(f"job-{i}") as child:
            client.chat.completions.create(**kwargs)  # type: ignore[attr-defined]
        return child

    with tokentrace.task("batch") as parent, ThreadPoolExecutor(max_workers=4) as pool:
        children = list(pool.map(job, range(8)))
    assert parent.totals.llm_calls == 8
    assert all(c.parent is parent and c.totals.llm_calls == 1 for c in children)


def test_5000_concurrent_asyncio_calls_add_up_exactly(batch_export: tuple[TracerProvider, _Counting]) -> None:
    """5,000 concurrent async calls in nested tasks inside one task sum exactly, per task too."""
    client, kwargs = _setup(use_async=True)

    async def one(i: int) -> None:
        async with tokentrace.task(f"step-{i % 10}"):
            await client.chat.completions.create(**kwargs)  # type: ignore[attr-defined]

    async def group(g: int) -> tokentrace.Task:
        async with tokentrace.task("group") as mine:
            await asyncio.gather(*(one(i) for i in range(500)))
        return mine

    async def main() -> tuple[tokentrace.Totals, list[tokentrace.Task]]:
        async with tokentrace.task("fanout") as task:
            groups = await asyncio.gather(*(group(g) for g in range(10)))
        return task.totals, groups

    totals, groups = asyncio.run(main())
    assert totals.llm_calls == 5000
    assert totals.output_tokens == 150_000
    assert totals.cost_usd == 5000 * ONE == Decimal("0.726")
    assert [g.totals.llm_calls for g in groups] == [500] * 10
    provider, exporter = batch_export
    provider.force_flush()
    assert exporter.names == Counter(
        {"chat o3-mini": 5000, **{f"step-{i}": 500 for i in range(10)}, "group": 10, "fanout": 1}
    )


def test_without_the_threading_integration_threads_are_not_attributed() -> None:
    """Uninstrumenting 'threading' restores the stdlib: pool threads no longer see the task."""
    tokentrace.uninstrument("threading")
    seen: list[object] = []
    with tokentrace.task("off"), ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: seen.append(tokentrace.current_task())).result()
    assert seen == [None]
