"""instrument()/uninstrument(), and the contract every registered integration keeps."""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

import pytest
import wrapt

import tokentrace
from tests.support.cassettes import Replay
from tests.support.clients import anthropic_client, openai_client, recorded, request_kwargs, synthetic
from tests.support.proc import run_python
from tokentrace._core import registry as _registry
from tokentrace.exceptions import IntegrationError
from tokentrace.integrations import Integration
from tokentrace.testing import Capture

INTEGRATIONS = _registry.available()
# Libraries whose pins this environment cannot hold (litellm needs openai<3, dspy needs litellm):
# their integrations are tested in the framework matrix's own environment.
ELSEWHERE = frozenset({"litellm", "dspy"})


def _targets(name: str) -> list[tuple[str, str]]:
    integration = _registry._load(name, _registry._targets()[name])
    out = [(m.module, m.qualname) for m in integration.methods]
    out += [(h.module, h.qualname) for h in integration.attempt_hooks]
    out += [(p.module, p.qualname) for p in integration.patches()]
    return out


def _raw(module: str, qualname: str) -> Any:
    _parent, _attr, value = wrapt.resolve_path(module, qualname)
    return value


def test_builtins_are_registered_through_the_entry_point_group() -> None:
    """openai, anthropic and threading are found through 'tokentrace.integrations'."""
    from importlib import metadata

    names = {ep.name for ep in metadata.entry_points(group="tokentrace.integrations")}
    assert {"openai", "anthropic", "threading"} <= names
    assert set(INTEGRATIONS) >= {"openai", "anthropic", "threading"}


@pytest.mark.parametrize("name", INTEGRATIONS)
def test_instrument_is_idempotent_and_uninstrument_is_exact(name: str) -> None:
    """Instrumenting twice wraps once; uninstrumenting restores the very same objects."""
    if name in ELSEWHERE and importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is tested in the framework matrix's environment (tests/frameworks)")
    tokentrace.uninstrument()
    originals = {t: _raw(*t) for t in _targets(name)}
    assert tokentrace.instrument(name) == [name]
    wrapped = {t: _raw(*t) for t in originals}
    assert all(isinstance(v, wrapt.FunctionWrapper) for v in wrapped.values())
    assert tokentrace.instrument(name) == []
    assert {t: _raw(*t) for t in originals} == wrapped
    tokentrace.uninstrument(name)
    assert all(_raw(*t) is original for t, original in originals.items())


def test_unknown_integration_name_is_a_clear_error() -> None:
    """A name that is not registered lists the available ones."""
    with pytest.raises(IntegrationError, match=r"unknown integration 'opeani'.*available: aiohttp, "):
        tokentrace.instrument("opeani")


