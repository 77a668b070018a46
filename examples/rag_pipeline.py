"""A retrieval-augmented answer, costed step by step: embed the question, retrieve, generate.

Offline by default: recorded real OpenAI responses (an embedding and a cached chat completion)
are served from 127.0.0.1. ``--live`` calls the real API (needs ``OPENAI_API_KEY``).

    python examples/rag_pipeline.py
    python examples/rag_pipeline.py --live
"""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Iterator

import openai

import tokentrace
from tokentrace._cli.demo import RECORDINGS
from tokentrace.testing import Recorded, ReplayServer

DOCUMENTS = {
    "billing": "Invoices are issued on the 1st; duplicate charges are refunded within 5 days.",
    "export": "CSV export runs in the background and emails a link when the file is ready.",
}


@contextlib.contextmanager
def client(live: bool) -> Iterator[openai.OpenAI]:
    if live:
        yield openai.OpenAI()
        return
    routes = {
        "/v1/embeddings": [Recorded((RECORDINGS / "openai_embedding.json").read_bytes())],
        "/v1/chat/completions": [Recorded((RECORDINGS / "openai_chat_cached.json").read_bytes())],
    }
    with ReplayServer(routes) as server:
        yield openai.OpenAI(base_url=server.url + "/v1", api_key="offline")


def retrieve(question_vector: list[float]) -> str:
    """The closest document (a stand-in for a vector store: here, a fixed pseudo-embedding each)."""

    def score(name: str) -> float:
        vector = [math.sin(len(name) * (i + 1)) for i in range(len(question_vector))]
        return sum(a * b for a, b in zip(question_vector, vector, strict=True))

    return DOCUMENTS[max(DOCUMENTS, key=score)]


def answer(oa: openai.OpenAI, question: str) -> tokentrace.Task:
    with tokentrace.task("answer_question", feature="docs-qa") as task:
        with tokentrace.task("embed"):
            vector = oa.embeddings.create(model="text-embedding-ada-002", input=question).data[0].embedding
        context = retrieve(vector)
        with tokentrace.task("generate"):
            oa.chat.completions.create(
                model="gpt-4o",
                messages=[
                    {"role": "system", "content": f"Answer from this context only: {context}"},
                    {"role": "user", "content": question},
                ],
            )
        task.add_units(1, unit="answer")
    return task


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--live", action="store_true", help="call the real API instead of recordings")
    args = parser.parse_args()
    tokentrace.instrument("openai")
    with client(args.live) as oa:
        task = answer(oa, "Why was I charged twice?")
    t = task.totals
    print(f"answer_question: ${t.cost_usd.normalize():f} for {t.llm_calls} calls, {t.input_tokens} tokens in")
    for model, m in sorted(t.by_model.items()):
        print(f"  {model:28s} {m.input_tokens:5d} in {m.output_tokens:4d} out  ${m.cost_usd.normalize():f}")


if __name__ == "__main__":
    main()
