"""botocore (the HTTP layer under boto3 and every AWS library): every request to a provider API
(Bedrock's model APIs, in practice) that no SDK integration is recording, read as the httpx
integration reads its requests (see ``tokentrace.integrations._wire``).

A boto3 ``bedrock-runtime`` client's ``converse`` and friends are recorded by the Bedrock
integration, and their requests are left to it. This one records the rest: a hand-written SigV4
client sending through ``URLLib3Session``, a library that builds its own botocore requests, a
client whose Bedrock integration is turned off.

``URLLib3Session.send`` is the one door every botocore request goes through. A request that is
not a ``POST`` to a URL ending like a provider API's goes through after one look (an S3 ``GET``
stops at the method). The body of a recorded request is read from the response: whole, when
botocore has read it in ``send`` (``stream_output`` false: ``converse``), as sent (urllib3 does
not decode it for botocore); or piece by piece as the application reads it (event streams and
``invoke_model``'s ``StreamingBody``), through a watcher put in front of ``AWSResponse.raw``, the
urllib3 response that botocore's ``EventStream`` and ``StreamingBody`` both read.
"""

from __future__ import annotations

from typing import Any

from tokentrace.integrations import Integration, Patch, _wire, _wire_urllib3

_NAME = "botocore"


def _peek(request: Any) -> tuple[_wire.Route, str, bytes | None] | None:
    """The provider API an ``AWSPreparedRequest`` calls, its origin and body, or ``None`` (most
    requests: one look at the method and one check of the URL; an S3 ``GET`` stops at the
    method, a file being uploaded at its body)."""
    return _wire.peek_url(request.method, request.url, request.body)


def _streamed(request: Any, kwargs: dict[str, Any]) -> bool:
    """Whether botocore leaves the body for the application: else ``send`` has read it, by the
    same test of the request."""
    return bool(request.stream_output)


def _received(exchange: _wire.Exchange, response: Any, streamed: bool) -> None:
    """Read a response botocore has read whole (as sent: urllib3 does not decode it for
    botocore), or put a watcher in front of its body."""
    _wire_urllib3.received(exchange, response, streamed, decoded=False)


class BotocoreIntegration(Integration):
    """Requests sent with botocore to a provider API (Bedrock's) that no SDK integration records."""

    name = _NAME
    distribution = "botocore"
    module = "botocore"
    min_version = (1, 31)  # the first botocore that knows the Bedrock Runtime API

    def patches(self) -> tuple[Patch, ...]:
        # The steps are looked up when a request is sent (a fault injected into one reaches it).
        send = _wire.sender(
            _NAME,
            lambda r: _peek(r),
            lambda e, r, s: _received(e, r, s),
            lambda r, k: _streamed(r, k),
        )
        return (Patch("botocore.httpsession", "URLLib3Session.send", send),)
