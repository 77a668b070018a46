"""The official ``cohere`` SDK's v2 client (``cohere.ClientV2``, ``cohere.AsyncClientV2``, or
``client.v2``): ``chat``, ``chat_stream`` and ``embed``, sync and async.

Cohere reports two counts: ``usage.tokens`` (what the model read and wrote) and
``usage.billed_units`` (what Cohere charges for; a system preamble, for example, is read but
not billed). The span and the task report the tokens; the cost is computed from the billed
units, as Cohere bills. An embedding reports billed units only.
"""

from __future__ import annotations

from typing import Any

from tokentrace.integrations import (
    Method,
    ProviderIntegration,
    Reading,
    Request,
    Usage,
    UsageError,
    field,
    number,
    reported,
    values,
)

_V2 = "cohere.v2.client"


def _usage(usage: object, outputs: bool = True) -> tuple[Usage, Usage | None]:
    """(tokens processed, billed units) from a v2 ``Usage``; tokens fall back to billed units.

    A chat reports the input and output counts of each of the two it sends; an embedding only
    billed input units (it generates nothing: its output is 0, exactly, and ``outputs`` is
    false). A count it should report and did not is a ``UsageError``.
    """
    u = values(usage)
    tokens, billed = values(u.get("tokens")), values(u.get("billed_units"))
    cached = number(u.get("cached_tokens"), "cached_tokens")
    billed_usage = None
    if u.get("billed_units") is not None:
        billed_usage = Usage(
            input_tokens=reported(billed.get("input_tokens"), "billed_units.input_tokens"),
            output_tokens=_output(billed, "billed_units.output_tokens", outputs),
        )
    if u.get("tokens") is not None:
        processed = Usage(
            input_tokens=reported(tokens.get("input_tokens"), "tokens.input_tokens"),
            output_tokens=_output(tokens, "tokens.output_tokens", outputs),
            cache_read_tokens=cached,
        )
        return processed, billed_usage
    if billed_usage is not None:
        return billed_usage, None
    raise UsageError("usage has neither tokens nor billed_units")


def _output(counts: Any, name: str, outputs: bool) -> int:
    value = counts.get("output_tokens")
    return reported(value, name) if outputs else number(value, name)


class _ChatStream:
    """The ``message-end`` event's ``delta.usage`` is the stream's usage."""

    __slots__ = ("usage",)

    def __init__(self) -> None:
        self.usage: object = None

    def feed(self, event: Any) -> None:
        if getattr(event, "type", None) == "message-end":
            usage = field(getattr(event, "delta", None), "usage")
            if usage is not None:
                self.usage = usage

    def result(self) -> Reading:
        if self.usage is None:
            return Reading(None)
        processed, billed = _usage(self.usage)
        return Reading(processed, billed=billed)


class CohereIntegration(ProviderIntegration):
    name = "cohere"
    distribution = "cohere"
    module = "cohere"
    min_version = (5, 9)
    provider = "cohere"
    methods = (
        Method(_V2, "V2Client.chat", "chat"),
        Method(_V2, "AsyncV2Client.chat", "chat", is_async=True),
        # chat_stream is a generator (an async generator on the async client): calling it sends
        # nothing; the request goes out when it is first iterated.
        Method(_V2, "V2Client.chat_stream", "chat", streams=True),
        Method(_V2, "AsyncV2Client.chat_stream", "chat", streams=True),
        Method(_V2, "V2Client.embed", "embeddings", api="embeddings"),
        Method(_V2, "AsyncV2Client.embed", "embeddings", is_async=True, api="embeddings"),
    )

    def read(self, method: Method, request: Request, response: Any) -> Reading:
        # An embedding reports its billed units in ``meta``; chat in ``usage``.
        usage = field(response, "meta") if method.api == "embeddings" else getattr(response, "usage", None)
        if usage is None:
            return Reading(None)
        processed, billed = _usage(usage, outputs=method.api != "embeddings")
        return Reading(processed, billed=billed, output=getattr(response, "message", None))

    def stream_reader(self, method: Method, request: Request) -> _ChatStream:
        return _ChatStream()
