"""The official ``groq`` SDK: Chat Completions (streamed and not) and Embeddings, sync and async.

Groq's API is OpenAI-compatible, so the OpenAI readers read it; a stream's usage may also
arrive in the last chunk's ``x_groq.usage`` (Groq's own field, older than ``stream_options``).

The SDK's retry loop sends each attempt through its ``httpx`` client directly, so attempts are
counted where each one is built (``_build_request``), and their HTTP status is filled in when
the SDK decides to retry (``_sleep_for_retry``), processes the final response, or turns a final
error status into its exception.
"""

from __future__ import annotations

from typing import Any

from tokentrace.integrations import AttemptHook, Method, Patch, Request, field, settle_attempt, sync_and_async
from tokentrace.integrations.openai import OpenAIIntegration, _ChatStream, _ResponsesStream


class _GroqChatStream(_ChatStream):
    """A chat stream whose usage may come in ``x_groq.usage`` instead of ``usage``."""

    __slots__ = ()

    def feed(self, chunk: Any) -> None:
        super().feed(chunk)
        if self.usage is None:
            usage = field(getattr(chunk, "x_groq", None), "usage")
            if usage is not None:
                self.usage = usage


def _mark_attempt(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Record the outcome of the attempt just made (``response`` is ``None`` for a connection error)."""
    response = kwargs["response"] if "response" in kwargs else args[0]
    status = getattr(response, "status_code", None)
    settle_attempt(str(status) if status is not None else "connection error")
    return wrapped(*args, **kwargs)


class GroqIntegration(OpenAIIntegration):
    name = "groq"
    distribution = "groq"
    module = "groq"
    min_version = (0, 9)
    provider = "groq"
    methods = (
        *sync_and_async("groq.resources.chat.completions", "Completions.create", "chat"),
        *sync_and_async("groq.resources.embeddings", "Embeddings.create", "embeddings", api="embeddings"),
    )
    attempt_hooks = (AttemptHook("groq._base_client", "BaseClient._build_request"),)

    def patches(self) -> tuple[Patch, ...]:
        return (
            *(
                Patch("groq._base_client", f"{client}.{name}", _mark_attempt)
                for client in ("SyncAPIClient", "AsyncAPIClient")
                for name in ("_sleep_for_retry", "_process_response")
            ),
            # A final error status is turned into the SDK's exception here.
            Patch("groq._base_client", "BaseClient._make_status_error_from_response", _mark_attempt),
        )

    def provider_for(self, base_url: str) -> str | None:
        return None  # the groq SDK only talks to Groq

    def stream_reader(self, method: Method, request: Request) -> _ChatStream | _ResponsesStream:
        return _GroqChatStream(request)
