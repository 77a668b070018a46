"""What tokentrace works out from a request before it is sent, without storing its content.

``estimate`` counts a request's input tokens offline (its messages, instructions and tools,
with the model's tokenizer family) and takes its output at the request's own cap, for budgets.
``digest`` is a keyed hash of the request without its transport options, for duplicate
detection: two calls with the same provider, model and request compare equal, and nothing of
the content is kept.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from typing import Any, Final

from tokentrace._pricing import prices as _pricing
from tokentrace._tokens.tokenize import EstimateUnavailable, count_text
from tokentrace._tokens.usage import Usage, values
from tokentrace.types import CallEstimate

# Output caps, in the order the SDKs give them precedence.
_OUTPUT_CAPS: Final = ("max_completion_tokens", "max_output_tokens", "max_tokens")
# Request keys whose text the model reads.
_TEXT_KEYS: Final = ("system", "instructions", "prompt", "input", "messages", "contents")
# Parts whose size in tokens is not their text (images, audio, files): not counted.
_SKIP_KEYS: Final = frozenset(
    {"image_url", "image", "source", "data", "file", "file_data", "input_audio", "audio", "type", "id"}
)
# Per-message framing that OpenAI documents for chat (3 tokens a message, 3 for the reply).
_PER_MESSAGE: Final = 3
_MAX_DEPTH: Final = 12

# Keys that do not change the answer: transport and bookkeeping.
_NOT_REQUEST: Final = frozenset(
    {
        "stream",
        "stream_options",
        "timeout",
        "extra_headers",
        "extra_query",
        "metadata",
        "user",
        "store",
        "idempotency_key",
    }
)


def _texts(value: Any, out: list[str], depth: int = 0) -> None:
    if depth > _MAX_DEPTH or value is None:
        return
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _texts(item, out, depth + 1)
    elif isinstance(value, (bool, int, float, bytes)):
        return
    else:
        for key, item in values(value).items():
            if key not in _SKIP_KEYS:
                _texts(item, out, depth + 1)


_CHARS_PER_TOKEN: Final = 4


def input_tokens(model: str, kwargs: Mapping[str, Any]) -> int:
    """The request's input tokens, counted offline (an estimate: framing and images vary)."""
    texts: list[str] = []
    total = 0
    for key in _TEXT_KEYS:
        value = kwargs.get(key)
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            total += _PER_MESSAGE * len(value)
        _texts(value, texts)
    if texts:
        total += _PER_MESSAGE
    tools = kwargs.get("tools")
    if tools:
        texts.append(json.dumps(tools, default=_plain, sort_keys=True))
    # The model's tokenizer family (o200k for models whose tokenizer is not published).
    try:
        return total + sum(count_text(t, model) for t in texts)
    except EstimateUnavailable:
        # Without the estimate extra: about 4 characters a token, rounded up (budgets still apply).
        return total + sum(-(-len(t) // _CHARS_PER_TOKEN) for t in texts)


def output_cap(kwargs: Mapping[str, Any]) -> int | None:
    """The most output tokens the request allows, when it says."""
    for key in _OUTPUT_CAPS:
        value = kwargs.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def estimate(
    model: str, provider: str, base_url: str | None, kwargs: Mapping[str, Any], *, embeddings: bool = False
) -> CallEstimate:
    """What the call is expected to use, and cost, at most on the output side."""
    in_tokens = input_tokens(model, kwargs)
    cap = 0 if embeddings else output_cap(kwargs)
    out_tokens = cap or 0
    cost = None
    price = _pricing.lookup(model, provider, base_url)
    if price is not None and not price.estimated:
        cost = price.cost(Usage(input_tokens=in_tokens, output_tokens=out_tokens))
    return CallEstimate(
        input_tokens=in_tokens, output_tokens=out_tokens, output_capped=cap is not None, cost_usd=cost
    )


def _plain(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json")
        except Exception:  # noqa: BLE001  # a class, not an instance (response_format=Model)
            pass
    if isinstance(obj, type):
        return f"{obj.__module__}.{obj.__qualname__}"
    return repr(obj)


def digest(
    provider: str, operation: str, model: str | None, base_url: str | None, kwargs: Mapping[str, Any]
) -> int | None:
    """A keyed 64-bit hash of the request (its content is hashed, never kept).

    The request is serialised with pickle (fast, in C) and hashed with Python's SipHash, whose
    key is random per process; a request pickle cannot serialise falls back to JSON, and one
    neither can serialise has no digest (``None``: never counted as a duplicate).
    """
    arguments = None
    for key in kwargs:  # a request has a handful of keys: cheaper than set operations
        if key in _NOT_REQUEST:
            if arguments is None:
                arguments = dict(kwargs)  # a copy without those keys; the caller's is left alone
            del arguments[key]
    if arguments is not None:
        kwargs = arguments
    # Only the arguments are serialised; the strings beside them hash as they are (their hashes
    # are cached), which costs less than pickling them too.
    try:
        return hash((provider, operation, model, base_url, pickle.dumps(kwargs, 5)))
    except Exception:  # noqa: BLE001  # an argument pickle cannot serialise
        pass
    try:
        request = (provider, operation, model, base_url, kwargs)
        return hash(json.dumps(request, default=_plain, sort_keys=True))
    except Exception:  # noqa: BLE001  # circular or unsortable arguments: no digest, no duplicate
        return None
