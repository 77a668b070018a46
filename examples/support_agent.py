"""Reading a task's exact cost in-process, offline or against the real APIs.

The agent is the one ``tokentrace demo`` runs (tokentrace/_cli/demo: classify, draft a reply,
summarise, as nested tasks). Offline by default, it replays recorded real OpenAI and Anthropic
responses (bundled with their licence notes) from a local server on 127.0.0.1; the first
classification is answered with a 429, so the SDK retries once.

    python examples/support_agent.py           # offline, no API key
    python examples/support_agent.py --live    # real APIs (needs OPENAI_API_KEY and ANTHROPIC_API_KEY)
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import Any

import tokentrace
from tokentrace._cli.demo import offline_clients, replay_server, resolve_ticket


@contextlib.contextmanager
def clients(live: bool) -> Iterator[tuple[Any, Any]]:
    if live:
        import anthropic
        import openai

        yield openai.OpenAI(), anthropic.Anthropic()
        return
    with replay_server() as url:
        yield offline_clients(url)


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
        task = resolve_ticket("My invoice shows a double charge for October.", "user-17", oa, an)
    print_report(task)


if __name__ == "__main__":
    main()
