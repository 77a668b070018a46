"""Opt-in content capture: the request's messages and the response's output on the call span.

Only when the user turned capture on (``TOKENTRACE_CAPTURE_CONTENT``, ``configure(capture_content=
True)`` or the OTel GenAI variable): as JSON, after the user's ``redact`` hook, cut at
``content_max_chars``.
"""

from __future__ import annotations

import json
from typing import Any

from tokentrace._core.call import Call
from tokentrace._core.integration import Reading
from tokentrace._foundation import semconv as sc
from tokentrace._telemetry import providers as _telemetry


def _as_json(value: Any, limit: int) -> str:
    def default(obj: Any) -> Any:
        dump = getattr(obj, "model_dump", None)
        return dump(mode="json", exclude_none=True) if callable(dump) else repr(obj)

    text = json.dumps(value, default=default, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "...[truncated]"


def add(attrs: dict[str, Any], call: Call, reading: Reading | None, limit: int) -> None:
    """Opt-in only: the request's messages and the response's output, JSON, truncated to ``limit``."""
    kwargs = call.request.kwargs
    messages: Any = kwargs.get("messages")
    if kwargs.get("system") is not None:
        messages = [{"role": "system", "content": kwargs["system"]}, *(messages or [])]
    hook = _telemetry.state.settings.redact
    if messages is not None:
        attrs[sc.GEN_AI_INPUT_MESSAGES] = _as_json(hook(messages) if hook else messages, limit)
    if reading is not None and reading.output is not None:
        attrs[sc.GEN_AI_OUTPUT_MESSAGES] = _as_json(hook(reading.output) if hook else reading.output, limit)
