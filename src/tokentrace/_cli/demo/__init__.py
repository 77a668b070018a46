"""``tokentrace demo``: a small support agent, offline, against recorded real provider responses.

It resolves three tickets (nested tasks: classify, draft a reply, summarise) through the official
openai and anthropic SDKs, served from a local server on 127.0.0.1 with recorded responses
(``recordings/``, with their licence notes). The first classification is answered with a 429,
so the SDK retries; the recorded answers carry cached tokens; an editor autocompletion calls a
model tokentrace has no price for, so it is counted but unpriced. Everything lands in a ledger.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

RECORDINGS = resources.files(__name__) / "recordings"
TICKETS = (
    ("user-17", "My invoice shows two charges for November."),
    ("user-42", "The export to CSV button does nothing."),
    ("user-17", "How do I add a teammate to my workspace?"),
)


def _recorded(name: str, **kw: Any) -> Any:
    from tokentrace.testing import Recorded

    content_type = "text/event-stream" if name.endswith(".sse") else "application/json"
    return Recorded((RECORDINGS / name).read_bytes(), content_type=content_type, **kw)


@contextlib.contextmanager
def replay_server() -> Iterator[str]:
    """A local server answering as the OpenAI and Anthropic APIs would, from recordings."""
    from tokentrace.testing import ReplayServer

    server = ReplayServer(
        {
            "/v1/chat/completions": [
                # A recorded error body served with a retryable status: the SDK retries once.
                _recorded("openai_error_401.json", status=429, headers={"retry-after-ms": "10"}),
                _recorded("openai_chat_cached.json"),
            ],
            "/v1/chat/completions#stream": [_recorded("openai_chat_stream.sse")],
            "/v1/messages": [_recorded("anthropic_messages_cached.json")],
            "/v1/completions": [_recorded("openai_completion_unpriced.json")],
        }
    )
    with server:
        yield server.url


def resolve_ticket(ticket: str, user: str, oa: Any, an: Any, *, tenant: str | None = None) -> Any:
    """One support ticket: classify it, draft a reply, summarise the thread (nested tasks), for
    ``tenant`` if given. Returns the ``tokentrace.Task`` of the run."""
    import tokentrace

    # A ticket may not cost more than 5 cents: a call that would cross it is never sent.
    budget = tokentrace.Budget(max_cost_usd="0.05")
    with tokentrace.task(
        "resolve_ticket", kind="agent", feature="support", user_id=user, tenant=tenant, budget=budget
    ) as task:
        with tokentrace.task("classify"):
            oa.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": f"Classify: {ticket}"}]
            )
        with tokentrace.task("draft_reply"):
            an.messages.create(
                model="claude-sonnet-4-20250514",
                max_tokens=200,
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
        task.add_units(1, unit="ticket")
    return task


def offline_clients(base_url: str) -> tuple[Any, Any]:
    """openai and anthropic clients pointed at ``replay_server()``."""
    import anthropic
    import openai

    return openai.OpenAI(base_url=base_url + "/v1", api_key="offline"), anthropic.Anthropic(
        base_url=base_url, api_key="offline"
    )


def run_agent(base_url: str) -> None:
    """The demo's workload: three tickets and one autocompletion on a model with no price."""
    import tokentrace

    oa, an = offline_clients(base_url)
    for user, ticket in TICKETS:
        resolve_ticket(ticket, user, oa, an)
    with tokentrace.task("autocomplete", feature="editor", user_id="user-42"):
        oa.completions.create(model="davinci:2023-07-21-v2", prompt="Ecosystem size is", max_tokens=16)


def run(ledger: Path | str) -> None:
    """Run the agent, recording to ``ledger`` (a file is replaced if it exists; a PostgreSQL
    ledger gets the runs added), and flush it."""
    import tokentrace
    from tokentrace._telemetry import config as _config
    from tokentrace._telemetry import providers as _telemetry

    for suffix in ("", "-wal", "-shm") if isinstance(ledger, Path) else ():
        Path(f"{ledger}{suffix}").unlink(missing_ok=True)
    provider = _config.ledger_provider(ledger, "tokentrace-demo")
    previous = (_telemetry.state.tracer_provider, _telemetry.state.meter_provider)
    _telemetry.use_providers(provider, None)
    newly = tokentrace.instrument("openai", "anthropic")
    try:
        with warnings.catch_warnings(), replay_server() as url:
            warnings.simplefilter("ignore", DeprecationWarning)  # the recorded models are old
            run_agent(url)
    finally:
        if newly:
            tokentrace.uninstrument(*newly)
        provider.shutdown()  # flushes every span to the ledger
        _telemetry.use_providers(*previous)
