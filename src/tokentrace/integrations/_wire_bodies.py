"""The bodies of provider responses seen on the wire, read as their SDK integrations read them.

``Body`` watches one response body, as the client reads it whole or as the application reads it
piece by piece, and completes its call once. ``Payload`` lets the SDK integrations' readers read
a JSON object as they read an SDK's response objects, so a call seen on the wire is read by the
same rules as one seen through the SDK.
"""

from __future__ import annotations

import base64
import json
import re
import weakref
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from typing import Any, ClassVar

from tokentrace._core import engine as _engine
from tokentrace._core.attempts import ProviderStreamError
from tokentrace._core.call import Call
from tokentrace._core.integration import Reading, StreamReader
from tokentrace._foundation.safety import guarded

# A request body larger than this is not read (no LLM request is near it); a response body
# read in pieces is kept up to this much to be parsed at its end.
MAX_BODY = 64 * 1024 * 1024


class ProviderHTTPError(Exception):
    """The provider answered a call seen on the wire with an HTTP error status (no usage)."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


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


def json_object(body: bytes | dict[str, Any] | None) -> dict[str, Any] | None:
    """A body as a JSON object, or ``None``. A request body the client was handed as an object
    (aiohttp's ``json=``), and serialises only as it sends it, is that object already."""
    if isinstance(body, dict):
        return body
    if not body or len(body) > MAX_BODY:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


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

    def __init__(self, call: Call, family: str, aws: bool, status: int, headers: Mapping[str, str]) -> None:
        self.call = call
        self.family = family
        self.status = status
        self.headers = headers
        aws = aws or "amazon.eventstream" in headers.get("content-type", "")
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
            if events.failed is not None:
                self._broken()
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
                if events.failed is not None:
                    self._broken()
                return
        self.size += len(data)
        if self.size <= MAX_BODY:
            self.chunks.append(data)

    def _broken(self) -> None:
        attempt = self.call.attempt_of
        if attempt is not None:
            attempt.broken = True

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
            if error is None and events.failed is not None:
                error = ProviderStreamError(events.failed)
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
        data = json_object(b"".join(self.chunks))
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

    __slots__ = ("aws", "buffer", "data", "failed", "family", "reader")

    def __init__(self, kind: str, reader: StreamReader, family: str) -> None:
        self.reader = reader
        self.family = family
        self.buffer = b""
        self.data: list[bytes] = []
        self.aws: Any = _aws_buffer() if kind == "aws" else None
        self.failed: str | None = None
        """The provider's name for the error an event of the stream reported, if one did."""

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
            error = data.get("error")
            if type(error) is dict:
                # An error event (Anthropic's {"type": "error", ...}, OpenAI's and Gemini's error object).
                kind = error.get("type") or error.get("status") or "error"
                self.failed = kind if isinstance(kind, str) else "error"
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


def watched(chunks: Iterable[bytes], body: Body) -> Iterator[bytes]:
    """``chunks`` (a response's body, as the client reads it), each fed to ``body`` as it passes;
    the body ends with them: completed, or with the error reading them raised."""
    try:
        for chunk in chunks:
            guarded("wire.feed", body.feed, None, chunk)
            yield chunk
    except GeneratorExit:
        raise
    except BaseException as exc:
        guarded("wire.end", body.end, None, "error", exc)
        raise
    guarded("wire.end", body.end, None, "completed")


async def awatched(chunks: AsyncIterable[bytes], body: Body) -> AsyncIterator[bytes]:
    """``watched``, for a body read asynchronously."""
    try:
        async for chunk in chunks:
            guarded("wire.feed", body.feed, None, chunk)
            yield chunk
    except GeneratorExit:
        raise
    except BaseException as exc:
        guarded("wire.end", body.end, None, "error", exc)
        raise
    guarded("wire.end", body.end, None, "completed")


def finalizer(owner: object, body: Body) -> None:
    """End ``body`` as abandoned if ``owner`` (the proxy of its stream) is dropped unfinished."""
    weakref.finalize(owner, _abandoned, body)


def _abandoned(body: Body) -> None:
    guarded("wire.abandoned", body.end, None, "abandoned")
