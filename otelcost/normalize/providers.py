"""Provider names and service tiers, normalized to one vocabulary.

Every convention spells providers its own way: ``gen_ai.system`` had ``xai`` and
``az.ai.openai`` before ``gen_ai.provider.name`` settled on ``x_ai`` and ``azure.ai.openai``;
OpenLLMetry wrote ``OpenAI`` and ``Anthropic``; the Vercel AI SDK records its own provider ids
(``openai.chat``, ``anthropic.messages``, ``google.vertex.chat``); OpenInference splits the API
family (``llm.system``) from the host (``llm.provider``). The lake stores the OpenTelemetry
``gen_ai.provider.name`` well-known values, so the price catalog is keyed one way.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "SERVICE_TIERS",
    "normalize_provider",
    "normalize_service_tier",
    "openinference_provider",
    "provider_from_address",
]

_PROVIDER_ALIASES: Final[dict[str, str]] = {
    # current gen_ai.provider.name values map to themselves
    **{
        name: name
        for name in (
            "openai",
            "anthropic",
            "aws.bedrock",
            "azure.ai.inference",
            "azure.ai.openai",
            "cohere",
            "deepseek",
            "gcp.gemini",
            "gcp.vertex_ai",
            "gcp.gen_ai",
            "groq",
            "ibm.watsonx.ai",
            "mistral_ai",
            "perplexity",
            "x_ai",
            "moonshot_ai",
        )
    },
    # deprecated gen_ai.system values (semantic conventions <= 1.36)
    "xai": "x_ai",
    "az.ai.inference": "azure.ai.inference",
    "az.ai.openai": "azure.ai.openai",
    "vertex_ai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    # OpenLLMetry before 2026 (capitalized, lower-cased here) and OpenLIT constants
    "azure": "azure.ai.openai",
    "aws": "aws.bedrock",
    "bedrock": "aws.bedrock",
    "google": "gcp.gen_ai",
    "ibm.watson.ai": "ibm.watsonx.ai",
    "watsonx": "ibm.watsonx.ai",
    # OpenInference llm.system / llm.provider values
    "vertexai": "gcp.vertex_ai",
    "mistralai": "mistral_ai",
    "mistral": "mistral_ai",
    "amazon": "aws.bedrock",
    "moonshot": "moonshot_ai",
    # Vercel AI SDK provider ids (the part before the first dot)
    "amazon-bedrock": "aws.bedrock",
    "azure-openai": "azure.ai.openai",
    "google.generative-ai": "gcp.gemini",
    "google.vertex": "gcp.vertex_ai",
    "deepseek.chat": "deepseek",
}

_VERCEL_PREFIXES: Final = (
    ("google.vertex", "gcp.vertex_ai"),
    ("google.generative-ai", "gcp.gemini"),
    ("amazon-bedrock", "aws.bedrock"),
    ("azure-openai", "azure.ai.openai"),
)

_HOST_SUFFIXES: Final = (
    ("api.openai.com", "openai"),
    ("openai.azure.com", "azure.ai.openai"),
    ("services.ai.azure.com", "azure.ai.inference"),
    ("models.ai.azure.com", "azure.ai.inference"),
    ("api.anthropic.com", "anthropic"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
    ("amazonaws.com", "aws.bedrock"),
    ("api.mistral.ai", "mistral_ai"),
    ("api.deepseek.com", "deepseek"),
    ("api.x.ai", "x_ai"),
    ("api.cohere.com", "cohere"),
    ("api.cohere.ai", "cohere"),
    ("api.groq.com", "groq"),
    ("api.perplexity.ai", "perplexity"),
    ("api.moonshot.ai", "moonshot_ai"),
)


def normalize_provider(raw: object) -> str | None:
    """The OpenTelemetry ``gen_ai.provider.name`` value for any known spelling.

    Unknown names are kept, lower-cased and trimmed, so a new provider still groups consistently.
    """
    if not isinstance(raw, str):
        return None
    name = raw.strip().lower()
    if not name:
        return None
    known = _PROVIDER_ALIASES.get(name)
    if known is not None:
        return known
    for prefix, provider in _VERCEL_PREFIXES:
        if name.startswith(prefix):
            return provider
    # Vercel ids are "<provider>.<api>" (openai.chat, anthropic.messages, xai.chat ...)
    head = name.split(".", 1)[0]
    return _PROVIDER_ALIASES.get(head, name)


def openinference_provider(provider: object, system: object) -> str | None:
    """OpenInference splits host (``llm.provider``) from API family (``llm.system``).

    The host decides the bill: OpenAI models hosted by Azure are ``azure.ai.openai``, anything on
    AWS is ``aws.bedrock``, Google with the ``vertexai`` API is ``gcp.vertex_ai``.
    """
    host = provider.strip().lower() if isinstance(provider, str) else ""
    family = system.strip().lower() if isinstance(system, str) else ""
    if host == "azure":
        return "azure.ai.openai" if family in ("", "openai") else "azure.ai.inference"
    if host == "aws":
        return "aws.bedrock"
    if host == "google":
        return "gcp.vertex_ai" if family == "vertexai" else "gcp.gen_ai"
    return normalize_provider(host or family)


def provider_from_address(address: object) -> str | None:
    """Guess the provider from ``server.address`` when no convention names it."""
    if not isinstance(address, str) or not address:
        return None
    host = address.strip().lower()
    for suffix, provider in _HOST_SUFFIXES:
        if host == suffix or host.endswith("." + suffix):
            return provider
    return None


SERVICE_TIERS: Final = ("standard", "batch", "flex", "priority")

_TIER_ALIASES: Final[dict[str, str]] = {
    "standard": "standard",
    "default": "standard",
    "auto": "standard",
    "standard_only": "standard",
    "on_demand": "standard",
    "on-demand": "standard",
    # OpenAI's Scale Tier is prepaid capacity, billed outside per-token list prices.
    "scale": "standard",
    "reserved": "standard",
    "batch": "batch",
    "flex": "flex",
    "priority": "priority",
}


def normalize_service_tier(raw: object) -> str | None:
    """``standard`` | ``batch`` | ``flex`` | ``priority``; None for an unknown or empty value."""
    if not isinstance(raw, str):
        return None
    return _TIER_ALIASES.get(raw.strip().lower())
