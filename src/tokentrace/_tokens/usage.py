"""Token usage as tokentrace normalises it, and safe readers for provider payloads.

The convention is OpenTelemetry's: ``input_tokens`` *includes* cache reads and cache writes,
``output_tokens`` *includes* reasoning tokens; the subsets are reported beside the totals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

_MISSING: Final = object()


class UsageError(ValueError):
    """A provider reported a token count that is not a count (string, float, huge, ...)."""


# Far above any real request, far below anything that would overflow a backend's int64.
MAX_TOKENS: Final = 10**12


@dataclass(frozen=True, slots=True)
class Modalities:
    """The tokens of one call that are audio, images or video, where the provider reports them.

    Each count is a subset of a total of ``Usage``: ``*_input`` of ``input_tokens``,
    ``*_cache_read`` of ``cache_read_tokens`` (and of the same modality's ``*_input``),
    ``*_output`` of ``output_tokens``; what is not counted here is text. Some models bill them at
    rates of their own (gpt-audio's audio input at 12.8 times its text input, Gemini 2.5 Flash
    Image's image output at 12 times its text output); elsewhere they cost what text costs.
    """

    audio_input: int = 0
    audio_cache_read: int = 0
    audio_output: int = 0
    image_input: int = 0
    image_cache_read: int = 0
    image_output: int = 0
    video_input: int = 0
    video_cache_read: int = 0
    video_output: int = 0

    def problem(self, usage: Usage) -> str | None:
        """Why these counts cannot be true beside ``usage``'s totals, or ``None``."""
        for name in self.__slots__:
            value = getattr(self, name)
            if type(value) is not int:
                return f"modalities.{name} is not a token count ({type(value).__name__})"
            if not 0 <= value <= MAX_TOKENS:
                return f"modalities.{name} is not a plausible token count ({value})"
        ins = (self.audio_input, self.image_input, self.video_input)
        reads = (self.audio_cache_read, self.image_cache_read, self.video_cache_read)
        if sum(ins) > usage.input_tokens:
            return "audio, image and video input tokens exceed input tokens"
        if sum(reads) > usage.cache_read_tokens:
            return "audio, image and video cache reads exceed cache reads"
        if any(read > inp for read, inp in zip(reads, ins, strict=True)):
            return "a modality's cache reads exceed its input tokens"
        if self.audio_output + self.image_output + self.video_output > usage.output_tokens:
            return "audio, image and video output tokens exceed output tokens"
        return None


@dataclass(frozen=True, slots=True, init=False)
class Usage:
    """The tokens of one LLM call, normalised (see the module docstring)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    web_search_requests: int = 0
    """Server-side web searches the provider ran for the call (Anthropic's web search tool,
    OpenAI's ``web_search`` tool calls), billed per search."""
    file_search_requests: int = 0
    """Server-side file searches the provider ran for the call (OpenAI's ``file_search`` tool
    calls), billed per search."""
    modalities: Modalities | None = None
    """The audio, image and video tokens among the totals, where the provider reports them."""

    def __new__(
        cls,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
        reasoning_tokens: int = 0,
        web_search_requests: int = 0,
        file_search_requests: int = 0,
        modalities: Modalities | None = None,
    ) -> Usage:
        # One Usage is built for every LLM call. A frozen dataclass's generated __init__ sets each
        # field through object.__setattr__, and even the slots' own setters cost a call each; a
        # plain slotted twin with the same layout takes the values as ordinary attribute stores,
        # then becomes a Usage (about half the instructions). No __init__: object's takes the
        # arguments once __new__ has used them.
        usage: Any = _new(_Fields)
        usage.input_tokens = input_tokens
        usage.output_tokens = output_tokens
        usage.cache_read_tokens = cache_read_tokens
        usage.cache_write_tokens = cache_write_tokens
        usage.cache_write_1h_tokens = cache_write_1h_tokens
        usage.reasoning_tokens = reasoning_tokens
        usage.web_search_requests = web_search_requests
        usage.file_search_requests = file_search_requests
        usage.modalities = modalities
        usage.__class__ = cls  # the same slots: the layout of a Usage
        return usage  # type: ignore[no-any-return]  # now a Usage

    def problem(self) -> str | None:
        """Why these numbers cannot be true, or ``None`` when they are consistent.

        ``CACHE_OVERLAP`` (cache reads and writes that add up to more than the input total, as a
        gateway reports that caches what its upstream provider had already cached) is the one
        problem that leaves the counts usable: every one of them was billed, so tokentrace keeps
        them as reported and notes the disagreement (see ``PriceInfo.parts`` for its price). It
        is named only when the counts have no other problem.
        """
        inp, out = self.input_tokens, self.output_tokens
        read, write, write_1h, reasoning = (
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.cache_write_1h_tokens,
            self.reasoning_tokens,
        )
        searches, files = self.web_search_requests, self.file_search_requests
        try:
            if (
                # No count is negative: a bitwise or of ints is negative exactly when one of them is.
                inp | out | read | write | write_1h | reasoning | searches | files >= 0
                and read + write <= inp <= MAX_TOKENS
                and reasoning <= out <= MAX_TOKENS
                and write_1h <= write
                and searches + files <= MAX_TOKENS
            ):
                # The common case, checked in one expression.
                modalities = self.modalities
                return None if modalities is None else _modalities_problem(self, modalities)
        except TypeError:  # a count that is not an int (from a third-party reader): named below
            pass
        for name in _COUNTS:
            value = getattr(self, name)
            if type(value) is not int:
                return f"{name} is not a token count ({type(value).__name__})"
            if value < 0:
                return f"{name} is negative ({value})"
            if value > MAX_TOKENS:
                return f"{name} is implausibly large ({value})"
        if self.cache_write_1h_tokens > self.cache_write_tokens:
            return "1-hour cache writes exceed cache writes"
        if self.reasoning_tokens > self.output_tokens:
            return "reasoning tokens exceed output tokens"
        if self.modalities is not None:
            problem = _modalities_problem(self, self.modalities)
            if problem is not None:
                return problem
        if self.cache_read_tokens + self.cache_write_tokens > self.input_tokens:
            return CACHE_OVERLAP
        return None


_COUNTS: Final = tuple(name for name in Usage.__slots__ if name != "modalities")

CACHE_OVERLAP: Final = "cache reads and cache writes together exceed input tokens: kept as reported"
"""``Usage.problem()``'s one problem of counts that are still priced (see there)."""


def _modalities_problem(usage: Usage, modalities: object) -> str | None:
    if type(modalities) is not Modalities:
        return f"modalities is not a Modalities ({type(modalities).__name__})"
    return modalities.problem(usage)


class _Fields:
    """A mutable twin of ``Usage`` (its slots, so its layout), to build one (see ``Usage.__new__``)."""

    __slots__ = Usage.__slots__


_new = object.__new__

_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})

# How to read a payload type's fields (decided once per type; bounded below).
_AS_MAPPING, _AS_PYDANTIC, _AS_ATTRIBUTES = 0, 1, 2
_kinds: dict[type, int] = {dict: _AS_MAPPING}


class _Attributes:
    """A payload object that is neither a mapping nor a pydantic model, read through ``getattr``."""

    __slots__ = ("_obj",)

    def __init__(self, obj: object) -> None:
        self._obj = obj

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self._obj, name, default)


