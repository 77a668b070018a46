"""What an integration is: a *description* of one SDK, which the engine turns into patches.

A provider integration lists the SDK methods that make LLM calls, the per-attempt method that
lets the engine count retries, and three readers: the request (model, streaming), a finished
response (usage, response model) and a stream (fed item by item). It makes no OpenTelemetry
calls, catches nothing and has no sync/async copies: the engine does all of that, once.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Protocol

from tokentrace._foundation import semconv as sc
from tokentrace._pricing.inferences import Inference
from tokentrace._tokens.usage import Usage


def base_url_of(resource: Any) -> str | None:
    """The base URL of a Stainless-style SDK resource's client, as a string."""
    client = getattr(resource, "_client", None)
    # ``_base_url`` is what the public ``base_url`` property returns; openai's property runs an
    # import statement on every read, which costs more than the rest of reading the request.
    url = getattr(client, "_base_url", None)
    if url is None:
        url = getattr(client, "base_url", None)
        if url is None:
            return None
    # No cache keyed by the URL object's id: it saved 10,724 instructions of a call's ~390,000
    # (2.75%, openai sync, callgrind), under the 5% a trick like that has to pay for.
    return str(url)


@dataclass(frozen=True, slots=True)
class Method:
    """An SDK method that makes one logical LLM call (``module`` and ``qualname`` to patch)."""

    module: str
    qualname: str
    operation: str
    is_async: bool = False
    api: str = ""
    """Which of the SDK's APIs this is, for an integration that reads several (e.g. ``responses``)."""
    streams: bool = False
    """The method always streams (``chat.stream()``, ``generate_content_stream``), whatever its
    arguments say."""
    sends_on_enter: str = ""
    """For a helper that returns a context manager and sends a streamed request only when it is
    entered (anthropic's ``messages.stream()``): the name of the manager's attribute holding the
    request, without its class prefix (``__api_request``). The call is recorded from the moment
    the request is sent, as a stream."""
    optional: bool = False
    """A method an older SDK may lack (a helper, token counting): skipped when missing."""
    positional: tuple[str, ...] = ()
    """The names of the parameters the method takes by position, for a library whose calls may
    pass them so (``litellm.completion(model, messages)``): the request is read from them as
    from keywords."""


def sync_and_async(
    module: str,
    qualname: str,
    operation: str,
    api: str = "",
    sends_on_enter: str = "",
    optional: bool = False,
) -> tuple[Method, Method]:
    """A Stainless-style SDK's method and its async twin (``X.create`` and ``AsyncX.create``)."""
    return (
        Method(module, qualname, operation, api=api, sends_on_enter=sends_on_enter, optional=optional),
        Method(
            module,
            f"Async{qualname}",
            operation,
            is_async=True,
            api=api,
            sends_on_enter=sends_on_enter,
            optional=optional,
        ),
    )


@dataclass(frozen=True, slots=True)
class AttemptHook:
    """The SDK method that sends one HTTP attempt; ``status`` reads the HTTP status from its result.

    Without ``status`` the attempt is noted as ``unknown``, for an SDK that reports the outcome
    later, through its own hooks (see ``tokentrace._core.call.settle_attempt``).
    """

    module: str
    qualname: str
    status: Callable[[Any], int | None] | None = None
    is_async: bool = False


@dataclass(frozen=True, slots=True)
class Patch:
    """Any other patch an integration needs: a wrapt wrapper for ``module``.``qualname``."""

    module: str
    qualname: str
    wrapper: Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]


@dataclass(slots=True)
class Request:
    """What the engine needs to know about a call before it is sent."""

    model: str | None
    stream: bool = False
    base_url: str | None = None
    provider: str | None = None
    """Overrides the integration's ``provider`` (e.g. an OpenAI-compatible gateway)."""
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Reading:
    """What a response (or a finished stream) says about the call."""

    usage: Usage | None
    response_model: str | None = None
    estimated: bool = False
    output: Any = None
    """The response's output messages, recorded only when content capture is on."""
    reported_cost: Decimal | None = None
    """A cost in USD the provider or gateway reported itself (used as is, not recomputed)."""
    free: bool = False
    """A call the provider does not bill (token counting): $0, status ``free``, no usage."""
    counted_tokens: int | None = None
    """What a token-counting call counted (not tokens the call consumed)."""
    billed: Usage | None = None
    """The tokens the provider charges for, when it reports them apart from the tokens it
    processed (Cohere's ``billed_units``): the cost is computed from these."""
    service_tier: str | None = None
    """The service tier the provider says it served the call at (OpenAI's and Gemini's ``flex``,
    ``priority``, Anthropic's ``fast``), when it is not the standard one: the call is priced at
    that tier's rates."""
    inferences: tuple[Inference, ...] = ()
    """Further inferences the call is billed for that the provider reports apart from ``usage``
    (Anthropic's compaction and advisor iterations): their tokens are added to the call's, and
    each is priced at its own model's rates."""


# A Stainless SDK's raw responses (``.with_raw_response`` and ``.with_streaming_response``).
_RAW = frozenset({"LegacyAPIResponse", "APIResponse", "AsyncAPIResponse"})

UNREAD: Any = object()
"""What ``ProviderIntegration.parsed`` returns for a raw response only the application can parse."""


class StreamReader(Protocol):
    """Accumulates what a stream reports; ``result`` may be called at any point (early close)."""

    def feed(self, item: Any) -> None: ...

    def result(self) -> Reading: ...


