"""The official ``anthropic`` SDK: Messages and beta Messages, sync and async, streamed and not.

anthropic 2.x emits its own CLIENT span per API call with ``gen_ai.usage.*``. For the calls
tokentrace records it switches that span off (the SDK's call then proceeds exactly as with
tracing disabled), so one span per LLM call carries usage. The SDK's spans for calls tokentrace
does not record (listing models, files, ...) are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokentrace.integrations import (
    AttemptHook,
    Inference,
    Method,
    Patch,
    ProviderIntegration,
    Reading,
    Request,
    Usage,
    UsageError,
    active_call,
    count_chat_messages,
    count_text,
    counts,
    field,
    host_of,
    number,
    sync_and_async,
    values,
)

_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


def _status(result: Any) -> int | None:
    response = result[0] if isinstance(result, tuple) and result else result
    return getattr(response, "status_code", None)


_COUNTS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def messages_usage(usage: object) -> Usage:
    """Anthropic usage: ``input_tokens`` excludes cache reads and writes, so add them."""
    return _messages_usage(values(usage))


def _messages_usage(u: Mapping[str, Any]) -> Usage:
    # Messages always report input_tokens and output_tokens (a missing one is a UsageError);
    # the cache counts are 0 when absent.
    inp, out, read, write = counts(u, _COUNTS, required=2)
    if inp < 0:  # named here: the input total below adds the cache counts to it
        raise UsageError(f"input_tokens is negative ({inp})")
    one_hour = thinking = searches = 0
    creation = u.get("cache_creation")
    if creation is not None:
        one_hour = number(
            field(creation, "ephemeral_1h_input_tokens"), "cache_creation.ephemeral_1h_input_tokens"
        )
    details = u.get("output_tokens_details")
    if details is not None:
        thinking = number(field(details, "thinking_tokens"), "output_tokens_details.thinking_tokens")
    tools = u.get("server_tool_use")
    if tools is not None:
        searches = number(field(tools, "web_search_requests"), "server_tool_use.web_search_requests")
    return Usage(inp + read + write, out, read, write, one_hour, thinking, searches)


def _reading(u: Mapping[str, Any], model: str | None, output: Any = None) -> Reading:
    """A Messages response's usage, with fast mode (``speed``, billed at its own rates) and the
    iterations billed apart from the top-level counts."""
    usage = _messages_usage(u)
    speed, iterations = u.get("speed"), u.get("iterations")
    if speed is None and not iterations:
        return Reading(usage, response_model=model, output=output)  # most calls
    tier = speed if speed == "fast" else None
    return Reading(
        usage, response_model=model, output=output, service_tier=tier, inferences=_iterations(iterations)
    )


def _iterations(iterations: object) -> tuple[Inference, ...]:
    """``usage.iterations``' entries that the top-level counts leave out: a ``compaction`` (the
    call's own model summarising its context) and an ``advisor_message`` (the advisor tool's
    model). ``message`` entries (the turns of a server-side tool loop) are in the top level."""
    if not isinstance(iterations, (list, tuple)):
        return ()
    more: list[Inference] = []
    for iteration in iterations:
        it = values(iteration)
        kind = it.get("type")
        if kind == "compaction":
            more.append(Inference(None, _messages_usage(it)))
        elif kind == "advisor_message":
            model = it.get("model")
            more.append(Inference(model if type(model) is str and model else "unknown", _messages_usage(it)))
    return tuple(more)


_STREAMED_FIELDS = (
    *_USAGE_FIELDS,
    "cache_creation",
    "output_tokens_details",
    "server_tool_use",
    "speed",
    "iterations",
)


# The text of a content block delta, by its type: what an offline count of a cut stream reads.
_DELTA_TEXT = {"text_delta": "text", "input_json_delta": "partial_json", "thinking_delta": "thinking"}


class _MessagesStream:
    """``message_start`` carries the first usage; each ``message_delta`` overrides what it reports.

    ``message_start``'s ``output_tokens`` is a placeholder (1) that only a ``message_delta``'s
    count replaces. A stream that ends without one (a dropped connection, a stream closed early)
    has its output counted offline from the text it delivered, as an estimate.
    """

    __slots__ = ("fields", "final", "model", "pieces", "request")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.model: str | None = None
        self.fields: dict[str, object] = {}
        self.pieces: list[str] = []
        self.final = False  # a message_delta reported the output count

    def _take(self, usage: object) -> None:
        u = values(usage)
        for name in _STREAMED_FIELDS:
            value = u.get(name)
            if value is not None:
                self.fields[name] = value

    def feed(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":  # most events
            delta = getattr(event, "delta", None)
            name = _DELTA_TEXT.get(getattr(delta, "type", None))  # type: ignore[arg-type]
            if name is not None:
                text = getattr(delta, name, None)
                if text and type(text) is str:
                    self.pieces.append(text)
        elif kind == "message_start":
            message = getattr(event, "message", None)
            self.model = getattr(message, "model", None)
            self._take(getattr(message, "usage", None))
        elif kind == "message_delta":
            usage = getattr(event, "usage", None)
            self._take(usage)
            if values(usage).get("output_tokens") is not None:
                self.final = True

    def result(self) -> Reading:
        if not self.fields:
            return Reading(None, response_model=self.model)
        if self.final:
            return _reading(self.fields, self.model)
        model = self.model or self.request.model or ""
        fields = {**self.fields, "output_tokens": count_text("".join(self.pieces), model)}
        if "input_tokens" not in fields:
            fields["input_tokens"] = _request_tokens(self.request, model)
        reading = _reading(fields, self.model)
        reading.estimated = True
        return reading


def _request_tokens(request: Request, model: str) -> int:
    """An offline count of a Messages request: its system prompt and messages."""
    kwargs = request.kwargs
    system = kwargs.get("system")
    messages = kwargs.get("messages")
    if system is not None:
        messages = [{"role": "system", "content": system}, *(messages or ())]
    return count_chat_messages(messages, model)


def _provider_for(base_url: str) -> str | None:
    """``AnthropicBedrock`` and ``AnthropicVertex`` clients share these resources: name them by
    their base URL, so they are priced from Bedrock's and Vertex AI's tables."""
    host = host_of(base_url)
    return host.provider if host is not None and host.provider in _CLOUDS else None


_CLOUDS = frozenset({"aws.bedrock", "gcp.vertex_ai"})


def _suppress_sdk_span(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if active_call() is not None:
        return None
    return wrapped(*args, **kwargs)


# The attribute of a stream helper's manager that holds its request (name-mangled per class).
_SENDS = "__api_request"
_MESSAGES = "anthropic.resources.messages"
_BETA = "anthropic.resources.beta.messages"
_COUNT = "count_tokens"


class AnthropicIntegration(ProviderIntegration):
    name = "anthropic"
    distribution = "anthropic"
    module = "anthropic"
    min_version = (0, 34)
    provider = "anthropic"
    methods = (
        *sync_and_async(_MESSAGES, "Messages.create", "chat"),
        *sync_and_async(_BETA, "Messages.create", "chat"),
        # Token counting is free: recorded as a call at $0, status "free".
        *sync_and_async(_MESSAGES, "Messages.count_tokens", "count_tokens", api=_COUNT, optional=True),
        *sync_and_async(_BETA, "Messages.count_tokens", "count_tokens", api=_COUNT, optional=True),
        # The stream() helpers post themselves (not through create) when their manager is entered.
        *sync_and_async(_MESSAGES, "Messages.stream", "chat", sends_on_enter=_SENDS, optional=True),
        *sync_and_async(_BETA, "Messages.stream", "chat", sends_on_enter=_SENDS, optional=True),
    )
    attempt_hooks = (
        AttemptHook("anthropic._base_client", "SyncAPIClient._attempt_request", _status),
        AttemptHook("anthropic._base_client", "AsyncAPIClient._attempt_request", _status, is_async=True),
    )

    def provider_for(self, base_url: str) -> str | None:
        return _provider_for(base_url)

    def patches(self) -> tuple[Patch, ...]:
        return (Patch("anthropic._base_client", "start_api_call_span", _suppress_sdk_span),)

    def read(self, method: Method, request: Request, response: Any) -> Reading:
        if method.api == _COUNT:
            counted = getattr(response, "input_tokens", None)
            return Reading(None, free=True, counted_tokens=counted if type(counted) is int else None)
        usage = getattr(response, "usage", None)
        model = getattr(response, "model", None)
        output = getattr(response, "content", None)
        if usage is None:
            return Reading(None, response_model=model, output=output)
        return _reading(values(usage), model, output)

    def stream_reader(self, method: Method, request: Request) -> _MessagesStream:
        return _MessagesStream(request)
