"""boto3's Bedrock Runtime client: ``converse``, ``converse_stream``, ``invoke_model`` and
``invoke_model_with_response_stream``.

boto3 builds its client methods at run time, and every one of them goes through botocore's
``BaseClient._make_api_call(operation_name, api_params)``: tokentrace patches that one method
and records the four Bedrock Runtime operations, passing every other call (any service, any
operation) straight through.

Where usage comes from, without reading anything the application has not read:

- ``Converse``: the response's ``usage``; ``ConverseStream``: the ``metadata`` event's ``usage``.
- ``InvokeModel``: Bedrock's ``x-amzn-bedrock-*-token-count`` response headers, the same for
  every model family (the body, a stream the application reads, is left alone).
- ``InvokeModelWithResponseStream``: the ``amazon-bedrock-invocationMetrics`` that Bedrock adds
  to the last chunk.

As with Anthropic, Bedrock's input count excludes cache reads and writes; tokentrace adds them.
A model id that is an ARN (an inference profile, a foundation model) is priced by the model
its resource id names (``us.anthropic.claude-...``); an application inference profile names
none: map it with ``pricing.Alias``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tokentrace.integrations import (
    AttemptHook,
    Method,
    Patch,
    ProviderIntegration,
    Reading,
    Request,
    Usage,
    UsageError,
    number,
    reported,
    values,
)

_CLIENT = "botocore.client"
_SERVICE = "bedrock-runtime"

CONVERSE = Method(_CLIENT, "BaseClient._make_api_call", "chat", api="converse")
CONVERSE_STREAM = Method(_CLIENT, "BaseClient._make_api_call", "chat", api="converse-stream", streams=True)
INVOKE = Method(_CLIENT, "BaseClient._make_api_call", "chat", api="invoke")
INVOKE_EMBEDDINGS = Method(_CLIENT, "BaseClient._make_api_call", "embeddings", api="invoke")
INVOKE_STREAM = Method(_CLIENT, "BaseClient._make_api_call", "chat", api="invoke-stream", streams=True)
_OPERATIONS = {
    "Converse": CONVERSE,
    "ConverseStream": CONVERSE_STREAM,
    "InvokeModel": INVOKE,
    "InvokeModelWithResponseStream": INVOKE_STREAM,
}
_STREAM_KEY = {"converse-stream": "stream", "invoke-stream": "body"}
_METRICS = b"amazon-bedrock-invocationMetrics"


def bedrock_usage(
    u: Any, input_key: str, output_key: str, cache_read_key: str, cache_write_key: str, outputs: bool = True
) -> Usage:
    """Bedrock usage under the given names; the input total adds the cache reads and writes.

    The input and output counts are always reported (a missing one is a ``UsageError``), but an
    embedding generates nothing and reports no output count (``outputs`` false: 0, exactly); the
    cache counts are 0 when absent.
    """
    cache_read = number(u.get(cache_read_key), cache_read_key)
    cache_write = number(u.get(cache_write_key), cache_write_key)
    output = u.get(output_key)
    uncached = reported(u.get(input_key), input_key)
    if uncached < 0:  # named here: the input total below adds the cache counts to it
        raise UsageError(f"{input_key} is negative ({uncached})")
    return Usage(
        input_tokens=uncached + cache_read + cache_write,
        output_tokens=reported(output, output_key) if outputs else number(output, output_key),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def _converse_usage(usage: object) -> Usage:
    return bedrock_usage(
        values(usage), "inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens"
    )


def _header_usage(response: Any, outputs: bool) -> Usage | None:
    headers = values(values(values(response).get("ResponseMetadata")).get("HTTPHeaders"))
    if headers.get(_INPUT_HEADER) is None:
        return None
    counts = {name: _integer(headers.get(name)) for name in _HEADERS}
    return bedrock_usage(counts, _INPUT_HEADER, _OUTPUT_HEADER, _READ_HEADER, _WRITE_HEADER, outputs)


_INPUT_HEADER = "x-amzn-bedrock-input-token-count"
_OUTPUT_HEADER = "x-amzn-bedrock-output-token-count"
_READ_HEADER = "x-amzn-bedrock-cache-read-input-token-count"
_WRITE_HEADER = "x-amzn-bedrock-cache-write-input-token-count"
_HEADERS = (_INPUT_HEADER, _OUTPUT_HEADER, _READ_HEADER, _WRITE_HEADER)


def _integer(text: object) -> object:
    """A header's text as an int when it is one (anything else is left for ``number`` to reject)."""
    if isinstance(text, str) and text.strip().isdigit():
        return int(text)
    return text


