"""The official ``openai`` SDK: Chat Completions and Responses (``create``, ``parse``) and
Embeddings, sync and async."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlsplit

from tokentrace._foundation import semconv as sc
from tokentrace.integrations import (
    AttemptHook,
    Method,
    Modalities,
    ProviderIntegration,
    Reading,
    Request,
    Usage,
    count_chat_messages,
    count_text,
    counts,
    field,
    host_of,
    number,
    reported,
    served_tier,
    sync_and_async,
    values,
)

# Self-hosted servers recognised by their default port: Ollama's.
_SELF_HOSTED_PORTS = {11434: "ollama"}


@functools.lru_cache(maxsize=256)
def gateway_for(base_url: str) -> str | None:
    """The ``gen_ai.provider.name`` of an OpenAI-compatible endpoint, or ``None`` for any other
    (a proxy in front of OpenAI, a vLLM or SGLang server: priced as the SDK's own provider, or
    by a ``SelfHosted`` price matched on the base URL)."""
    host = host_of(base_url)
    if host is not None:
        return host.provider if host.openai_compatible else None
    try:
        port = urlsplit(base_url).port
    except ValueError:
        return None
    return _SELF_HOSTED_PORTS.get(port) if port is not None else None


def _status(response: Any) -> int | None:
    return getattr(response, "status_code", None)


def chat_usage(usage: object) -> Usage:
    """OpenAI usage: ``prompt_tokens`` already includes cached tokens. Chat and legacy
    Completions always report ``prompt_tokens`` and ``completion_tokens`` (0 when nothing was
    generated): a missing one is a ``UsageError``; the details are 0 when absent."""
    return _chat_usage(values(usage))


def _chat_usage(u: Mapping[str, Any]) -> Usage:
    prompt = values(u.get("prompt_tokens_details"))
    completion = values(u.get("completion_tokens_details"))
    if u.get("completion_tokens") is None and u.get("total_tokens") is not None:
        # Legacy Completions leave completion_tokens out when nothing was generated (a recorded
        # gpt-3.5-turbo-instruct echo: prompt 11, total 11): the total says how many.
        u = {**u, "completion_tokens": _generated(u)}
    inp, out = counts(u, _TOTALS, required=2)
    read, write = counts(prompt, _PROMPT_DETAILS, "prompt_tokens_details.")
    (reasoning,) = counts(completion, _COMPLETION_DETAILS, "completion_tokens_details.")
    if prompt.get("audio_tokens") or completion.get("audio_tokens"):
        # Audio models (gpt-audio) bill audio tokens at rates of their own.
        audio = Modalities(
            audio_input=number(prompt.get("audio_tokens"), "prompt_tokens_details.audio_tokens"),
            audio_output=number(completion.get("audio_tokens"), "completion_tokens_details.audio_tokens"),
        )
        return Usage(inp, out, read, write, 0, reasoning, modalities=audio)
    return Usage(inp, out, read, write, 0, reasoning)


_TOTALS = ("prompt_tokens", "completion_tokens")


def _generated(u: Mapping[str, Any]) -> int | None:
    """``total_tokens`` less ``prompt_tokens``, or ``None`` without a prompt count."""
    prompt = u.get("prompt_tokens")
    if prompt is None:
        return None
    return number(u.get("total_tokens"), "total_tokens") - number(prompt, "prompt_tokens")


_PROMPT_DETAILS = ("cached_tokens", "cache_write_tokens")
_COMPLETION_DETAILS = ("reasoning_tokens",)


def reported_cost(usage: object) -> Decimal | None:
    """The cost a gateway reported in ``usage.cost`` (OpenRouter), in USD, or ``None``.

    With bring-your-own-key (``is_byok``), ``cost`` is the gateway's fee and the upstream
    provider bills ``cost_details.upstream_inference_cost`` to your key: both are yours to pay.
    """
    return _reported_cost(values(usage))


def _reported_cost(u: Mapping[str, Any]) -> Decimal | None:
    if u.get("cost") is None:
        return None
    cost = _money(u.get("cost"))
    if cost is None:
        return None
    if u.get("is_byok") is True:
        upstream = _money(field(u.get("cost_details"), "upstream_inference_cost"))
        if upstream is not None:
            cost += upstream
    return cost


def _money(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def responses_usage(usage: object, output: object = None) -> Usage:
    """Responses API usage: ``input_tokens`` includes cached tokens and cache writes (reported
    for models that bill them, in ``input_tokens_details.cache_write_tokens``), ``output_tokens``
    reasoning. The web and file searches the response ran are its ``output`` items of type
    ``web_search_call`` and ``file_search_call``: each tool call is billed."""
    u = values(usage)
    inp = values(u.get("input_tokens_details"))
    web = files = 0
    if output:
        for item in output if isinstance(output, (list, tuple)) else ():
            kind = values(item).get("type")
            if kind == "web_search_call":
                web += 1
            elif kind == "file_search_call":
                files += 1
    return Usage(
        # Always reported (a missing one is a UsageError); the details are 0 when absent.
        input_tokens=reported(u.get("input_tokens"), "input_tokens"),
        output_tokens=reported(u.get("output_tokens"), "output_tokens"),
        cache_read_tokens=number(inp.get("cached_tokens"), "input_tokens_details.cached_tokens"),
        cache_write_tokens=number(inp.get("cache_write_tokens"), "input_tokens_details.cache_write_tokens"),
        reasoning_tokens=number(
            field(u.get("output_tokens_details"), "reasoning_tokens"),
            "output_tokens_details.reasoning_tokens",
        ),
        web_search_requests=web,
        file_search_requests=files,
    )


def embeddings_usage(usage: object) -> Usage:
    """Embeddings usage: input only. An embedding generates nothing, so there is no output count
    to report (0 is exact); a missing ``prompt_tokens`` is a ``UsageError``."""
    return Usage(input_tokens=reported(values(usage).get("prompt_tokens"), "prompt_tokens"))


class _ResponsesStream:
    """The ``response.completed`` (or ``.incomplete``/``.failed``) event carries the final response."""

    __slots__ = ("model", "output", "tier", "usage")

    def __init__(self) -> None:
        self.model: str | None = None
        self.usage: object = None
        self.output: object = None
        self.tier: object = None

    def feed(self, event: Any) -> None:
        response = values(event).get("response")  # most events have none
        if response is None:
            return
        self.model = getattr(response, "model", None) or self.model
        self.tier = getattr(response, "service_tier", None) or self.tier
        usage = getattr(response, "usage", None)
        if usage is not None:
            self.usage = usage
            self.output = getattr(response, "output", None)

    def result(self) -> Reading:
        tier = served_tier(self.tier)
        if self.usage is None:
            return Reading(None, response_model=self.model, service_tier=tier)
        return Reading(responses_usage(self.usage, self.output), response_model=self.model, service_tier=tier)


class _ChatStream:
    """Chat Completions and legacy Completions streams.

    A stream that asked for usage (``stream_options={"include_usage": True}``) from a server that
    honours it (its chunks carry a ``usage`` field, null until the last) is read lightly: per
    chunk only ``usage``, and a count. Any other stream also keeps each chunk's text, for an
    offline count when no usage arrives. The choice is made on the first chunk.
    """

    __slots__ = ("chunks", "light", "model", "pieces", "request", "tier", "usage")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.model: str | None = None
        self.usage: object = None
        self.tier: object = None
        self.pieces: list[str] = []
        self.chunks = 0
        self.light: bool | None = None  # decided on the first chunk

    def feed(self, chunk: Any) -> None:
        # Runs once per chunk: keep it to the fewest attribute reads (each read of an SDK model's
        # attribute goes through pydantic's ``__getattr__`` hook and costs several type lookups).
        self.chunks += 1
        light = self.light
        if light is None:
            light = self.light = _asks_for_usage(self.request) and "usage" in _fields_set(chunk)
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = usage
            self.tier = getattr(chunk, "service_tier", None) or self.tier  # the final word
        if self.model is None:
            self.model = getattr(chunk, "model", None) or None
            self.tier = getattr(chunk, "service_tier", None)
        if light:
            return
        choices = getattr(chunk, "choices", None)
        if not choices:
            return
        for choice in choices:
            delta = getattr(choice, "delta", None)
            if delta is None:  # legacy Completions stream a ``text`` per choice
                text = getattr(choice, "text", None)
                if text:
                    self.pieces.append(text)
                continue
            content = getattr(delta, "content", None)
            if content and type(content) is str:  # some compatible APIs send a list of parts
                self.pieces.append(content)
            tool_calls = getattr(delta, "tool_calls", None)
            if tool_calls:
                for tool_call in tool_calls:
                    arguments = field(tool_call, "function", "arguments")
                    if arguments:
                        self.pieces.append(arguments)

    def result(self) -> Reading:
        tier = served_tier(self.tier)
        u = values(self.usage)
        inp, out = u.get("prompt_tokens"), u.get("completion_tokens")
        if inp is not None and out is not None:
            return Reading(
                _chat_usage(u), response_model=self.model, reported_cost=_reported_cost(u), service_tier=tier
            )
        # No usage (a stream cut or closed before its usage chunk, a server that sends none), or a
        # usage without its totals: what the server reported is kept, the rest counted offline.
        model = self.model or self.request.model or ""
        if inp is None:
            prompt = self.request.kwargs.get("prompt")
            inp = (
                count_text(prompt, model)
                if isinstance(prompt, str)
                else count_chat_messages(self.request.kwargs.get("messages"), model)
            )
        if out is None:
            # Read lightly (usage only): one token per chunk received.
            out = self.chunks if self.light else count_text("".join(self.pieces), model)
        usage = Usage(number(inp, "prompt_tokens"), number(out, "completion_tokens"))
        return Reading(usage, response_model=self.model, estimated=True, service_tier=tier)


def _asks_for_usage(request: Request) -> bool:
    """Whether the request set ``stream_options.include_usage``, as an argument or in ``extra_body``."""
    for source in (request.kwargs, request.kwargs.get("extra_body")):
        options = source.get("stream_options") if isinstance(source, dict) else None
        if isinstance(options, dict) and options.get("include_usage") is True:
            return True
    return False


def _fields_set(chunk: Any) -> set[str]:
    """The fields the server sent in ``chunk`` (pydantic's ``model_fields_set``), or none."""
    fields = getattr(chunk, "model_fields_set", None)
    return fields if isinstance(fields, set) else set()


class OpenAIIntegration(ProviderIntegration):
    name = "openai"
    distribution = "openai"
    module = "openai"
    min_version = (1, 40)
    provider = "openai"
    service_tier_attribute = sc.OPENAI_RESPONSE_SERVICE_TIER
    methods: ClassVar[Sequence[Method]] = (
        *sync_and_async("openai.resources.chat.completions", "Completions.create", "chat"),
        *sync_and_async("openai.resources.chat.completions", "Completions.parse", "chat"),
        *sync_and_async("openai.resources.responses", "Responses.create", "chat", api="responses"),
        *sync_and_async("openai.resources.responses", "Responses.parse", "chat", api="responses"),
        *sync_and_async(
            "openai.resources.completions", "Completions.create", "text_completion", api="completions"
        ),
        *sync_and_async("openai.resources.embeddings", "Embeddings.create", "embeddings", api="embeddings"),
    )
    attempt_hooks: ClassVar[Sequence[AttemptHook]] = (
        AttemptHook("openai._base_client", "SyncAPIClient._send_request", _status),
        AttemptHook("openai._base_client", "AsyncAPIClient._send_request", _status, is_async=True),
    )

    def provider_for(self, base_url: str) -> str | None:
        return gateway_for(base_url)

    def read(self, method: Method, request: Request, response: Any) -> Reading:
        model = getattr(response, "model", None)
        usage = getattr(response, "usage", None)
        if method.api == "responses":
            output = getattr(response, "output", None)
            tier = served_tier(getattr(response, "service_tier", None))
            return Reading(
                responses_usage(usage, output) if usage is not None else None,
                response_model=model,
                output=output,
                service_tier=tier,
            )
        u = values(usage)
        if method.api == "embeddings":
            return Reading(
                embeddings_usage(usage) if u.get("prompt_tokens") is not None else None, response_model=model
            )
        output = getattr(response, "choices", None)
        # Chat completions name their tier ("default" for most); legacy completions have no field.
        tier = getattr(response, "service_tier", None) if not method.api else None
        if tier is not None:
            tier = None if tier == "default" else served_tier(tier)  # "default" inline: most calls
        if u.get("prompt_tokens") is None and u.get("completion_tokens") is None:
            return Reading(None, response_model=model, output=output, service_tier=tier)
        return Reading(
            _chat_usage(u),
            response_model=model,
            output=output,
            reported_cost=_reported_cost(u),
            service_tier=tier,
        )

    def usage_options(self, method: Method, request: Request) -> dict[str, Any] | None:
        # Chat Completions and legacy Completions streams report usage only when asked; a
        # Responses stream always does (its response.completed event).
        if method.api not in ("", "completions") or _asks_for_usage(request):
            return None
        options = request.kwargs.get("stream_options")
        return {"stream_options": {**(options if isinstance(options, dict) else {}), "include_usage": True}}

    def is_usage_only(self, item: Any) -> bool:
        return not getattr(item, "choices", None) and getattr(item, "usage", None) is not None

    def read_error(self, method: Method, request: Request, error: BaseException) -> Reading | None:
        # LengthFinishReasonError / ContentFilterFinishReasonError from parse() carry the completion.
        completion = getattr(error, "completion", None)
        if completion is None:
            return None
        return self.read(method, request, completion)

    def stream_reader(self, method: Method, request: Request) -> _ChatStream | _ResponsesStream:
        if method.api == "responses":
            return _ResponsesStream()
        return _ChatStream(request)
