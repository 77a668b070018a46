"""LLM calls seen on the wire: the requests an HTTP client sends to a known provider API.

The SDK integrations record the calls made through an SDK's methods. Libraries that call a
provider's HTTP API some other way (LiteLLM posts through an SDK client's low-level ``post()``
or its own httpx handlers, and signs Bedrock requests itself) never call those methods. The
HTTP client integrations (``integrations/httpx.py`` and friends) hand every request to
``begin`` here: a request whose path is not a provider API's costs one path check and goes on
untouched. A request to one is recorded as a call through the same engine, priced by the
same rule and read by the same readers as the provider's SDK integration, from the provider's
own response body (JSON, server-sent events or AWS event stream), never a library's
re-normalised usage.

Never twice: a request sent while an SDK integration's call is in flight (the openai SDK's
``create``, say) belongs to that call and is left alone.
"""

from __future__ import annotations

import base64
import json
import re
import weakref
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import unquote

from tokentrace import _engine, _gate, _telemetry
from tokentrace._call import _ACTIVE_CALL, Call, leave
from tokentrace._safety import guarded
from tokentrace.integrations._base import Method, ProviderIntegration, Reading, Request, StreamReader
from tokentrace.integrations.anthropic import AnthropicIntegration
from tokentrace.integrations.bedrock import BedrockIntegration
from tokentrace.integrations.google_genai import GoogleGenAIIntegration
from tokentrace.integrations.groq import GroqIntegration
from tokentrace.integrations.openai import OpenAIIntegration

# A request body larger than this is not read (no LLM request is near it); a response body
# read in pieces is kept up to this much to be parsed at its end.
MAX_BODY = 64 * 1024 * 1024

_WIRE = "tokentrace.wire"  # the Method module of every call seen on the wire (never patched)


class ProviderHTTPError(Exception):
    """The provider answered a call seen on the wire with an HTTP error status (no usage)."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


# --- the provider APIs, by path --------------------------------------------------------------


def _method(operation: str, api: str = "", streams: bool = False) -> Method:
    return Method(_WIRE, f"{operation}.{api or 'default'}", operation, api=api, streams=streams)


@dataclass(frozen=True, slots=True)
class Route:
    """One provider API on the wire: how to name, read and price its calls."""

    family: str
    method: Method
    body: str
    """``aws`` for the AWS event stream of Bedrock's streaming APIs; ``json`` for the rest, whose
    bodies are read as their first bytes show them to be (see ``Body``)."""
    model: str | None = None
    """The model the path names (Gemini, Vertex, Bedrock); else the request body's ``model``."""
    prefix: str = ""
    """The path before the API's own part: with the origin, the call's base URL."""
    needs: tuple[tuple[str, ...], ...] = ((),)
    """The fields a request body of this API always has (one of these sets): an application's
    own endpoint that happens to end the same way (``/api/survey/responses``) is not taken for
    an LLM call."""


_OPENAI_SUFFIXES = (
    ("/chat/completions", _method("chat"), (("model", "messages"),)),
    # A Responses request may name a stored prompt instead of a model and input.
    ("/responses", _method("chat", "responses"), (("model", "input"), ("prompt",))),
    ("/completions", _method("text_completion", "completions"), (("model", "prompt"),)),
    ("/embeddings", _method("embeddings", "embeddings"), (("model", "input"),)),
)
_ANTHROPIC = _method("chat")
_GEMINI = {
    "generateContent": (_method("chat"), "json"),
    "streamGenerateContent": (_method("chat", streams=True), "json"),
    "embedContent": (_method("embeddings", "embeddings"), "json"),
    "batchEmbedContents": (_method("embeddings", "embeddings"), "json"),
}
_BEDROCK = {
    "converse": (_method("chat", "converse"), "json"),
    "converse-stream": (_method("chat", "converse-stream", streams=True), "aws"),
    "invoke": (_method("chat", "invoke"), "json"),
    "invoke-with-response-stream": (_method("chat", "invoke-stream", streams=True), "aws"),
}
_BEDROCK_EMBEDDINGS = _method("embeddings", "invoke")
# Every path an LLM API call can end with: the one check every other request pays.
_ENDINGS = (
    "/chat/completions",
    "/responses",
    "/completions",
    "/embeddings",
    "/v1/messages",
    "Content",
    "Contents",
    "/converse",
    "/converse-stream",
    "/invoke",
    "/invoke-with-response-stream",
    ":rawPredict",
    ":streamRawPredict",
)
_GEMINI_PATH = re.compile(r"^(?P<prefix>.*?)/models/(?P<model>[^/:]+):(?P<verb>\w+)$")
_BEDROCK_PATH = re.compile(r"^(?P<prefix>.*?)/model/(?P<model>[^/]+)/(?P<verb>[\w-]+)$")


