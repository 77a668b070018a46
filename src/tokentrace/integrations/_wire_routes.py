"""The provider APIs an HTTP request may call, told by its path: which API, how its calls are
named and read, and the model the path names (Gemini, Vertex, Bedrock). ``may_route`` is the
one check every other request pays (see ``tokentrace.integrations._wire``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from tokentrace._core.integration import Method

__all__ = ["Route", "may_route", "route"]

_WIRE = "tokentrace.wire"  # the Method module of every call seen on the wire (never patched)


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


def may_route(url: str) -> bool:
    """Whether a URL or path (without its query) ends the way a provider API's path does: the one
    check every other request pays."""
    return url.endswith(_ENDINGS)


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
