"""Replaying recorded real provider traffic through the official SDKs.

Cassettes are VCR.py YAML files copied unchanged from public projects (see
tests/cassettes/README.md for sources and licences). A replay transport from the HTTP library
the SDK is built on serves the recorded responses in order, matching method (case-insensitive),
scheme, host and path, never the query string or the body, as the cassettes' README prescribes.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import httpx2
import yaml

from tokentrace.testing import Recorded

HERE = Path(__file__).resolve().parent.parent
CASSETTES = HERE / "cassettes"
GROUND_TRUTH = CASSETTES / "ground_truth.jsonl"

_DROP_HEADERS = {"content-length", "transfer-encoding", "content-encoding"}


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads multidict ``istr`` header keys (python/object/apply tags) as plain strings."""


def _python_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        values = loader.construct_sequence(node, deep=True)
        return values[0] if values else ""
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", _python_tag)


@dataclass
class Interaction:
    method: str
    uri: str
    request_body: bytes
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def key(self) -> tuple[str, str, str, str]:
        parts = urlsplit(self.uri)
        return self.method.upper(), parts.scheme, parts.netloc, parts.path

    def request_json(self) -> dict[str, Any]:
        return json.loads(self.request_body or b"{}")


def _bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def load(path: Path) -> list[Interaction]:
    """The interactions of one cassette, in recorded order."""
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # our own loader
    out = []
    for entry in data["interactions"]:
        req, resp = entry["request"], entry["response"]
        body = req.get("body")
        if isinstance(body, dict):
            body = body.get("string")
        raw = resp.get("body") if "body" in resp else {"string": resp.get("content")}
        content = _bytes(raw.get("string") if isinstance(raw, dict) else raw)
        status = resp.get("status")
        code = status["code"] if isinstance(status, dict) else int(resp.get("status_code") or status)
        headers: list[tuple[str, str]] = []
        gzipped = content[:2] == b"\x1f\x8b"
        for name, values in (resp.get("headers") or {}).items():
            if str(name).lower() in _DROP_HEADERS:
                continue
            for value in values if isinstance(values, list) else [values]:
                headers.append((str(name), str(value)))
        if gzipped:
            content = gzip.decompress(content)
        out.append(
            Interaction(str(req["method"]), str(req["uri"]), _bytes(body), int(code), headers, content)
        )
    return out


@dataclass
class Replay:
    """Serves recorded responses in order; records what the SDK sent."""

    interactions: list[Interaction]
    sent: list[Any] = field(default_factory=list)
    """The requests the SDK sent, as its HTTP library made them."""
    _next: int = 0

    def take(self, request: Any, method: str, path: str) -> Interaction:
        """The next recorded interaction for ``method`` and ``path`` (noting ``request`` as sent)."""
        self.sent.append(request)
        for index in range(self._next, len(self.interactions)):
            item = self.interactions[index]
            if item.key[0] == method.upper() and unquote(item.key[3]) == unquote(path):
                self._next = index + 1
                return item
        raise AssertionError(f"no recorded response left for {method} {path}")

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        item = self.take(request, request.method, request.url.path)
        return httpx2.Response(item.status, headers=item.headers, content=item.body)

    async def async_handler(self, request: httpx2.Request) -> httpx2.Response:
        return self.handler(request)

    def sync_client(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self.handler))

    def async_client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self.async_handler))

    # SDKs built on ``httpx`` (groq, mistralai, cohere, google-genai) need a transport from that library.

    def _httpx_handler(self, request: httpx.Request) -> httpx.Response:
        item = self.take(request, request.method, request.url.path)
        return httpx.Response(item.status, headers=item.headers, content=item.body)

    async def _httpx_async_handler(self, request: httpx.Request) -> httpx.Response:
        return self._httpx_handler(request)

    def httpx_client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self._httpx_handler))

    def httpx_async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self._httpx_async_handler))


class _RawBody:
    """The part of a urllib3 response botocore reads: ``read`` and ``stream``."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, amt: int | None = None, decode_content: bool = True) -> bytes:
        return self._data.read(amt)

    def stream(self, amt: int = 1024, decode_content: bool = True) -> Iterator[bytes]:
        while chunk := self._data.read(amt):
            yield chunk

    def close(self) -> None:
        self._data.close()

    def release_conn(self) -> None:
        pass


def serve_botocore(replay: Replay, client: Any) -> Any:
    """Answer a botocore client's requests from ``replay`` through botocore's own ``before-send``
    event (botocore then parses, retries and streams exactly as over the network)."""
    from botocore.awsrequest import AWSResponse

    def before_send(request: Any, **_: Any) -> Any:
        item = replay.take(request, request.method, urlsplit(request.url).path)
        return AWSResponse(request.url, item.status, dict(item.headers), _RawBody(item.body))

    client.meta.events.register("before-send", before_send)
    return client


def served(item: Interaction) -> Recorded:
    """A recorded response as ``tokentrace.testing.ReplayServer`` serves it on 127.0.0.1: its
    status, content type, other headers (Bedrock's token counts among them) and body."""
    content_type = next((v for n, v in item.headers if n.lower() == "content-type"), "application/json")
    headers = {n: v for n, v in item.headers if n.lower() not in ("content-type", "connection", "date")}
    return Recorded(item.body, content_type=content_type, status=item.status, headers=headers)


def ground_truth() -> dict[tuple[str, int], dict[str, Any]]:
    """Provider-reported usage per (cassette path, interaction index)."""
    rows = {}
    with GROUND_TRUTH.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            rows[(row["path"], row["idx"])] = row
    return rows


def cassette_paths(provider: str) -> Iterator[Path]:
    yield from sorted((CASSETTES / provider).rglob("*.yaml"))