def priced_model(model_id: str) -> str:
    """The model an ARN names (``arn:aws:bedrock:...:inference-profile/us.anthropic.claude-...``)."""
    if model_id.startswith("arn:") and "/" in model_id:
        return model_id.rsplit("/", 1)[1]
    return model_id


class _ConverseStream:
    """The ``metadata`` event carries the usage."""

    __slots__ = ("model", "usage")

    def __init__(self, model: str | None) -> None:
        self.model = model
        self.usage: object = None

    def feed(self, event: Any) -> None:
        metadata = event.get("metadata") if type(event) is dict else None
        if metadata is not None:
            self.usage = metadata.get("usage")

    def result(self) -> Reading:
        return Reading(
            _converse_usage(self.usage) if self.usage is not None else None, response_model=self.model
        )


class _InvokeStream:
    """Bedrock adds ``amazon-bedrock-invocationMetrics`` to the last chunk's JSON; only a chunk
    that mentions it is parsed."""

    __slots__ = ("metrics", "model")

    def __init__(self, model: str | None) -> None:
        self.model = model
        self.metrics: object = None

    def feed(self, event: Any) -> None:
        chunk = event.get("chunk") if type(event) is dict else None
        data = chunk.get("bytes") if type(chunk) is dict else None
        if type(data) is bytes and _METRICS in data:
            self.metrics = json.loads(data).get(_METRICS.decode())

    def result(self) -> Reading:
        if self.metrics is None:
            return Reading(None, response_model=self.model)
        usage = bedrock_usage(
            values(self.metrics),
            "inputTokenCount",
            "outputTokenCount",
            "cacheReadInputTokenCount",
            "cacheWriteInputTokenCount",
        )
        return Reading(usage, response_model=self.model)


def _status(result: Any) -> int | None:
    # ``Endpoint._do_get_response`` returns ((http_response, parsed), None) or (None, error).
    if isinstance(result, tuple) and result and isinstance(result[0], tuple) and result[0]:
        return getattr(result[0][0], "status_code", None)
    return None


class BedrockIntegration(ProviderIntegration):
    name = "bedrock"
    distribution = "botocore"
    module = "botocore.client"
    min_version = (1, 34)
    provider = "aws.bedrock"
    attempt_hooks = (AttemptHook("botocore.endpoint", "Endpoint._do_get_response", _status),)

    def patches(self) -> tuple[Patch, ...]:
        from tokentrace.integrations import call_wrapper

        calls = {method: call_wrapper(self, method) for method in (*_OPERATIONS.values(), INVOKE_EMBEDDINGS)}

        def make_api_call(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            operation = args[0] if args else kwargs.get("operation_name")
            method = _OPERATIONS.get(operation) if isinstance(operation, str) else None
            params = args[1] if len(args) > 1 else kwargs.get("api_params")
            if method is None or not isinstance(params, dict) or _service(instance) != _SERVICE:
                return wrapped(*args, **kwargs)
            if method is INVOKE and "embed" in str(params.get("modelId", "")):
                method = INVOKE_EMBEDDINGS
            send: Callable[..., Any] = lambda **sent: wrapped(operation, sent)  # noqa: E731
            return calls[method](send, instance, (), dict(params))

        return (Patch(_CLIENT, "BaseClient._make_api_call", make_api_call),)

    def request(self, method: Method, instance: Any, kwargs: Any) -> Request:
        model = kwargs.get("modelId")
        meta = getattr(instance, "meta", None)
        url = getattr(meta, "endpoint_url", None)
        return Request(
            model=model if isinstance(model, str) else None,
            stream=method.streams,
            base_url=url if isinstance(url, str) else None,
            kwargs=kwargs,
        )

    def read(self, method: Method, request: Request, response: Any) -> Reading:
        model = priced_model(request.model) if request.model else None
        if method.api == "converse":
            usage = values(response).get("usage")
            return Reading(_converse_usage(usage) if usage is not None else None, response_model=model)
        return Reading(
            _header_usage(response, outputs=method.operation != "embeddings"), response_model=model
        )

    def stream_reader(self, method: Method, request: Request) -> _ConverseStream | _InvokeStream:
        model = priced_model(request.model) if request.model else None
        return _ConverseStream(model) if method.api == "converse-stream" else _InvokeStream(model)

    def attach_stream(self, method: Method, response: Any, wrap: Callable[[Any], Any]) -> Any:
        key = _STREAM_KEY[method.api]
        response[key] = wrap(response[key])
        return response


def _service(client: Any) -> str | None:
    model = getattr(getattr(client, "meta", None), "service_model", None)
    return getattr(model, "service_name", None)
