"""A ledger's rows: the ``calls`` row of one call span and the ``tasks`` row of one task span,
with the raw token buckets, the price source and the exact cost (``LedgerExporter`` writes them
to either store)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from tokentrace._foundation import semconv as sc
from tokentrace._pricing.money import PICODOLLAR

__all__ = ["call_row", "pico", "task_row"]

_TASK_KNOWN = {
    sc.TASK_NAME,
    sc.TASK_ID,
    sc.TASK_PARENT_ID,
    sc.TASK_ROOT_ID,
    sc.TASK_ROOT_NAME,
    sc.USER_ID,
    sc.FEATURE,
    sc.TENANT,
    sc.TASK_INPUT_TOKENS,
    sc.TASK_OUTPUT_TOKENS,
    sc.TASK_CACHE_READ_TOKENS,
    sc.TASK_CACHE_WRITE_TOKENS,
    sc.TASK_REASONING_TOKENS,
    sc.TASK_COST_USD,
    sc.TASK_COST_USD_EXACT,
    sc.TASK_LLM_CALLS,
    sc.TASK_RETRIES,
    sc.TASK_UNPRICED_CALLS,
    sc.TASK_ESTIMATED_CALLS,
    sc.TASK_OUTCOME,
    sc.TASK_MODELS,
    sc.ERROR_TYPE,
    sc.TASK_DUPLICATE_CALLS,
    sc.TASK_DUPLICATE_COST_USD,
    sc.TASK_RETRY_WASTE_TOKENS,
    sc.TASK_RETRY_WASTE_COST_USD,
    sc.TASK_COST_INPUT_USD,
    sc.TASK_COST_CACHE_READ_USD,
    sc.TASK_COST_CACHE_WRITE_USD,
    sc.TASK_COST_OUTPUT_USD,
    sc.TASK_COST_OTHER_USD,
    sc.TASK_BUDGET_EXCEEDED,
    sc.TASK_BUDGET_BLOCKED_CALLS,
    sc.TASK_BUDGET_MAX_COST_USD,
    sc.TASK_BUDGET_MAX_TOKENS,
    sc.TASK_BUDGET_MAX_LLM_CALLS,
}


def pico(cost: Decimal) -> int:
    """A cost in USD as an integer count of 10^-12 USD (exact for every published per-token rate)."""
    return int(cost.quantize(PICODOLLAR, rounding=ROUND_HALF_EVEN).scaleb(12))


def _cost(attrs: Any, exact_key: str, float_key: str) -> Decimal | None:
    exact = attrs.get(exact_key)
    if isinstance(exact, str):
        try:
            return Decimal(exact)
        except InvalidOperation:
            pass
    value = attrs.get(float_key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # A double with up to 15 significant digits round-trips through its shortest repr.
        return Decimal(repr(float(value)))
    return None


def _day(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%d")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _resource(span: ReadableSpan) -> tuple[str | None, str | None]:
    attrs = span.resource.attributes if span.resource is not None else {}
    service = attrs.get("service.name")
    env = attrs.get("deployment.environment.name", attrs.get("deployment.environment"))
    return (str(service) if service is not None else None, str(env) if env is not None else None)


def _ids(span: ReadableSpan) -> tuple[str, str]:
    ctx = span.get_span_context()
    if ctx is None:  # pragma: no cover - SDK spans always have one
        return ("0" * 16, "0" * 32)
    return (f"{ctx.span_id:016x}", f"{ctx.trace_id:032x}")


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else list(value)


def call_row(span: ReadableSpan) -> tuple[Any, ...]:
    """The ``calls`` row for one call span."""
    a = span.attributes or {}
    span_id, trace_id = _ids(span)
    start, end = span.start_time or 0, span.end_time or span.start_time or 0
    cost = _cost(a, sc.COST_USD_EXACT, sc.COST_USD)
    request_model = a.get(sc.GEN_AI_REQUEST_MODEL)
    response_model = a.get(sc.GEN_AI_RESPONSE_MODEL)
    attempts = a.get(sc.ATTEMPTS)
    service, env = _resource(span)
    has_usage = sc.GEN_AI_USAGE_INPUT_TOKENS in a
    return (
        span_id,
        trace_id,
        a.get(sc.TASK_ID),
        a.get(sc.TASK_NAME),
        a.get(sc.TASK_ROOT_ID),
        a.get(sc.TASK_ROOT_NAME),
        start,
        end,
        _day(start),
        a.get(sc.GEN_AI_OPERATION_NAME),
        a.get(sc.GEN_AI_PROVIDER_NAME),
        request_model,
        response_model,
        response_model or request_model or "unknown",
        _int(a.get(sc.GEN_AI_USAGE_INPUT_TOKENS)),
        _int(a.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS)),
        _int(a.get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)) if has_usage else None,
        _int(a.get(sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS)) if has_usage else None,
        (_int(a.get(sc.USAGE_CACHE_WRITE_1H)) or 0) if has_usage else None,
        _int(a.get(sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS)) if has_usage else None,
        str(cost) if cost is not None else None,
        pico(cost) if cost is not None else None,
        str(a.get(sc.COST_STATUS, "unknown")),
        a.get(sc.COST_SOURCE),
        1 if a.get(sc.USAGE_ESTIMATED) else 0,
        _int(a.get(sc.RETRIES)) or 0,
        json.dumps(_plain(attempts)) if attempts else None,
        a.get(sc.ERROR_TYPE),
        a.get(sc.STREAM_END),
        a.get(sc.FEATURE),
        a.get(sc.USER_ID),
        a.get(sc.TENANT),
        service,
        env,
        1 if a.get(sc.DUPLICATE) else 0,
        _int(a.get(sc.USAGE_WEB_SEARCHES)) or 0,
        _int(a.get(sc.USAGE_FILE_SEARCHES)) or 0,
        _modalities(a),
        a.get(sc.BASE_URL),
        a.get(sc.SERVICE_TIER) or a.get(sc.OPENAI_RESPONSE_SERVICE_TIER),
        a.get(sc.USAGE_ITERATIONS),
        _int(a.get(sc.USAGE_BILLED_INPUT)),
        _int(a.get(sc.USAGE_BILLED_OUTPUT)),
    )


def _modalities(attrs: Any) -> str | None:
    """``Usage.modalities``' counts on a call span, as JSON (``{"audio_input": 1500}``), or NULL."""
    found = {name: count for name, key in sc.USAGE_MODALITIES.items() if (count := _int(attrs.get(key)))}
    return json.dumps(found, sort_keys=True) if found else None


