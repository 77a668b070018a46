"""A support-ticket agent whose every step knows what it cost.

Offline by default: it replays recorded real OpenAI and Anthropic responses (the ones
``tokentrace demo`` uses, bundled with the package with their licence notes) from a local server on
127.0.0.1, through the official SDKs. The first classification attempt is answered with a
429 (a recorded error body served with a retryable status), so the SDK retries once.

    python examples/support_agent.py           # offline, no API key
    python examples/support_agent.py --live    # real APIs (needs OPENAI_API_KEY and ANTHROPIC_API_KEY)
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from importlib import resources

import anthropic
import openai

import tokentrace
from tokentrace.testing import Recorded, ReplayServer

RECORDINGS = resources.files("tokentrace._demo") / "recordings"


def _recorded(name: str, **kw: object) -> Recorded:
    content_type = "text/event-stream" if name.endswith(".sse") else "application/json"
    return Recorded((RECORDINGS / name).read_bytes(), content_type=content_type, **kw)  # type: ignore[arg-type]


@contextlib.contextmanager
def clients(live: bool) -> Iterator[tuple[openai.OpenAI, anthropic.Anthropic]]:
    if live:
        yield openai.OpenAI(), anthropic.Anthropic()
        return
    server = ReplayServer(
        {
            "/v1/chat/completions": [
                _recorded("openai_error_401.json", status=429, headers={"retry-after-ms": "10"}),
                _recorded("openai_chat_cached.json"),
            ],
            "/v1/chat/completions#stream": [_recorded("openai_chat_stream.sse")],
            "/v1/messages": [_recorded("anthropic_messages_cached.json")],
        }
    )
    with server:
        yield (
            openai.OpenAI(base_url=server.url + "/v1", api_key="offline"),
            anthropic.Anthropic(base_url=server.url, api_key="offline"),
        )


@tokentrace.task(feature="support")
def resolve_ticket(ticket: str, oa: openai.OpenAI, an: anthropic.Anthropic) -> tokentrace.Task:
    task = tokentrace.current_task()
    assert task is not None
    with tokentrace.task("classify"):
        oa.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": f"Classify this ticket: {ticket}"}]
        )
    with tokentrace.task("draft_reply"):
        an.messages.create(
            model="claude-sonnet-4-20250514",
            max_tokens=100,
            messages=[{"role": "user", "content": f"Draft a reply to: {ticket}"}],
        )
    with tokentrace.task("summarise"):
        stream = oa.chat.completions.create(
            model="gpt-3.5-turbo",
            messages=[{"role": "user", "content": "Summarise the thread in one line."}],
            stream=True,
            stream_options={"include_usage": True},
        )
        for _ in stream:
            pass
    return task


def print_report(task: tokentrace.Task) -> None:
    t = task.totals
    print(
        f"task {task.name!r} ({task.feature}): ${t.cost_usd.normalize():f} for {t.llm_calls} LLM calls, {t.retries} retry"
    )
    print(f"  tokens: {t.input_tokens} in ({t.cache_read_tokens} cached), {t.output_tokens} out")
    if t.unpriced_calls:
        print(f"  {t.unpriced_calls} call(s) could not be priced and are not in the cost above")
    for model, m in sorted(t.by_model.items()):
        cost = "unpriced" if m.unpriced_calls else f"${m.cost_usd.normalize():f}"
        print(f"  {model:32s} {m.llm_calls} call(s)  {cost}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--live", action="store_true", help="call the real APIs instead of recordings")
    args = parser.parse_args()
    tokentrace.instrument()
    with clients(args.live) as (oa, an):
        task = resolve_ticket("My invoice shows a double charge for October.", oa, an)
    print_report(task)


if __name__ == "__main__":
    main()
