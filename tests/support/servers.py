"""Real servers on 127.0.0.1 for export tests: a healthy OTLP/HTTP receiver, endpoints that
accept connections and never answer, and a port that refuses them."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class _Receiver(http.server.BaseHTTPRequestHandler):
    bodies: list[tuple[str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.bodies.append((self.path, body))  # type: ignore[attr-defined]
        if self.path == "/v1/metrics" and self.server.traces_only:  # type: ignore[attr-defined]
            # As Jaeger answers: it takes no OTLP metrics.
            self.send_response(404)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def otlp_receiver(traces_only: bool = False) -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """An OTLP/HTTP endpoint that answers 200 to every export (404 to metrics when
    ``traces_only``, as Jaeger does); yields (endpoint, received bodies)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.bodies = []  # type: ignore[attr-defined]
    server.traces_only = traces_only  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.bodies  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def hung_endpoint() -> Iterator[str]:
    """An endpoint whose port accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def refused_endpoint() -> str:
    """An endpoint on a port nothing listens on: every connection is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


@contextmanager
def silent_endpoint() -> Iterator[tuple[str, list[tuple[str, float]]]]:
    """An endpoint that accepts every connection, reads the request line, and never answers;
    yields (endpoint, [(path, time.monotonic() of arrival)]) in order of arrival."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.settimeout(0.1)
    requests: list[tuple[str, float]] = []
    held: list[socket.socket] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:  # no connection within 0.1 s
                continue
            held.append(conn)  # kept open, never answered
            conn.settimeout(5)
            try:
                line = conn.makefile("rb").readline().split()
            except OSError:
                continue
            requests.append((line[1].decode() if len(line) > 1 else "", time.monotonic()))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", requests
    finally:
        done.set()
        thread.join(5)
        sock.close()
        for conn in held:
            conn.close()
