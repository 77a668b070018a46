"""LiteLLM: ``completion``, ``text_completion``, ``embedding`` and ``responses`` (sync and async),
and the same methods of a ``Router``.

LiteLLM sends each provider's HTTP requests itself, so a call through it is a relayed call (see
``RelayIntegration``): its usage is read from the provider's own response by the HTTP client
integrations, and LiteLLM's own retries (``num_retries``) and a Router's retries and fallbacks
are attempts of the one call. This module says only which methods make a call and how to read
its request. A Router serves its methods from its core class (``Router.completion`` is
``RustCore.completion``), which is patched where it is defined.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokentrace.integrations import Method, RelayIntegration, Request

# LiteLLM's provider prefixes (``anthropic/claude-...``), as gen_ai.provider.name names them.
_PROVIDERS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "groq": "groq",
    "mistral": "mistral_ai",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "openrouter": "openrouter",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "perplexity": "perplexity",
    "cerebras": "cerebras",
    "ollama": "ollama",
    "ollama_chat": "ollama",
}
# Bedrock model names may name the API LiteLLM is to use first (``bedrock/converse/<model id>``).
_BEDROCK_APIS = ("converse/", "invoke/")

# (name, operation, the parameters it takes by position)
_FUNCTIONS = (
    ("completion", "chat", ("model", "messages")),
    ("text_completion", "text_completion", ("prompt", "model")),
    ("embedding", "embeddings", ("model", "input")),
    ("responses", "chat", ("input", "model")),
)
_ROUTER = "litellm.router_rust.core"


def _methods() -> tuple[Method, ...]:
    methods: list[Method] = []
    for name, operation, positional in _FUNCTIONS:
        for is_async in (False, True):
            qualname = f"a{name}" if is_async else name
            methods.append(Method("litellm", qualname, operation, is_async, positional=positional))
            # A Router's methods take the model group first; its sync responses is served by name.
            if name != "responses" or is_async:
                router = ("model", *(p for p in positional if p != "model"))
                core = f"RustCore.{qualname}"
                methods.append(Method(_ROUTER, core, operation, is_async, optional=True, positional=router))
    return tuple(methods)


class LiteLLMIntegration(RelayIntegration):
    name = "litellm"
    distribution = "litellm"
    module = "litellm"
    min_version = (1, 110)
    provider = "litellm"
    """Until a request is seen: the provider of the attempt that answered names the call."""
    methods = _methods()

    def request(self, method: Method, instance: Any, kwargs: Mapping[str, Any]) -> Request:
        model = kwargs.get("model")
        named = kwargs.get("custom_llm_provider")
        provider = _PROVIDERS.get(named) if isinstance(named, str) else None
        if isinstance(model, str) and instance is None:
            # A Router's model is the name of one of its model groups, not a provider's model.
            prefix, _, rest = model.partition("/")
            if rest and prefix in _PROVIDERS:
                provider = _PROVIDERS[prefix]
                model = rest
                if prefix == "bedrock" and rest.startswith(_BEDROCK_APIS):
                    model = rest.partition("/")[2]
        base_url = kwargs.get("api_base") or kwargs.get("base_url")
        return Request(
            model if isinstance(model, str) else None,
            kwargs.get("stream") is True,
            base_url if isinstance(base_url, str) else None,
            provider,
            kwargs,
        )
