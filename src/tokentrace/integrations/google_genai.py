"""The official ``google-genai`` SDK: ``models.generate_content``, ``generate_content_stream``
and ``embed_content``, on ``genai.Client`` and its ``aio`` client, for the Gemini API and
Vertex AI.

tokentrace patches the SDK's per-request methods (``Models._generate_content`` and friends),
not the public ones: with automatic function calling one public ``generate_content`` call
makes several API calls, and each is billed.

Gemini's ``usage_metadata``: ``prompt_token_count`` includes ``cached_content_token_count``;
``tool_use_prompt_token_count`` (the results of built-in tools, fed back as input) is billed as
input; ``candidates_token_count`` excludes ``thoughts_token_count``. In the OTel convention the
input total is prompt + tool-use prompt, the output total candidates + thoughts, with thoughts
as the reasoning subset. The ``*_tokens_details`` lists split those counts by modality: the
audio, image (and document) and video ones go into ``Usage.modalities``, for the models that
bill them at rates of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokentrace.integrations import (
    AttemptHook,
    Method,
    Modalities,
    ProviderIntegration,
    Reading,
    Request,
    Usage,
    count_text,
    field,
    number,
    reported,
    served_tier,
    values,
)

_MODELS = "google.genai.models"
_CLIENT = "google.genai._api_client"


def gemini_usage(metadata: object) -> Usage:
    """Gemini's JSON is protobuf's, which leaves out a count that is 0: an absent
    ``candidates_token_count`` (a reply blocked before any text), ``thoughts_token_count`` or
    cache count is 0, exactly. A prompt is never empty, so an absent ``prompt_token_count`` is a
    count not reported: a ``UsageError``."""
    u = values(metadata)
    prompt = reported(u.get("prompt_token_count"), "prompt_token_count")
    tool_use = number(u.get("tool_use_prompt_token_count"), "tool_use_prompt_token_count")
    thoughts = number(u.get("thoughts_token_count"), "thoughts_token_count")
    return Usage(
        input_tokens=prompt + tool_use,
        output_tokens=number(u.get("candidates_token_count"), "candidates_token_count") + thoughts,
        cache_read_tokens=number(u.get("cached_content_token_count"), "cached_content_token_count"),
        reasoning_tokens=thoughts,
        modalities=_modalities(u),
    )


# Gemini's modalities -> Modalities' kinds. A document (a PDF) is billed as images.
_KINDS = {"AUDIO": "audio", "IMAGE": "image", "DOCUMENT": "image", "VIDEO": "video"}
# Where the counts are, and what they are part of (the results of built-in tools are input).
_DETAILS = (
    ("prompt_tokens_details", "input"),
    ("tool_use_prompt_tokens_details", "input"),
    ("cache_tokens_details", "cache_read"),
    ("candidates_tokens_details", "output"),
)


def _modalities(u: Mapping[str, Any]) -> Modalities | None:
    """The audio, image and video counts in ``*_tokens_details`` (lists of modality and token
    count), or ``None`` when every count there is text (most calls)."""
    found: dict[str, int] = {}
    for key, part in _DETAILS:
        details = u.get(key)
        if not details or not isinstance(details, (list, tuple)):
            continue
        for detail in details:
            d = values(detail)
            kind = _KINDS.get(str(getattr(d.get("modality"), "value", d.get("modality"))))
            if kind is not None:
                name = f"{kind}_{part}"
                found[name] = found.get(name, 0) + number(d.get("token_count"), f"{key}.token_count")
    return Modalities(**found) if found else None


def service_tier(response: Any, metadata: object, request: Request) -> str | None:
    """The tier that served the call: the ``x-gemini-service-tier`` response header (Google's
    word, also when it served a priority request at the standard tier), else the usage's
    ``service_tier`` where the SDK keeps it, else the tier the request asked for."""
    headers = getattr(getattr(response, "sdk_http_response", None), "headers", None)
    tier = headers.get("x-gemini-service-tier") if isinstance(headers, Mapping) else None
    if tier is None:
        tier = values(metadata).get("service_tier")
    if tier is None:
        tier = field(request.kwargs.get("config"), "service_tier")
        if tier is None:
            return None  # most calls: the standard tier
    name = str(getattr(tier, "value", tier)).lower().removeprefix("service_tier_")
    return served_tier(name)


class _Stream:
    """Each chunk carries the usage so far; the last one, with the candidate's ``finish_reason``,
    the call's. The chunks before it report the prompt's count only: a stream that ends without
    that last chunk (a dropped connection, a stream closed early) has its output counted offline
    from the text it delivered, as an estimate."""

    __slots__ = ("finished", "metadata", "model", "pieces", "request", "response")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.model: str | None = None
        self.metadata: object = None
        self.response: object = None
        self.pieces: list[str] = []
        self.finished = False

    def feed(self, chunk: Any) -> None:
        metadata = getattr(chunk, "usage_metadata", None)
        if metadata is not None:
            self.metadata = metadata
        if self.model is None:
            self.model = getattr(chunk, "model_version", None)
            self.response = chunk  # its headers are the stream's
        for candidate in getattr(chunk, "candidates", None) or ():
            if getattr(candidate, "finish_reason", None) is not None:
                self.finished = True
            for part in field(candidate, "content", "parts") or ():
                text = getattr(part, "text", None)
                if text and type(text) is str:
                    self.pieces.append(text)

    def result(self) -> Reading:
        tier = service_tier(self.response, self.metadata, self.request)
        if self.finished:
            if self.metadata is None:
                return Reading(None, response_model=self.model, service_tier=tier)
            return Reading(gemini_usage(self.metadata), response_model=self.model, service_tier=tier)
        model = self.model or self.request.model or ""
        prompt = values(self.metadata).get("prompt_token_count")
        usage = Usage(
            input_tokens=number(prompt, "prompt_token_count")
            if prompt is not None
            else _contents_tokens(self.request.kwargs.get("contents"), model),
            output_tokens=count_text("".join(self.pieces), model),
        )
        return Reading(usage, response_model=self.model, estimated=True, service_tier=tier)


def _contents_tokens(contents: object, model: str) -> int:
    """An offline count of a request's ``contents``: a string, or contents and parts with text."""
    if isinstance(contents, str):
        return count_text(contents, model)
    total = 0
    for content in contents if isinstance(contents, (list, tuple)) else ():
        if isinstance(content, str):
            total += count_text(content, model)
            continue
        for part in field(content, "parts") or ():
            text = part if isinstance(part, str) else field(part, "text")
            if isinstance(text, str):
                total += count_text(text, model)
    return total


