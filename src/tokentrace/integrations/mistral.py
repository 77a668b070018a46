"""The official ``mistralai`` SDK (2.x and later, ``mistralai.client``): chat ``complete`` and
``stream`` (sync and ``_async``) and ``embeddings.create``.

Mistral's usage has the OpenAI shape (``prompt_tokens`` includes cached tokens, reported in
``prompt_tokens_details.cached_tokens``), so the OpenAI readers read it; a stream's events wrap
each chunk in ``data``, and its last chunk carries the usage.

The SDK's retry loop sends each attempt itself, so attempts are counted where its hooks see
each request (``SDKHooks.before_request``), and the final attempt's status is read from its
success or error hook. A retried attempt's own status is not exposed: it reads ``unknown``.
"""

from __future__ import annotations

from typing import Any

from tokentrace.integrations import (
    AttemptHook,
    Method,
    Patch,
    ProviderIntegration,
    Reading,
    Request,
    settle_attempt,
    values,
)
from tokentrace.integrations.openai import _ChatStream, chat_usage, embeddings_usage

_CHAT = "mistralai.client.chat"
_EMBEDDINGS = "mistralai.client.embeddings"
_HOOKS = "mistralai.client._hooks.sdkhooks"


def _as_sent(usage: Any) -> Any:
    """``usage`` without the counts the server did not send.

    The SDK validates its ``UsageInfo`` and fills an absent ``prompt_tokens`` or
    ``completion_tokens`` with 0; a count the server did not report is not a zero, so those are
    left out (the readers then see them missing), going by pydantic's ``model_fields_set``.
    """
    sent = getattr(usage, "model_fields_set", None)
    if not isinstance(sent, set) or sent.issuperset(_TOTALS):
        return usage
    return {name: value for name, value in values(usage).items() if name in sent or name not in _TOTALS}


_TOTALS = ("prompt_tokens", "completion_tokens")


class _MistralStream(_ChatStream):
    """A chat stream of ``CompletionEvent``s, each holding its chunk in ``data``."""

    __slots__ = ()

    def feed(self, chunk: Any) -> None:
        super().feed(getattr(chunk, "data", chunk))

    def result(self) -> Reading:
        if self.usage is not None:
            self.usage = _as_sent(self.usage)
        return super().result()


def _final_status(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Record the final attempt's outcome from the SDK's after-success/after-error hooks."""
    response = args[1] if len(args) > 1 else kwargs.get("response")
    status = getattr(response, "status_code", None)
    if status is not None:
        settle_attempt(str(status))
    elif len(args) > 2 and args[2] is not None:
        settle_attempt(type(args[2]).__qualname__)
    return wrapped(*args, **kwargs)


class MistralIntegration(ProviderIntegration):
    name = "mistral"
    distribution = "mistralai"
    module = "mistralai.client"
    min_version = (2, 0)
    provider = "mistral_ai"
    methods = (
        Method(_CHAT, "Chat.complete", "chat"),
        Method(_CHAT, "Chat.complete_async", "chat", is_async=True),
        Method(_CHAT, "Chat.stream", "chat", streams=True),
        Method(_CHAT, "Chat.stream_async", "chat", is_async=True, streams=True),
        Method(_EMBEDDINGS, "Embeddings.create", "embeddings", api="embeddings"),
        Method(_EMBEDDINGS, "Embeddings.create_async", "embeddings", is_async=True, api="embeddings"),
    )
    attempt_hooks = (AttemptHook(_HOOKS, "SDKHooks.before_request"),)

    def patches(self) -> tuple[Patch, ...]:
        return (
            Patch(_HOOKS, "SDKHooks.after_success", _final_status),
            Patch(_HOOKS, "SDKHooks.after_error", _final_status),
        )

    def read(self, method: Method, request: Request, response: Any) -> Reading:
        model = getattr(response, "model", None)
        usage = getattr(response, "usage", None)
        if usage is None:
            return Reading(None, response_model=model)
        usage = _as_sent(usage)
        if method.api == "embeddings":
            return Reading(embeddings_usage(usage), response_model=model)
        return Reading(chat_usage(usage), response_model=model, output=getattr(response, "choices", None))

    def stream_reader(self, method: Method, request: Request) -> _MistralStream:
        return _MistralStream(request)
