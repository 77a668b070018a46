"""requests: every request to a provider API that no SDK integration is recording, sent with
``requests`` (hand-written clients, libraries built on it), read as the httpx integration reads
its requests (see ``tokentrace.integrations._wire``).

``Session.send`` is the one door every request goes through (``requests.post``,
``Session.request``). A request whose URL does not end like a provider API's goes through after
one ``endswith``. The body of a recorded request is read from the response: whole, when
``requests`` has read it (``stream=False``, the default), or piece by piece as the application
reads it (``stream=True``), through a watcher put in front of ``Response.raw``, the urllib3
response every way of reading the body goes through.
"""

from __future__ import annotations

from typing import Any

from tokentrace.integrations import Integration, Patch, _wire, _wire_urllib3

_NAME = "requests"


def _peek(request: Any) -> tuple[_wire.Route, str, bytes | None] | None:
    """The provider API a prepared request calls, its origin and body, or ``None`` (most requests:
    one check of the URL)."""
    return _wire.peek_url(request.method, request.url, request.body)


def _received(exchange: _wire.Exchange, response: Any, streamed: bool) -> None:
    """Read a response ``requests`` has read whole (and decoded), or put a watcher in front of its
    body."""
    _wire_urllib3.received(exchange, response, streamed, decoded=True)


class RequestsIntegration(Integration):
    """Requests sent with ``requests`` to a provider API that no SDK integration records."""

    name = _NAME
    distribution = "requests"
    module = "requests"
    min_version = (2, 25)

    def patches(self) -> tuple[Patch, ...]:
        # The steps are looked up when a request is sent (a fault injected into one reaches it).
        send = _wire.sender(_NAME, lambda r: _peek(r), lambda e, r, s: _received(e, r, s))
        return (Patch("requests.sessions", "Session.send", send),)