def _usd(attrs: Any, key: str) -> str:
    value = attrs.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(Decimal(repr(float(value))))
    return "0"


def task_row(span: ReadableSpan) -> tuple[Any, ...]:
    """The ``tasks`` row for one task span."""
    a = span.attributes or {}
    span_id, trace_id = _ids(span)
    start, end = span.start_time or 0, span.end_time or span.start_time or 0
    cost = _cost(a, sc.TASK_COST_USD_EXACT, sc.TASK_COST_USD) or Decimal(0)
    service, env = _resource(span)
    units = {k[len(sc.TASK_UNITS_PREFIX) :]: v for k, v in a.items() if k.startswith(sc.TASK_UNITS_PREFIX)}
    extra = {
        k: _plain(v) for k, v in a.items() if k not in _TASK_KNOWN and not k.startswith(sc.TASK_UNITS_PREFIX)
    }
    task_id = a.get(sc.TASK_ID)
    exceeded = a.get(sc.TASK_BUDGET_EXCEEDED)
    return (
        task_id,
        a.get(sc.TASK_PARENT_ID),
        a.get(sc.TASK_ROOT_ID) or task_id,
        a.get(sc.TASK_ROOT_NAME) or a.get(sc.TASK_NAME),
        a.get(sc.TASK_NAME) or span.name,
        trace_id,
        span_id,
        start,
        end,
        _day(start),
        a.get(sc.TASK_OUTCOME),
        a.get(sc.ERROR_TYPE),
        _int(a.get(sc.TASK_INPUT_TOKENS)) or 0,
        _int(a.get(sc.TASK_OUTPUT_TOKENS)) or 0,
        _int(a.get(sc.TASK_CACHE_READ_TOKENS)) or 0,
        _int(a.get(sc.TASK_CACHE_WRITE_TOKENS)) or 0,
        _int(a.get(sc.TASK_REASONING_TOKENS)) or 0,
        str(cost),
        _int(a.get(sc.TASK_LLM_CALLS)) or 0,
        _int(a.get(sc.TASK_RETRIES)) or 0,
        _int(a.get(sc.TASK_UNPRICED_CALLS)) or 0,
        _int(a.get(sc.TASK_ESTIMATED_CALLS)) or 0,
        a.get(sc.FEATURE),
        a.get(sc.USER_ID),
        a.get(sc.TENANT),
        service,
        env,
        json.dumps(extra, sort_keys=True) if extra else None,
        json.dumps(units, sort_keys=True) if units else None,
        _int(a.get(sc.TASK_DUPLICATE_CALLS)) or 0,
        _usd(a, sc.TASK_DUPLICATE_COST_USD),
        _int(a.get(sc.TASK_RETRY_WASTE_TOKENS)) or 0,
        _usd(a, sc.TASK_RETRY_WASTE_COST_USD),
        _usd(a, sc.TASK_COST_INPUT_USD),
        _usd(a, sc.TASK_COST_CACHE_READ_USD),
        _usd(a, sc.TASK_COST_CACHE_WRITE_USD),
        _usd(a, sc.TASK_COST_OUTPUT_USD),
        _usd(a, sc.TASK_COST_OTHER_USD),
        None if exceeded is None else int(bool(exceeded)),
        _int(a.get(sc.TASK_BUDGET_BLOCKED_CALLS)) or 0,
    )
