"""A nightly batch: 50 documents summarised concurrently with asyncio, each in its own task.

The batch task rolls up every document's cost (asyncio tasks inherit the current task) and
counts documents as units, so the cost per document is exact. Offline by default, on a recorded
real OpenAI response served from 127.0.0.1; ``--live`` calls the real API.

    python examples/async_batch.py
    python examples/async_batch.py --live
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Iterator

import openai

import tokentrace
from tokentrace._cli.demo import RECORDINGS
from tokentrace.testing import Recorded, ReplayServer

DOCUMENTS = 50


@contextlib.contextmanager
def client(live: bool) -> Iterator[openai.AsyncOpenAI]:
    if live:
        yield openai.AsyncOpenAI()
        return
    body = (RECORDINGS / "openai_chat_cached.json").read_bytes()
    with ReplayServer({"/v1/chat/completions": [Recorded(body)] * DOCUMENTS}) as server:
        yield openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="offline")


async def summarise(oa: openai.AsyncOpenAI, limit: asyncio.Semaphore, n: int) -> None:
    async with limit, tokentrace.task("summarise_document"):
        await oa.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": f"Summarise document {n} in one line."}]
        )


async def run(oa: openai.AsyncOpenAI) -> tokentrace.Task:
    limit = asyncio.Semaphore(10)  # at most 10 requests in flight
    async with tokentrace.task("nightly_batch", feature="digest") as batch:
        await asyncio.gather(*(summarise(oa, limit, n) for n in range(DOCUMENTS)))
        batch.add_units(DOCUMENTS, unit="document")
    return batch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--live", action="store_true", help="call the real API instead of recordings")
    args = parser.parse_args()
    tokentrace.instrument("openai")
    with client(args.live) as oa:
        batch = asyncio.run(run(oa))
    t = batch.totals
    per_document = t.cost_usd / batch.units["document"]
    print(
        f"nightly_batch: {t.llm_calls} calls, ${t.cost_usd.normalize():f}, ${per_document.normalize():f} per document"
    )


if __name__ == "__main__":
    main()
