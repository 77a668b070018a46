"""Totals stay exact under threads and asyncio concurrency."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import tokentrace
from tests.support.clients import Repeat, openai_client, recorded, request_kwargs

CALL = "dd-trace-py/tests/contrib/litellm/cassettes/completion_reasoning.yaml"  # 12 in, 30 out, $0.0001452
ONE = Decimal("0.0001452")


def _setup(use_async: bool = False) -> tuple[object, dict[str, object]]:
    (interaction,) = recorded(CALL)
    return openai_client(Repeat(interaction), use_async=use_async), request_kwargs(interaction, "openai")


def test_32_threads_x_200_calls_add_up_exactly() -> None:
    """6,400 calls from 32 pool threads inside one task sum to exactly 6,400 calls' worth."""
    client, kwargs = _setup()

    def worker() -> None:
        for _ in range(200):
            client.chat.completions.create(**kwargs)  # type: ignore[attr-defined]

    with tokentrace.task("load") as task, ThreadPoolExecutor(max_workers=32) as pool:
        for future in [pool.submit(worker) for _ in range(32)]:
            future.result()
    totals = task.totals
    assert totals.llm_calls == 6400
    assert (totals.input_tokens, totals.output_tokens, totals.reasoning_tokens) == (76_800, 192_000, 96_000)
    assert totals.cost_usd == 6400 * ONE == Decimal("0.92928")


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


def test_2000_concurrent_asyncio_calls_add_up_exactly() -> None:
    """2,000 concurrent async calls in nested tasks inside one task sum exactly."""
    client, kwargs = _setup(use_async=True)

    async def one(i: int) -> None:
        async with tokentrace.task(f"step-{i % 10}"):
            await client.chat.completions.create(**kwargs)  # type: ignore[attr-defined]

    async def main() -> tokentrace.Totals:
        async with tokentrace.task("fanout") as task:
            await asyncio.gather(*(one(i) for i in range(2000)))
        return task.totals

    totals = asyncio.run(main())
    assert totals.llm_calls == 2000
    assert totals.output_tokens == 60_000
    assert totals.cost_usd == 2000 * ONE


def test_without_the_threading_integration_threads_are_not_attributed() -> None:
    """Uninstrumenting 'threading' restores the stdlib: pool threads no longer see the task."""
    tokentrace.uninstrument("threading")
    seen: list[object] = []
    with tokentrace.task("off"), ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: seen.append(tokentrace.current_task())).result()
    assert seen == [None]