def test_missing_or_old_sdk_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A named integration whose SDK is missing or too old says how to fix it."""

    class Missing(Integration):
        name = "ghost"
        distribution = "tokentrace-no-such-distribution"

    class TooOld(Integration):
        name = "ancient"
        distribution = "openai"
        min_version = (999,)

    monkeypatch.setattr(
        _registry,
        "_BUILTINS",
        {**_registry._BUILTINS, "ghost": f"{__name__}:Missing", "ancient": f"{__name__}:TooOld"},
    )
    globals().update(Missing=Missing, TooOld=TooOld)
    with pytest.raises(IntegrationError, match=r"not installed.*pip install"):
        tokentrace.instrument("ghost")
    with pytest.raises(IntegrationError, match="older than the 999"):
        tokentrace.instrument("ancient")
    # With no names, unavailable integrations are skipped quietly.
    tokentrace.uninstrument()
    assert "ghost" not in tokentrace.instrument()


def test_another_wrapper_on_top_survives_uninstrument() -> None:
    """If another library wrapped after us, uninstrument leaves its wrapper and ours goes inactive."""
    import openai

    tokentrace.uninstrument()
    tokentrace.instrument("openai")
    calls: list[int] = []

    def theirs(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        calls.append(1)
        return wrapped(*args, **kwargs)

    wrapt.wrap_function_wrapper("openai.resources.chat.completions", "Completions.create", theirs)
    try:
        tokentrace.uninstrument("openai")
        (interaction,) = recorded("dd-trace-py/tests/contrib/litellm/cassettes/completion_reasoning.yaml")
        with tokentrace.task("after") as task:
            openai_client(Replay([interaction])).chat.completions.create(
                **request_kwargs(interaction, "openai")
            )
        assert calls == [1]
        assert task.totals.llm_calls == 0
    finally:
        _p, _a, top = wrapt.resolve_path("openai.resources.chat.completions", "Completions.create")
        inner = top.__wrapped__
        original = inner.__wrapped__ if isinstance(inner, wrapt.FunctionWrapper) else inner
        setattr(openai.resources.chat.completions.Completions, "create", original)  # noqa: B010


GARBAGE = [b"", b"not json", b"{}", b'{"usage": "lots"}', b"[1, 2, 3]", b'{"choices": null, "usage": {}}']

PROVIDERS = {
    "openai": (
        "https://api.openai.com/v1/chat/completions",
        openai_client,
        lambda c: c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]),
    ),
    "anthropic": (
        "https://api.anthropic.com/v1/messages",
        anthropic_client,
        lambda c: c.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=[]),
    ),
}


@pytest.mark.parametrize("body", GARBAGE, ids=[repr(b)[:20] for b in GARBAGE])
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_garbage_response_never_raises_from_tokentrace(provider: str, body: bytes, cap: Capture) -> None:
    """A garbage body gives exactly what the uninstrumented SDK gives (value or its own error)."""
    uri, make, call = PROVIDERS[provider]

    def run() -> tuple[str, Any]:
        interactions = synthetic(uri, {})
        interactions[0].body = body
        try:
            result = call(make(Replay(interactions)))
            return "ok", type(result).__name__
        except Exception as exc:
            return "error", type(exc).__name__

    instrumented = run()
    tokentrace.uninstrument(provider)
    plain = run()
    assert instrumented == plain


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_sync_and_async_clients_record_the_same(provider: str, cap: Capture) -> None:
    """Sync and async clients produce identical span attributes apart from ids."""
    path = {
        "openai": "dd-trace-py/tests/contrib/litellm/cassettes/completion_reasoning.yaml",
        "anthropic": "dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion_cache_read.yaml",
    }[provider]
    (interaction,) = recorded(path)
    make = openai_client if provider == "openai" else anthropic_client

    def api(client: Any) -> Any:
        return client.chat.completions if provider == "openai" else client.messages

    with tokentrace.task("parity"):
        api(make(Replay([interaction]))).create(**request_kwargs(interaction, provider))

    async def run_async() -> None:
        async with tokentrace.task("parity"):
            await api(make(Replay([interaction]), use_async=True)).create(
                **request_kwargs(interaction, provider)
            )

    asyncio.run(run_async())
    sync_span, async_span = cap.call_spans()
    ignore = {"tokentrace.task.id", "tokentrace.task.root_id"}  # a new task (and root) each time

    def clean(span: Any) -> dict[str, Any]:
        return {k: v for k, v in (span.attributes or {}).items() if k not in ignore}

    assert clean(sync_span) == clean(async_span)


def test_instrument_patches_an_sdk_when_the_application_first_imports_it() -> None:
    """instrument() imports no SDK: one imported later is patched on import and records its calls;
    one uninstrumented before its import stays untouched; a named one is patched at once."""
    out = run_python(
        """
import sys
import tokentrace
from tokentrace._core.registry import instrumented
tokentrace.instrument()
sdks = ("openai", "anthropic", "groq", "cohere", "google.genai", "botocore.client", "mistralai.client")
print("imported:", [m for m in sdks if m in sys.modules])
print("waiting:", "groq" in instrumented(), "cohere" in instrumented())
import groq
from groq.resources.chat.completions import Completions
print("groq patched:", hasattr(Completions.create, "__wrapped__"))
from tests.support.cassettes import Replay
from tests.support.clients import recorded
(interaction,) = recorded(
    "openllmetry/packages/opentelemetry-instrumentation-groq/tests/traces/cassettes/"
    "test_chat_tracing/test_chat_streaming_legacy.yaml"
)
client = groq.Groq(api_key="k", http_client=Replay([interaction]).httpx_client())
with tokentrace.task("late") as task:
    for _ in client.chat.completions.create(**interaction.request_json()):
        pass
print("recorded:", task.totals.llm_calls, task.totals.output_tokens)
tokentrace.uninstrument("cohere")
import cohere.v2.client
print("cohere patched:", hasattr(cohere.v2.client.V2Client.chat, "__wrapped__"))
tokentrace.instrument("mistral")
print("mistral imported:", "mistralai.client" in sys.modules)
""",
        timeout=120,
    )
    assert out.splitlines() == [
        "imported: []",
        "waiting: True True",
        "groq patched: True",
        "recorded: 1 73",
        "cohere patched: False",
        "mistral imported: True",
    ]