def _ok(result: Any) -> int:
    # ``_request_once`` returns only once the SDK's ``raise_for_response`` accepted the
    # response (an error status raises instead, and is recorded by its error class).
    return 200


class GoogleGenAIIntegration(ProviderIntegration):
    name = "google-genai"
    distribution = "google-genai"
    module = "google.genai"
    min_version = (1, 0)
    provider = "gcp.gemini"
    methods = (
        Method(_MODELS, "Models._generate_content", "chat"),
        Method(_MODELS, "AsyncModels._generate_content", "chat", is_async=True),
        Method(_MODELS, "Models._generate_content_stream", "chat", streams=True),
        Method(_MODELS, "AsyncModels._generate_content_stream", "chat", is_async=True, streams=True),
        Method(_MODELS, "Models._embed_content", "embeddings", api="embeddings"),
        Method(_MODELS, "AsyncModels._embed_content", "embeddings", is_async=True, api="embeddings"),
    )
    attempt_hooks = (
        AttemptHook(_CLIENT, "BaseApiClient._request_once", _ok),
        AttemptHook(_CLIENT, "BaseApiClient._async_request_once", _ok, is_async=True),
    )

    def request(self, method: Method, instance: Any, kwargs: Any) -> Request:
        model = kwargs.get("model")
        model = model.removeprefix("models/") if isinstance(model, str) else None
        vertex = getattr(getattr(instance, "_api_client", None), "vertexai", False) is True
        return Request(
            model=model,
            stream=method.streams,
            provider="gcp.vertex_ai" if vertex else None,
            kwargs=kwargs,
        )

    def read(self, method: Method, request: Request, response: Any) -> Reading:
        model = getattr(response, "model_version", None)
        if method.api == "embeddings":
            # Vertex AI reports each embedding's token count; the Gemini API reports none.
            tokens = [
                getattr(getattr(e, "statistics", None), "token_count", None)
                for e in getattr(response, "embeddings", None) or ()
            ]
            if tokens and all(isinstance(t, (int, float)) for t in tokens):
                return Reading(Usage(input_tokens=sum(number(t, "statistics.token_count") for t in tokens)))
            return Reading(None)
        metadata = getattr(response, "usage_metadata", None)
        tier = service_tier(response, metadata, request)
        if metadata is None:
            return Reading(None, response_model=model, service_tier=tier)
        output = getattr(response, "candidates", None)
        return Reading(gemini_usage(metadata), response_model=model, output=output, service_tier=tier)

    def stream_reader(self, method: Method, request: Request) -> _Stream:
        return _Stream(request)
