"""LLM calls seen on the wire: the requests an HTTP client sends to a known provider API.

The SDK integrations record the calls made through an SDK's methods. Libraries that call a
provider's HTTP API some other way (LiteLLM posts through an SDK client's low-level ``post()``
or its own httpx handlers, and signs Bedrock requests itself) never call those methods. The
HTTP client integrations (``integrations/httpx.py`` and friends) hand every request to
``begin`` here: a request whose path is not a provider API's (``_wire_routes``) costs one path
check and goes on untouched. A request to one is recorded as a call through the same engine, priced by the
same rule and read by the same readers as the provider's SDK integration, from the provider's
own response body (JSON, server-sent events or AWS event stream), never a library's
re-normalised usage.

Never twice: a request sent while an SDK integration's call is in flight (the openai SDK's
``create``, say) belongs to that call and is left alone. A request sent while a relayed call is
in flight (``litellm.completion``, see ``tokentrace._core.relay``) is one of its attempts: read
here, accounted by that call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tokentrace._core import engine as _engine
from tokentrace._core import gate as _gate
from tokentrace._core.call import _ACTIVE_CALL, Call, in_flight, leave
from tokentrace._core.integration import Method, ProviderIntegration, Request
from tokentrace._foundation.safety import failed, guarded
from tokentrace._telemetry import providers as _telemetry
from tokentrace.integrations import host_of
from tokentrace.integrations._wire_bodies import (
    Body,
    ProviderHTTPError,
    awatched,
    finalizer,
    json_object,
    watched,
)
from tokentrace.integrations._wire_routes import Route, may_route, route
from tokentrace.integrations.anthropic import AnthropicIntegration
from tokentrace.integrations.bedrock import BedrockIntegration
from tokentrace.integrations.google_genai import GoogleGenAIIntegration
from tokentrace.integrations.groq import GroqIntegration
from tokentrace.integrations.openai import OpenAIIntegration

if TYPE_CHECKING:
    from tokentrace._core.relay import Relayed

__all__ = [
    "Body",
    "Exchange",
    "ProviderHTTPError",
    "Route",
    "awatched",
    "begin",
    "finalizer",
    "may_route",
    "peek_url",
    "route",
    "watched",
]

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
        if route.family == "gemini" and _is_vertex(self.origin):
            provider = "gcp.vertex_ai"
        stream = route.method.streams or kwargs.get("stream") is True
        return Request(
            model=model if isinstance(model, str) else None,
            stream=stream,
            base_url=base_url,
            provider=provider,
            kwargs=kwargs,
        )


def begin(route_: Route, origin: str, body: bytes | dict[str, Any] | None) -> Exchange | None:
    """Open the call for one request to a provider API, or ``None`` when it is not to be
    recorded here (an SDK integration's call is in flight, tokentrace is off, or the body is not
    a JSON request). A budget that must stop the call raises ``BudgetExceeded`` here, before the
    request is sent: the one error tokentrace raises into a request, by design. Under a relayed
    call the request is an attempt of that call, which its budget already let through."""
    active = in_flight(_ACTIVE_CALL.get())
    if active is not None:
        if active.relay is None:
            return None
        return guarded("wire.attempt", _open_attempt, None, active.relay, route_, origin, body)
    if not _telemetry.state.settings.enabled:
        return None
    opened = guarded("wire.begin", _open_call, None, route_, origin, body)
    if opened is None:
        return None
    call, sent, data = opened
    if call.breach is not None:
        _gate.enforce(call, sent, data)
    return Exchange(call, route_)


def _open_call(
    route_: Route, origin: str, body: bytes | dict[str, Any] | None
) -> tuple[Call, Sent, dict[str, Any]] | None:
    """Read the request body and start its call, or ``None`` when the body is no such request."""
    data = json_object(body)
    if data is None or not _shaped(data, route_.needs):
        return None
    integration = _integration(route_, origin)
    sent = Sent(route_, origin, data)
    return _engine.start(integration, route_.method, sent.request(integration, data)), sent, data


def _open_attempt(
    relayed: Relayed, route_: Route, origin: str, body: bytes | dict[str, Any] | None
) -> Exchange | None:
    """Open one attempt of a relayed call, or ``None`` when the body is no such request."""
    data = json_object(body)
    if data is None or not _shaped(data, route_.needs):
        return None
    integration = _integration(route_, origin)
    request = Sent(route_, origin, data).request(integration, data)
    return Exchange(relayed.attempt(integration, route_.method, request), route_)


def _integration(route_: Route, origin: str) -> ProviderIntegration:
    family = route_.family
    if family == "openai":
        family = next((name for host, name in _OPENAI_DIALECTS if origin.endswith(host)), family)
    return FAMILIES[family]


def _shaped(data: Mapping[str, Any], needs: tuple[tuple[str, ...], ...]) -> bool:
    return any(all(key in data for key in keys) for keys in needs)


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
        call = self.call
        leave(call)
        if call.attempt_of is not None:
            call.attempt_of.status = status
        headers_ = {name.lower(): value for name, value in headers}
        return Body(self.call, self.route.family, self.route.body == "aws", status, headers_)

    def read(
        self, status: int, headers: Iterable[tuple[str, str]], content: bytes, decoded: bool = True
    ) -> None:
        """Complete the call from a response whose body the client has already read whole:
        decoded, or as sent (``decoded`` false: compressed when the server compressed it)."""
        body = self.responded(status, headers)
        if decoded:
            body.decoder = None
        body.feed(content)
        body.end("completed")


def _is_vertex(origin: str) -> bool:
    host = host_of(origin)
    return host is not None and host.provider == "gcp.vertex_ai"


# --- the HTTP clients' send, once for every client -------------------------------------------

Peek = Callable[[Any], "tuple[Route, str, bytes | dict[str, Any] | None] | None"]
"""A client's reading of its request object: (route, origin, body), or ``None`` when the
request is to no provider API this layer knows."""
Received = Callable[["Exchange", Any, Any], Any]
"""A client's reading of its response: whole, or behind a watcher when its send was asked to
stream (the third argument: whether it streams, or the whole call for ``whole_call``). ``None``
hands the application the response itself, anything else is handed back in its place (a proxy
of the response)."""
Streamed = Callable[[Any, "dict[str, Any]"], bool]
"""Whether a client's send leaves the response's body for the application to read, from the
request and the send's keyword arguments (else the client has read the body whole)."""