def route(raw_path: str) -> Route | None:
    """The provider API a request's path calls (as sent: percent-encoded, without the query),
    or ``None`` (almost every request: one ``endswith``)."""
    if not raw_path.endswith(_ENDINGS):
        return None
    return _route(raw_path)


def _route(raw_path: str) -> Route | None:
    path = unquote(raw_path) if "%" in raw_path else raw_path
    if path.endswith("/v1/messages"):
        prefix = path[: -len("/v1/messages")]
        return Route("anthropic", _ANTHROPIC, "json", prefix=prefix, needs=(("model", "messages"),))
    for suffix, method, needs in _OPENAI_SUFFIXES:
        if path.endswith(suffix):
            return Route("openai", method, "json", prefix=path[: -len(suffix)], needs=needs)
    found = _GEMINI_PATH.match(path)
    if found is not None:
        verb = found["verb"]
        if verb in ("rawPredict", "streamRawPredict") and "/publishers/anthropic/" in path:
            # Claude on Vertex AI: the Messages API, the model in the path.
            return Route(
                "anthropic",
                _ANTHROPIC,
                "json",
                model=found["model"],
                prefix=found["prefix"],
                needs=(("messages",),),
            )
        entry = _GEMINI.get(verb)
        if entry is not None:
            return Route("gemini", entry[0], entry[1], model=found["model"], prefix=found["prefix"])
    # A Bedrock model id may be an ARN, its slashes percent-encoded: split the path as sent.
    found = _BEDROCK_PATH.match(raw_path)
    if found is not None:
        entry = _BEDROCK.get(found["verb"])
        if entry is not None:
            model = unquote(found["model"])
            method = _BEDROCK_EMBEDDINGS if entry[0].api == "invoke" and "embed" in model else entry[0]
            return Route("bedrock", method, entry[1], model=model, prefix=unquote(found["prefix"]))
    return None


# --- the providers' payloads, as their SDK integrations read them ----------------------------


