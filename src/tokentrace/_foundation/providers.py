"""Which provider an API host belongs to: one table for the name calls are reported under
(``gen_ai.provider.name``) and the provider the price database prices them as."""

from __future__ import annotations

import functools
from typing import Final, NamedTuple
from urllib.parse import urlsplit


class Host(NamedTuple):
    """A provider's API host."""

    host: str
    """The host; any subdomain of it matches too (Azure's resources: ``x.openai.azure.com``)."""
    provider: str
    """Its ``gen_ai.provider.name`` (the OTel GenAI convention's value where it has one)."""
    prices_id: str | None
    """The price database's id for the provider, when it prices calls by provider; ``None``:
    by the endpoint's URL (a gateway the database knows by its URL)."""
    openai_compatible: bool = False
    """Reached through the openai SDK at this host (an OpenAI-compatible endpoint)."""


HOSTS: Final[tuple[Host, ...]] = (
    Host("api.openai.com", "openai", "openai"),
    Host("api.anthropic.com", "anthropic", "anthropic"),
    Host(".openai.azure.com", "azure.ai.openai", None, openai_compatible=True),
    Host(".cognitiveservices.azure.com", "azure.ai.openai", None, openai_compatible=True),
    Host(".services.ai.azure.com", "azure.ai.inference", None, openai_compatible=True),
    Host("openrouter.ai", "openrouter", None, openai_compatible=True),
    Host("api.deepseek.com", "deepseek", "deepseek", openai_compatible=True),
    Host("api.together.xyz", "together", "together", openai_compatible=True),
    Host("api.together.ai", "together", "together", openai_compatible=True),
    Host("api.fireworks.ai", "fireworks", "fireworks", openai_compatible=True),
    Host("api.groq.com", "groq", "groq", openai_compatible=True),
    Host("api.mistral.ai", "mistral_ai", "mistral", openai_compatible=True),
    Host("api.x.ai", "x_ai", "x-ai", openai_compatible=True),
    Host("api.perplexity.ai", "perplexity", "perplexity", openai_compatible=True),
    Host("api.cerebras.ai", "cerebras", "cerebras", openai_compatible=True),
    Host("api.cohere.com", "cohere", "cohere"),
    Host("api.cohere.ai", "cohere", "cohere"),
    Host("generativelanguage.googleapis.com", "gcp.gemini", "google", openai_compatible=True),
)

PRICES_IDS: Final[dict[str, str]] = {h.provider: h.prices_id for h in HOSTS if h.prices_id is not None}
"""The price database's id for each provider priced by provider."""


def _matches(host: str, entry: str) -> bool:
    """``host`` is ``entry`` or one of its subdomains."""
    return host == entry.lstrip(".") or host.endswith(entry if entry.startswith(".") else "." + entry)


@functools.lru_cache(maxsize=512)
def host_of(base_url: str) -> Host | None:
    """The table's entry for ``base_url``'s host, or ``None`` (cached per URL)."""
    try:
        host = (urlsplit(base_url).hostname or "").lower()
    except ValueError:
        return None
    if host.startswith("bedrock-runtime.") and host.endswith(".amazonaws.com"):
        return Host(host, "aws.bedrock", None)  # regional hosts, priced by URL
    if host.endswith("aiplatform.googleapis.com"):  # global and regional (us-central1-...)
        return Host(host, "gcp.vertex_ai", "google")
    return next((entry for entry in HOSTS if _matches(host, entry.host)), None)


def is_own_api(provider: str, base_url: str) -> bool:
    """Whether ``base_url`` is ``provider``'s own API (the same provider's, or Google's for
    Gemini and Vertex AI alike), which is priced by provider, never by URL."""
    entry = host_of(base_url)
    return entry is not None and PRICES_IDS.get(entry.provider, "") == PRICES_IDS.get(provider)