def _stream_keyword(request: Any, kwargs: dict[str, Any]) -> bool:
    """``send(request, stream=True)``, as httpx and requests say it."""
    return bool(kwargs.get("stream", False))


def _receive(
    received: Received,
    streamed: Streamed,
    exchange: Exchange,
    response: Any,
    request: Any,
    kwargs: dict[str, Any],
) -> Any:
    return received(exchange, response, streamed(request, kwargs))


def peek_url(method: str, url: object, body: object) -> tuple[Route, str, bytes | None] | None:
    """The provider API a request to ``url`` (a string) calls, its origin and body, or ``None``
    (most requests: one look at the method and one ``endswith`` on the URL). A body that is
    not bytes or text (a file or generator being uploaded) is no LLM call."""
    if method != "POST" or not isinstance(url, str) or not may_route(url.partition("?")[0]):
        return None
    parts = urlsplit(url)
    found = route(parts.path)
    if found is None:
        return None
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif not isinstance(body, bytes):
        return None
    host = parts.hostname or ""
    origin = f"{parts.scheme}://{host}:{parts.port}" if parts.port else f"{parts.scheme}://{host}"
    return found, origin, body


def _open(peek: Peek, request: Any) -> Exchange | None:
    """The exchange for ``request``, or ``None`` when it is not a call to record. Only a budget
    or limit that stops the call raises (``BudgetExceeded``, or the user's own callback's error)."""
    active = _ACTIVE_CALL.get()
    if active is not None and active.relay is None:
        return None  # an SDK integration's call: the SDK's own request, recorded there
    peeked = guarded("wire.open", peek, None, request)
    return None if peeked is None else begin(*peeked)


def sender(
    name: str, peek: Peek, received: Received, streamed: Streamed = _stream_keyword
) -> Callable[..., Any]:
    """The wrapper of a client's synchronous ``send(request, stream=...)`` (or of a send whose
    request says whether it streams: ``streamed``)."""

    def send(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _engine.is_live(name):
            return wrapped(*args, **kwargs)
        request = args[0] if args else kwargs["request"]
        exchange = _open(peek, request)
        if exchange is None:
            return wrapped(*args, **kwargs)
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as exc:
            guarded("wire.leave", leave, None, exchange.call)
            guarded("wire.failed", exchange.failed, None, exc)
            raise
        guarded("wire.leave", leave, None, exchange.call)
        handed = guarded(
            "wire.received", _receive, None, received, streamed, exchange, response, request, kwargs
        )
        return response if handed is None else handed

    return send


WholeCall = Callable[[tuple[Any, ...], dict[str, Any]], bool]
"""A client's cheap check of its send's arguments (``args``, ``kwargs``): whether the request may
be to a provider API (aiohttp's: a ``POST`` to a URL ending like one)."""


def async_sender(
    name: str, peek: Peek, received: Received, whole_call: WholeCall | None = None
) -> Callable[..., Any]:
    """The wrapper of a client's ``async send(request, stream=...)`` (``sender``, awaited).

    ``whole_call`` is for a client whose send takes no one request object (aiohttp's
    ``ClientSession._request(method, url, **options)``): a request that fails its cheap check is
    handed on as it is, the client's own coroutine with nothing of ours around it; for the rest,
    ``peek`` reads and ``received`` is handed the whole call, ``(instance, args, kwargs)``,
    instead of the request and the ``stream`` flag.
    """

    async def send(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _engine.is_live(name):
            return await wrapped(*args, **kwargs)
        call = (instance, args, kwargs) if whole_call else None
        exchange = _open(peek, call if whole_call else (args[0] if args else kwargs["request"]))
        if exchange is None:
            return await wrapped(*args, **kwargs)
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as exc:
            guarded("wire.leave", leave, None, exchange.call)
            guarded("wire.failed", exchange.failed, None, exc)
            raise
        guarded("wire.leave", leave, None, exchange.call)
        told = call if whole_call else kwargs.get("stream", False)
        handed = guarded("wire.received", received, None, exchange, response, told)
        return response if handed is None else handed

    if whole_call is None:
        return send
    may_call = whole_call

    def send_call(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # Not a coroutine itself, and the cheap check first: other traffic pays that check alone,
        # and runs without a frame of ours around it.
        try:
            candidate = may_call(args, kwargs)
        except Exception as exc:  # noqa: BLE001  # the error boundary in place (every request runs this)
            failed("wire.open", exc)
            candidate = False
        if candidate and _engine.is_live(name):
            return send(wrapped, instance, args, kwargs)
        return wrapped(*args, **kwargs)

    return send_call