class Payload(Mapping[str, Any]):
    """A JSON object read the way the SDK integrations read an SDK's response objects: fields as
    attributes or keys (``None`` when absent), nested objects as payloads, lists as lists."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self._fields = fields

    def _value(self, name: str) -> Any:
        return self._fields.get(name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _payload(type(self)._child, self._value(name))

    def get(self, name: str, default: Any = None) -> Any:
        value = _payload(type(self)._child, self._value(name))
        return default if value is None else value

    def __getitem__(self, name: str) -> Any:
        value = self._value(name)
        if value is None and name not in self._fields:
            raise KeyError(name)
        return _payload(type(self)._child, value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    @property
    def model_fields_set(self) -> set[str]:
        """The fields the server sent, as a pydantic model of the SDK would name them."""
        return set(self._fields)

    _child: ClassVar[type[Payload]]


_CAMEL = re.compile(r"_([a-z])")


class CamelPayload(Payload):
    """A JSON object whose fields the SDK names in snake case (Gemini's ``usageMetadata`` is the
    google-genai SDK's ``usage_metadata``)."""

    __slots__ = ()

    def _value(self, name: str) -> Any:
        fields = self._fields
        value = fields.get(name)
        if value is None and "_" in name:
            value = fields.get(_CAMEL.sub(lambda m: m.group(1).upper(), name))
        return value


Payload._child = Payload
CamelPayload._child = CamelPayload


def _payload(kind: type[Payload], value: Any) -> Any:
    if type(value) is dict:
        return kind(value)
    if type(value) is list:
        return [_payload(kind, item) for item in value]
    return value


class _Headers:
    """Response headers as google-genai's ``sdk_http_response`` holds them."""

    __slots__ = ("headers",)

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = headers


def _as_response(family: str, data: Any, headers: Mapping[str, str]) -> Any:
    """A parsed response body as the family's SDK integration reads it."""
    if family == "bedrock":
        # boto3 hands out plain dicts; InvokeModel's usage is in its response headers.
        out = dict(data) if isinstance(data, dict) else {}
        out["ResponseMetadata"] = {"HTTPHeaders": dict(headers)}
        return out
    if family == "gemini":
        payload = CamelPayload({**data, "sdk_http_response": None} if isinstance(data, dict) else {})
        return _GeminiResponse(payload, headers)
    return Payload(data if isinstance(data, dict) else {})


class _GeminiResponse(CamelPayload):
    """A Gemini response body with the response headers google-genai keeps beside it (the
    ``x-gemini-service-tier`` header names the tier that served the call)."""

    __slots__ = ("sdk_http_response",)

    def __init__(self, payload: CamelPayload, headers: Mapping[str, str]) -> None:
        super().__init__(payload._fields)
        self.sdk_http_response = _Headers(headers)


# --- the integrations that read each family, with the request read from the wire -------------


class _OnTheWire(ProviderIntegration):
    """A provider integration whose request comes from the wire (``instance`` is a ``Sent``)."""

    def request(self, method: Method, instance: Any, kwargs: Any) -> Request:
        sent: Sent = instance
        return sent.request(self, kwargs)


class _OpenAIWire(_OnTheWire, OpenAIIntegration):
    name = "wire:openai"


class _GroqWire(_OnTheWire, GroqIntegration):
    """Groq's OpenAI-compatible API, whose streams may report usage in ``x_groq.usage``."""

    name = "wire:groq"

    def patches(self) -> tuple[()]:
        return ()


class _AnthropicWire(_OnTheWire, AnthropicIntegration):
    name = "wire:anthropic"

    def patches(self) -> tuple[()]:
        return ()


class _GeminiWire(_OnTheWire, GoogleGenAIIntegration):
    name = "wire:google-genai"


class _BedrockWire(_OnTheWire, BedrockIntegration):
    name = "wire:bedrock"

    def patches(self) -> tuple[()]:
        return ()


FAMILIES: dict[str, ProviderIntegration] = {
    "openai": _OpenAIWire(),
    "anthropic": _AnthropicWire(),
    "gemini": _GeminiWire(),
    "bedrock": _BedrockWire(),
    "groq": _GroqWire(),
}
# Hosts whose OpenAI-compatible API has fields of its own, read by their SDK integration's readers.
_OPENAI_DIALECTS = (("api.groq.com", "groq"),)
_VERTEX_HOST = "aiplatform.googleapis.com"


@dataclass(slots=True)
class Sent:
    """One HTTP request to a provider API, as the HTTP client integration saw it."""

    route: Route
    origin: str
    """``scheme://host[:port]``."""
    body: dict[str, Any]

    @property
    def base_url(self) -> str:
        return self.origin + self.route.prefix

    def request(self, integration: ProviderIntegration, kwargs: Mapping[str, Any]) -> Request:
        route = self.route
        model = route.model if route.model is not None else kwargs.get("model")
        base_url = self.base_url
        provider = integration.provider_for(base_url)
        if route.family == "gemini" and _VERTEX_HOST in self.origin:
            provider = "gcp.vertex_ai"
        stream = route.method.streams or kwargs.get("stream") is True
        return Request(
            model if isinstance(model, str) else None,
            stream,
            base_url,
            provider,
            kwargs,
        )


def begin(route_: Route, origin: str, body: bytes | None) -> Exchange | None:
    """Open the call for one request to a provider API, or ``None`` when it is not to be
    recorded here (an SDK integration's call is in flight, tokentrace is off, or the body is not
    a JSON request). A budget that must stop the call raises ``BudgetExceeded`` here, before the
    request is sent: the one error tokentrace raises into a request, by design."""
    if _ACTIVE_CALL.get() is not None or not _telemetry.state.settings.enabled:
        return None
    data = guarded("wire.request", _json_object, None, body)
    if data is None or not _shaped(data, route_.needs):
        return None
    family = route_.family
    if family == "openai":
        family = next((name for host, name in _OPENAI_DIALECTS if origin.endswith(host)), family)
    integration = FAMILIES[family]
    sent = Sent(route_, origin, data)
    call = guarded(
        "wire.begin", _engine.start, None, integration, route_.method, sent.request(integration, data)
    )
    if call is None:
        return None
    if call.breach is not None:
        _gate.enforce(call, sent, data)
    return Exchange(call, route_)


def _shaped(data: Mapping[str, Any], needs: tuple[tuple[str, ...], ...]) -> bool:
    return any(all(key in data for key in keys) for keys in needs)


def _json_object(body: bytes | None) -> dict[str, Any] | None:
    if not body or len(body) > MAX_BODY:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


@dataclass(slots=True)
class Exchange:
    """One recorded request to a provider API, from the moment it is sent."""

    call: Call
    route: Route

    def failed(self, error: BaseException) -> None:
        """The request raised (no response: a connection error, a timeout, a cancellation)."""
        leave(self.call)
        _engine.complete(self.call, None, error=error)

    def responded(self, status: int, headers: Iterable[tuple[str, str]]) -> Body:
        """The response's status and headers are in: leave the call's context and return the
        watcher of its body (which the application may read later)."""
        leave(self.call)
        return Body(self.call, self.route, status, {name.lower(): value for name, value in headers})

    def read(self, status: int, headers: Iterable[tuple[str, str]], content: bytes) -> None:
        """Complete the call from a response whose body the client has already read whole
        (and decoded)."""
        body = self.responded(status, headers)
        body.decoder = None
        body.feed(content)
        body.end("completed")


class Body:
    """Watches one response body as the application reads it, and completes the call once: when
    the body ends, is closed, fails, or is dropped.

    A text body is read as its first bytes show it is: ``{`` a JSON object, ``[`` a JSON array
    (Gemini's stream without ``alt=sse``), anything else server-sent events. Recorded and real
    servers alike send streams as ``application/json`` or with no content type at all.
    """

    __slots__ = (
        "__weakref__",
        "call",
        "chunks",
        "decoder",
        "done",
        "events",
        "family",
        "headers",
        "kind",
        "size",
        "status",
    )

    def __init__(self, call: Call, route_: Route, status: int, headers: Mapping[str, str]) -> None:
        self.call = call
        self.family = route_.family
        self.status = status
        self.headers = headers
        content_type = headers.get("content-type", "")
        aws = route_.body == "aws" or "amazon.eventstream" in content_type
        self.kind: str | None = "aws" if aws and status < 400 else None
        self.chunks: list[bytes] = []
        self.size = 0
        self.done = False
        encoding = headers.get("content-encoding", "identity").lower()
        self.decoder: Any = (
            zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding in ("gzip", "deflate", "x-gzip") else None
        )
        self.events: _Events | None = None
        if self.kind == "aws":
            self._stream_events("aws")

    def _stream_events(self, kind: str) -> _Events:
        call = self.call
        events = self.events = _Events(
            kind, call.integration.stream_reader(call.method, call.request), self.family
        )
        return events

    def feed(self, data: bytes) -> None:
        """Bytes of the body as they arrive (as sent: compressed when the server compressed)."""
        if self.done or not data:
            return
        if self.decoder is not None:
            data = self.decoder.decompress(data)
        events = self.events
        if events is not None:
            events.feed(data)
            return
        if self.kind is None:
            start = data.lstrip()[:1]
            if not start:
                self.chunks.append(data)
                return
            self.kind = "json" if start == b"{" else "json-array" if start == b"[" else "sse"
            if self.kind == "sse":
                events = self._stream_events("sse")
                events.feed(b"".join(self.chunks) + data)
                self.chunks = []
                return
        self.size += len(data)
        if self.size <= MAX_BODY:
            self.chunks.append(data)

    def end(self, how: str, error: BaseException | None = None) -> None:
        """The body ended (``completed``), was closed early (``closed``), failed (``error``) or was
        dropped unread (``abandoned``): complete the call from what it said."""
        if self.done:
            return
        self.done = True
        call = self.call
        if self.status >= 400:
            _engine.complete(call, None, error=error or ProviderHTTPError(self.status))
            return
        events = self.events
        if events is not None:
            events.flush()
            _engine.complete_with(call, events.reader.result, error=error, stream_end=how)
            return
        if self.kind == "json-array":
            # Gemini's stream as one JSON array: its items are the stream's chunks.
            reader = call.integration.stream_reader(call.method, call.request)
            for item in _json_array(b"".join(self.chunks)):
                reader.feed(_as_response(self.family, item, self.headers))
            _engine.complete_with(call, reader.result, error=error, stream_end=how)
            return
        if error is not None or how != "completed":
            # The body was not read to its end: what it said about usage is unknown.
            _engine.complete(call, Reading(None), error=error)
            return
        data = _json_object(b"".join(self.chunks))
        self.chunks = []
        if data is None:
            _engine.complete(call, None, problem="the response body is not a JSON object")
            return
        response = _as_response(self.family, data, self.headers)
        _engine.complete_with(call, call.integration.read, call.method, call.request, response)


def _json_array(text: bytes) -> list[Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return []
    if isinstance(data, list):
        return data
    return [data] if isinstance(data, dict) else []


class _Events:
    """Splits a streamed body into events (server-sent events, or AWS event-stream messages)
    and feeds each to the stream reader of the call's SDK integration."""

    __slots__ = ("aws", "buffer", "data", "family", "reader")

    def __init__(self, kind: str, reader: StreamReader, family: str) -> None:
        self.reader = reader
        self.family = family
        self.buffer = b""
        self.data: list[bytes] = []
        self.aws: Any = _aws_buffer() if kind == "aws" else None

    def feed(self, data: bytes) -> None:
        if self.aws is not None:
            self.aws.add_data(data)
            for message in self.aws:
                self._aws_event(message)
            return
        buffer = self.buffer + data
        *lines, self.buffer = buffer.split(b"\n")
        for line in lines:
            self._line(line.rstrip(b"\r"))

    def flush(self) -> None:
        if self.buffer:
            self._line(self.buffer.rstrip(b"\r"))
            self.buffer = b""
        self._line(b"")

    def _line(self, line: bytes) -> None:
        if not line:
            if self.data:
                text = b"\n".join(self.data)
                self.data = []
                self._event(text)
            return
        if line.startswith(b"data:"):
            self.data.append(line[5:].lstrip(b" "))

    def _event(self, text: bytes) -> None:
        if text == b"[DONE]":
            return
        try:
            data = json.loads(text)
        except ValueError:
            return
        if isinstance(data, dict):
            self.reader.feed(_as_response(self.family, data, {}))

    def _aws_event(self, message: Any) -> None:
        headers = message.headers
        if headers.get(":message-type") != "event":
            return
        kind = headers.get(":event-type")
        try:
            payload = json.loads(message.payload)
        except ValueError:
            return
        if kind == "chunk" and isinstance(payload, dict) and isinstance(payload.get("bytes"), str):
            payload = {"bytes": base64.b64decode(payload["bytes"])}
        self.reader.feed({kind: payload})


def _aws_buffer() -> Any:
    from botocore.eventstream import EventStreamBuffer

    return EventStreamBuffer()


def finalizer(owner: object, body: Body) -> None:
    """End ``body`` as abandoned if ``owner`` (the proxy of its stream) is dropped unfinished."""
    weakref.finalize(owner, _abandoned, body)


def _abandoned(body: Body) -> None:
    guarded("wire.abandoned", body.end, None, "abandoned")
