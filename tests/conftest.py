"""Shared fixtures: strict error boundary, in-memory telemetry, no network, a PostgreSQL server."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tokentrace
from tests.support import postgres
from tokentrace import pricing
from tokentrace._foundation import safety as _safety
from tokentrace._pricing import prices as _pricing
from tokentrace.testing import Capture, capture

# Nothing the tests run may write to the user's real ledger (nor leave one behind).
_SCRATCH = tempfile.mkdtemp(prefix="tokentrace-tests-")
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
os.environ["TOKENTRACE_LEDGER"] = str(Path(_SCRATCH) / "ledger.db")

# tokentrace's own bugs must fail its own tests loudly.
_safety.set_strict(True)

# A global SDK TracerProvider, as an application would register one. Tests that use ``cap``
# redirect tokentrace's own spans; others (and SDKs' own tracing) go here.
GLOBAL_SPANS = InMemorySpanExporter()
_global_provider = TracerProvider()
_global_provider.add_span_processor(SimpleSpanProcessor(GLOBAL_SPANS))
trace.set_tracer_provider(_global_provider)


@pytest.fixture
def global_spans() -> InMemorySpanExporter:
    GLOBAL_SPANS.clear()
    return GLOBAL_SPANS


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse any connection that is not to this machine."""
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if (
            isinstance(host, str)
            and host not in {"127.0.0.1", "localhost", "::1"}
            and self.family
            in (
                socket.AF_INET,
                socket.AF_INET6,
            )
        ):
            raise ConnectionRefusedError(f"tests may not reach {host!r}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture(autouse=True)
def _instrumented() -> Iterator[None]:
    tokentrace.instrument()
    yield
    tokentrace.uninstrument()


@pytest.fixture(autouse=True)
def _no_price_overrides_left() -> Iterator[None]:
    """Price overrides a test sets end with it (a later test prices from the database alone)."""
    yield
    book = _pricing._book
    if book.exact or book.patterns or book.discounts or book.self_hosted or book.aliases:
        pricing.set_prices([])


@pytest.fixture
def cap() -> Iterator[Capture]:
    with capture() as c:
        yield c


@pytest.fixture
def lenient() -> Iterator[None]:
    """The production error boundary (log and swallow), for fault-injection tests."""
    _safety.set_strict(False)
    _safety.reset_reported()
    try:
        yield
    finally:
        _safety.set_strict(True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server on 127.0.0.1 (``TOKENTRACE_POSTGRES_URL``'s, which ``.ci/run``
    starts), else of one started for the test session from Debian's package."""
    url = os.environ.get("TOKENTRACE_POSTGRES_URL")
    if url:
        yield url
        return
    programs = postgres.bindir()
    if programs is None:
        message = "PostgreSQL is not installed: python -m tests.support.postgres install (as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = postgres.start(programs)
    try:
        yield server.url
    finally:
        postgres.stop(server.pid, server.workdir)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """The URL of a new empty database of the test's own on ``postgres_server``, dropped after it."""
    with postgres.database(postgres_server) as url:
        yield url