class Integration:
    """Base class of every integration, built-in or third-party (entry point group
    ``tokentrace.integrations``). On its own it only applies ``patches()``; an integration that
    records LLM calls is a ``ProviderIntegration``."""

    name: ClassVar[str]
    """The name ``tokentrace.instrument(name)`` takes."""
    distribution: ClassVar[str | None] = None
    """The PyPI distribution that must be installed, if any."""
    min_version: ClassVar[tuple[int, ...]] = ()
    module: ClassVar[str | None] = None
    """The SDK's module. ``instrument()`` with no names patches an SDK that is not imported yet
    when it is first imported, so it never imports an SDK the application does not use."""
    methods: ClassVar[Sequence[Method]] = ()
    """The SDK methods that make LLM calls (only a ``ProviderIntegration`` may list any)."""
    attempt_hooks: ClassVar[Sequence[AttemptHook]] = ()

    def patches(self) -> Sequence[Patch]:
        """Extra patches beyond the LLM methods and attempt hooks."""
        return ()


class ProviderIntegration(Integration, ABC):
    """An integration whose ``methods`` make LLM calls: it says how to read them."""

    provider: ClassVar[str] = ""
    """The default ``gen_ai.provider.name``."""
    service_tier_attribute: ClassVar[str] = sc.SERVICE_TIER
    """The call span attribute that names a non-standard service tier (``Reading.service_tier``)."""

    def request(self, method: Method, instance: Any, kwargs: Mapping[str, Any]) -> Request:
        """Read a call's model, streaming flag and base URL (the Stainless SDK layout by default)."""
        model = kwargs.get("model")
        url = base_url_of(instance)
        return Request(
            model=model if isinstance(model, str) else None,
            stream=method.streams or kwargs.get("stream") is True,
            base_url=url,
            provider=self.provider_for(url) if url is not None else None,
            kwargs=kwargs,
        )

    def provider_for(self, base_url: str) -> str | None:
        """The ``gen_ai.provider.name`` for calls to ``base_url``, when not ``provider``."""
        return None

    @abstractmethod
    def read(self, method: Method, request: Request, response: Any) -> Reading:
        """Read usage from a finished, non-streamed response."""

    @abstractmethod
    def stream_reader(self, method: Method, request: Request) -> StreamReader:
        """A fresh reader for one streamed response."""

    def usage_options(self, method: Method, request: Request) -> dict[str, Any] | None:
        """For a streamed request that does not ask for its usage: the arguments to add so that
        it does (``configure(request_stream_usage=True)``), or ``None`` (default: nothing to add).
        A stream that then reports usage in a chunk of its own, which the application did not
        ask for, has that chunk hidden from the application (see ``is_usage_only``)."""
        return None

    def is_usage_only(self, item: Any) -> bool:
        """Whether a stream item is the usage chunk that ``usage_options`` asked for."""
        return False

    def read_error(self, method: Method, request: Request, error: BaseException) -> Reading | None:
        """Usage carried by an error the SDK raised after a billed response (default: none)."""
        return None

    def parsed(self, request: Request, response: Any) -> Any:
        """The SDK object a raw response stands for, ``UNREAD``, or ``response`` itself.

        Stainless-generated SDKs (openai, anthropic, groq, ...) return a raw response object
        from ``.with_raw_response`` and ``.with_streaming_response`` methods. When its body has
        already been read and its ``parse()`` is a plain method, ``parse()`` builds the usual
        object and caches it, so the application's own ``parse()`` gets that same object. When
        only the application can parse it (the body is not read yet, or ``parse()`` is a
        coroutine, or it is a stream), this returns ``UNREAD``: tokentrace never reads or awaits
        a body on the application's behalf, and completes the call from the application's own
        ``parse()``; a stream that ``parse()`` returns is watched like any other.
        """
        if type(response).__name__ not in _RAW:
            return response
        parse = getattr(response, "parse", None)
        if not callable(parse):
            return response
        if request.stream or inspect.iscoroutinefunction(parse):
            return UNREAD
        closed = getattr(getattr(response, "http_response", None), "is_closed", None)
        if closed is False:
            return UNREAD
        return parse() if closed is True else response

    def attach_stream(self, method: Method, response: Any, wrap: Callable[[Any], Any]) -> Any:
        """Put the watched stream where the application will find it (default: the response is
        the stream; boto3's Bedrock responses are dicts holding it)."""
        return wrap(response)

    def is_stream(self, request: Request, response: Any) -> bool:
        """Whether ``response`` is a stream to proxy (default: the request asked for one and got
        the SDK's stream, not a raw response: the stream a raw response's ``parse()`` returns is
        watched when the application parses it)."""
        return request.stream and type(response).__name__ not in _RAW


class RelayIntegration(ProviderIntegration):
    """A library that sends its calls to the providers' HTTP APIs itself (LiteLLM): its methods
    make one logical call each, whose attempts (the library's own retries and fallbacks) are the
    provider API requests the HTTP client integrations see beneath it, each read there from the
    provider's own response. Such an integration only says which methods to wrap and how to read
    a call's request (``request``): nothing is read from what the library returns."""

    def read(self, method: Method, request: Request, response: Any) -> Reading:
        """Never used: a relayed call's usage is read from its requests on the wire."""
        return Reading(None)

    def stream_reader(self, method: Method, request: Request) -> StreamReader:
        """Never used: a relayed call's streams are read on the wire."""
        return _NoStream()


class _NoStream:
    __slots__ = ()

    def feed(self, item: Any) -> None:
        return None

    def result(self) -> Reading:
        return Reading(None)
