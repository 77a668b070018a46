"""genai-prices' own reading of a recorded response, to check tokentrace's against.

For a recorded non-streamed response, ``database_price`` asks genai-prices itself to read the
usage out of the body (``extract_usage``) and to price it (``calc_price``). Where tokentrace
prices a call from the same database, the two must agree to the last digit; this checks
tokentrace's own usage readers, its model matching and its integer arithmetic in one go,
independently of the ground truth's token counts. genai-prices' extractor leaves out the
Responses API's built-in tool calls, which are billed per call: the oracle counts them from the
response's own output items.
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from typing import Any

import genai_prices

# The corpus's provider name -> genai-prices' provider id.
_PROVIDER_ID = {
    "openai": "openai",
    "azure-openai": "azure",
    "openrouter": "openrouter",
    "deepseek": "deepseek",
    "together": "together",
    "anthropic": "anthropic",
    "anthropic-bedrock": "aws",
    "bedrock": "aws",
    "gemini": "google",
    "vertexai": "google",
    "mistral": "mistral",
    "cohere": "cohere",
    "groq": "groq",
}
_OPENAI_SHAPED = ("openai", "azure-openai", "openrouter", "deepseek", "together")


def _flavor(provider: str, path: str) -> str:
    if path.endswith("/v1/responses"):
        return "responses"
    if path.endswith(("/embeddings", "/v2/embed")):
        return "embeddings"
    return "chat" if provider in _OPENAI_SHAPED else "default"


def _body(raw: bytes) -> Any:
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return json.loads(raw)


def database_price(
    provider: str, path: str, body: bytes, attrs: dict[str, Any]
) -> tuple[Decimal | None, str]:
    """genai-prices' price of one recorded response, and how it was found.

    The usage and model come from genai-prices' own extractor where it can read the body.
    Where it cannot (an API shape it has no extractor for, such as Bedrock's InvokeModel
    bodies, or a response naming a model it does not know, such as ``davinci:2023-07-21-v2``),
    the usage comes from the token counts on tokentrace's span, so that the model match and
    the arithmetic are still checked, and the model is the response's, else the request's, the
    first that genai-prices knows. ``None`` means genai-prices has no price either.
    """
    provider_id = _PROVIDER_ID[provider]
    tier = attrs.get("openai.response.service_tier")
    context = {"service_tier": tier} if tier else None
    usage: Any
    data = _body(body)
    try:
        extracted = genai_prices.extract_usage(
            data, provider_id=provider_id, api_flavor=_flavor(provider, path)
        )
    except (ValueError, KeyError, TypeError, LookupError):
        usage = genai_prices.Usage(
            input_tokens=attrs.get("gen_ai.usage.input_tokens"),
            output_tokens=attrs.get("gen_ai.usage.output_tokens"),
            cache_read_tokens=attrs.get("gen_ai.usage.cache_read.input_tokens"),
            cache_write_tokens=attrs.get("gen_ai.usage.cache_write.input_tokens"),
            web_searches=attrs.get("tokentrace.usage.web_search_requests"),
        )
        how = "span counts"
    else:
        usage, how = extracted.usage, "extracted"
        if _flavor(provider, path) == "responses":
            # Billed per tool call, which the extractor leaves out: the response's own items.
            kinds = [item.get("type") for item in data.get("output") or ()]
            usage.web_searches = kinds.count("web_search_call") or None
            usage.storage_searches = kinds.count("file_search_call") or None
        if extracted.model is not None:
            price = extracted.calc_price(price_context=context)
            return price.total_price, f"{how}, {price.provider.id}/{price.model.id}"
    models = [m for m in (attrs.get("gen_ai.response.model"), attrs.get("gen_ai.request.model")) if m]
    for model in dict.fromkeys(models):
        try:
            price = genai_prices.calc_price(usage, model, provider_id=provider_id, price_context=context)
        except LookupError:
            continue
        return price.total_price, f"{how}, {price.provider.id}/{price.model.id}"
    return None, how