def _kind(kind: type) -> int:
    if issubclass(kind, Mapping):
        how = _AS_MAPPING
    elif hasattr(kind, "__pydantic_extra__") and hasattr(kind, "__pydantic_fields__"):
        how = _AS_PYDANTIC
    else:
        how = _AS_ATTRIBUTES
    if len(_kinds) > 4096:
        _kinds.clear()
    _kinds[kind] = how
    return how


def values(obj: object) -> Mapping[str, Any]:
    """The fields of a provider payload, to ``.get`` by name: a dict or other mapping as it is,
    a pydantic model's fields and extra fields, or any other object's attributes.

    SDK responses are pydantic models whose fields live in their ``__dict__``: reading that is
    a dict lookup, while a missing name through ``getattr`` runs pydantic's ``__getattr__``,
    which raises and catches an error (microseconds, on every call).
    """
    if obj is None:
        return _EMPTY
    kind = type(obj)
    how = _kinds.get(kind)
    if how is None:
        how = _kind(kind)
    if how == _AS_PYDANTIC:
        fields: dict[str, Any] = obj.__dict__
        extra = obj.__pydantic_extra__  # type: ignore[attr-defined]
        return {**extra, **fields} if extra else fields
    if how == _AS_MAPPING:
        return obj  # type: ignore[return-value]
    return _Attributes(obj)  # type: ignore[return-value]


def field(obj: object, *path: str) -> Any:
    """``obj.a.b`` or ``obj["a"]["b"]``, whichever the payload is; ``None`` when any step is missing."""
    for name in path:
        if obj is None:
            return None
        obj = values(obj).get(name)
    return obj


def number(value: object, name: str) -> int:
    """``value`` as a token count (0 when absent); raises ``UsageError`` naming ``name`` otherwise."""
    if type(value) is int:
        return value
    if value is None:
        return 0
    if isinstance(value, bool):
        raise UsageError(f"{name} is a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise UsageError(f"{name} is not a token count: {type(value).__name__}")


def counts(
    fields: Mapping[str, Any], names: tuple[str, ...], prefix: str = "", required: int = 0
) -> list[int]:
    """The token counts named ``names`` in ``fields``, in one call: an int is taken as it is,
    anything else goes through ``number`` (which names ``prefix`` + the field).

    The first ``required`` names are counts the API always reports (a call's input and output
    totals): one that is absent or null raises ``UsageError``, for a count the provider did not
    report is not a zero. The others (the cache and reasoning subsets) are 0 when absent.
    """
    out: list[int] = []
    for name in names:
        value = fields.get(name)
        if type(value) is not int:
            if value is None and len(out) < required:
                raise UsageError(f"{prefix}{name} is missing")
            value = number(value, prefix + name)
        out.append(value)
    return out


def reported(value: object, name: str) -> int:
    """``value`` as a token count the API always reports: ``UsageError`` when it is absent."""
    if value is None:
        raise UsageError(f"{name} is missing")
    return number(value, name)


def count(obj: object, *path: str) -> int:
    """The token count at ``path`` (0 when absent); raises ``UsageError`` for a non-count."""
    return number(field(obj, *path), ".".join(path))
