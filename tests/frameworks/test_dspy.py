"""DSPy's LM, pointed at a local replay server. Through LiteLLM (engine="litellm") each
request is one exact call; dspy's default engine sends requests over raw sockets, which
tokentrace does not see."""

from __future__ import annotations

import asyncio

import dspy
import pytest

import tokentrace
from tests.frameworks import recordings as rec
from tests.frameworks.matrix import check, note
from tests.frameworks.recordings import Server
from tokentrace.testing import Capture


def _lm(url: str, **kwargs: object) -> dspy.LM:
    return dspy.LM("openai/" + rec.CHAT.model, api_base=url + "/v1", api_key="sk-test", cache=False, **kwargs)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_lm_call_through_litellm_is_one_exact_call(mode: str, cap: Capture) -> None:
    """LM(engine="litellm") called and acalled: one call span, the provider's usage, exact cost."""
    with Server() as server, tokentrace.task("dspy") as task:
        lm = _lm(server.url, engine="litellm")
        if mode == "sync":
            lm("Hello!")
        else:
            asyncio.run(lm.acall("Hello!"))
    check(cap, task, server, framework="dspy", surface='LM(engine="litellm")', mode=mode)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_lm_call_through_the_default_engine_is_not_seen(mode: str, cap: Capture) -> None:
    """dspy's default engine writes its HTTP requests to a raw socket (dspy/_vendor/lm15), past
    every HTTP client tokentrace patches: the request is sent and nothing is recorded (a known
    gap, docs/frameworks.md)."""
    with Server() as server, tokentrace.task("dspy") as task:
        lm = _lm(server.url)
        if mode == "sync":
            lm("Hello!")
        else:
            asyncio.run(lm.acall("Hello!"))
    spans = cap.call_spans()
    note(
        "dspy",
        "LM (default engine)",
        mode,
        "not seen" if not spans else "seen",
        len(server.requests),
        len(spans),
        "raw-socket transport (dspy/_vendor/lm15)",
    )
    assert len(server.requests) == 1
    assert spans == []
    assert task.totals.llm_calls == 0
