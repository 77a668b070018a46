"""DSPy's LM, pointed at a local replay server. Through LiteLLM (engine="litellm") each
request is one exact call, and so is each request of dspy's default engine, read at the
transport of the lm15 that dspy vendors."""

from __future__ import annotations

import asyncio

import dspy
import pytest
import wrapt

import tokentrace
from tests.frameworks import recordings as rec
from tests.frameworks.matrix import check
from tests.frameworks.recordings import Server
from tokentrace.integrations.lm15 import DspyIntegration
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
def test_an_lm_call_through_the_default_engine_is_one_exact_call(mode: str, cap: Capture) -> None:
    """dspy's default engine writes its HTTP requests to a socket itself (the lm15 it vendors);
    tokentrace reads them at lm15's transport: one call span, the provider's usage, exact cost."""
    with Server() as server, tokentrace.task("dspy") as task:
        lm = _lm(server.url)
        if mode == "sync":
            lm("Hello!")
        else:
            asyncio.run(lm.acall("Hello!"))
    check(cap, task, server, framework="dspy", surface="LM (default engine)", mode=mode)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_predict_through_the_default_engine_is_one_exact_call(mode: str, cap: Capture) -> None:
    """A dspy.Predict program on the default engine, answered in dspy's field format: it parses
    its answer, and its one request is one exact call."""
    with Server(chat=rec.PREDICT) as server, tokentrace.task("dspy") as task:
        lm = dspy.LM(
            "openai/" + rec.PREDICT.model, api_base=server.url + "/v1", api_key="sk-test", cache=False
        )
        predict = dspy.Predict("question -> answer")
        with dspy.context(lm=lm):
            if mode == "sync":
                result = predict(question="What is the capital of France?")
            else:
                result = asyncio.run(predict.acall(question="What is the capital of France?"))
    assert result.answer == "Paris"
    check(cap, task, server, framework="dspy", surface="Predict (default engine)", mode=mode)


def test_instrument_is_idempotent_and_uninstrument_is_exact() -> None:
    """The two doors of the lm15 dspy vendors are wrapped once and restored exactly."""
    targets = [(p.module, p.qualname) for p in DspyIntegration().patches()]
    assert targets == [
        ("dspy._vendor.lm15.transports._sync", "StdlibTransport.stream"),
        ("dspy._vendor.lm15.transports._async", "StdlibAsyncTransport._do_stream"),
    ]
    tokentrace.uninstrument()
    originals = {t: wrapt.resolve_path(*t)[2] for t in targets}
    assert tokentrace.instrument("dspy") == ["dspy"]
    wrapped = {t: wrapt.resolve_path(*t)[2] for t in targets}
    assert all(isinstance(v, wrapt.FunctionWrapper) for v in wrapped.values())
    assert tokentrace.instrument("dspy") == []
    tokentrace.uninstrument("dspy")
    assert all(wrapt.resolve_path(*t)[2] is original for t, original in originals.items())
