"""What tokentrace adds to a LiteLLM call, in instructions (callgrind), per call.

``litellm.completion`` to ``openai/gpt-4o-mini`` on a real server on 127.0.0.1 (run by this
script's parent process), as LiteLLM sends it: through the openai SDK client's low-level
``post()``. Two configurations, each in its own process:

- ``bare``: tokentrace not instrumented;
- ``tokentrace``: ``instrument("litellm", "httpx", "httpx2")`` inside a task: the relayed call
  (its span, budget check, task totals) and its one attempt read from the response body.

Run it where LiteLLM is installed (the framework matrix's environment)::

    "$(python -m tests.support.frameworks install)" benchmarks/litellm_call.py [--calls 20] [--repeat 3]

Needs valgrind. Only the calling thread's instructions are collected: LiteLLM's own logging
threads are not counted in either configuration.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
from pathlib import Path

from instructions import (  # the same callgrind runner (benchmarks/ is on the path)
    collected,
    drop_spans,
    window,
)

CONFIGS = ("bare", "tokentrace")
MESSAGES = [{"role": "user", "content": "hi"}]


def child(config: str, url: str, calls: int, ready: str) -> None:
    """Make ``calls`` LiteLLM calls of one configuration inside ``functools.reduce`` (the window)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    import tokentrace

    drop_spans()
    if config == "tokentrace":
        tokentrace.instrument("litellm", "httpx", "httpx2")
        tokentrace.task("bench").__enter__()
    import litellm

    call = functools.partial(
        litellm.completion,
        model="openai/gpt-4o-mini",
        messages=MESSAGES,
        api_base=url + "/v1",
        api_key="sk-test",
    )
    window(call, calls, ready, warm=10)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import tokentrace
    from tokentrace.testing import Recorded, ReplayServer

    # The demo's recorded gpt-4o-mini answer, wherever the package keeps it.
    chat = next(Path(tokentrace.__file__).parent.rglob("openai_chat.json"))
    routes = {"/v1/chat/completions": [Recorded(chat.read_bytes())]}
    with ReplayServer(routes) as server:
        counts = {
            config: statistics.median(
                collected(__file__, [config, server.url, str(args.calls)], config) / args.calls
                for _ in range(args.repeat)
            )
            for config in CONFIGS
        }
    added = counts["tokentrace"] - counts["bare"]
    result = {
        "calls": args.calls,
        "repeat": args.repeat,
        "instructions": counts,
        "added": added,
        "added_share": added / counts["bare"],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"instructions per LiteLLM call ({args.calls} calls, median of {args.repeat} processes, callgrind)")
    for config, value in counts.items():
        print(f"  {config:12s} {value:14,.0f}")
    print(f"  tokentrace adds {added:,.0f} ({result['added_share']:.2%} of the call)")


if __name__ == "__main__":
    main()
