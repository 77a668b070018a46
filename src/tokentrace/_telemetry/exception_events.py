"""What an exception leaves on a span: its type and HTTP status, its text only when content is captured.

A provider's error message can echo the request: "context too long. Received Messages=[...]",
or a header with the API key. OpenTelemetry's ``span.record_exception`` copies ``str(error)``
and the whole traceback (with every frame's source line) into the event, so with content
capture off (the default) tokentrace records the exception's class and status code only.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span

from tokentrace._foundation import semconv as sc
from tokentrace._telemetry import providers as _telemetry


def qualified_type(error: BaseException) -> str:
    """The exception's class as OpenTelemetry's ``exception.type`` names it (``module.Qualname``)."""
    cls = type(error)
    module = cls.__module__
    return f"{module}.{cls.__qualname__}" if module and module != "builtins" else cls.__qualname__


def status_code(error: BaseException) -> int | None:
    """The HTTP status an SDK's error carries (``status_code``, google-genai's ``code``, botocore's
    response metadata), or ``None``."""
    for name in ("status_code", "code"):
        value = getattr(error, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    response: Any = getattr(error, "response", None)
    if isinstance(response, dict):
        value = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def record(span: Span, error: BaseException) -> None:
    """Add the ``exception`` event for ``error`` to ``span``: with its message and stack trace when
    the user opted in to content capture, else its type alone, with the status code beside it."""
    code = status_code(error)
    if code is not None:
        span.set_attribute(sc.HTTP_RESPONSE_STATUS_CODE, code)
    if _telemetry.state.settings.capture_content:
        span.record_exception(error)
        return
    span.add_event(sc.EVENT_EXCEPTION, {sc.EXCEPTION_TYPE: qualified_type(error)})
