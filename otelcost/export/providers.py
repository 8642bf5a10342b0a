"""Who sells, who hosts, who invoices and who made the model: FOCUS's entity columns.

The lake knows the provider as OpenTelemetry names it (``gen_ai.provider.name``: ``openai``,
``aws.bedrock`` ...) and the catalog model id. FOCUS wants companies and services
(:func:`entities`):

* ``HostProviderName``: whose infrastructure serves the calls: the cloud for Amazon Bedrock,
  Vertex AI and Azure; the model maker for its own API.
* ``InvoiceIssuerName`` and ``ProviderName`` (1.0-1.2: who makes the service available): the
  same company, the one whose bill the calls are on.
* ``ServiceProviderName`` (1.3): who sells the service. A third party's model on a cloud
  marketplace (Claude on Amazon Bedrock: the first call creates an AWS Marketplace agreement
  with Anthropic; Claude on Vertex AI) is sold by its developer, so Anthropic, while AWS hosts
  and invoices it (FOCUS 1.3 ServiceProviderName: "In marketplace scenarios, the Service
  Provider represents the seller rather than the marketplace operator"). The cloud's own models
  (Amazon Nova on Bedrock, Gemini on Vertex AI) and Azure OpenAI, a first-party Azure service,
  are sold by the cloud.
* ``PublisherName`` (1.0-1.2) and the ``x_ModelDeveloper`` property: who made the model, read
  from the model id.

Unknown providers keep their OpenTelemetry name, so nothing is silently relabelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["Entities", "Seller", "entities", "model_developer", "seller_of"]


@dataclass(frozen=True, slots=True)
class Seller:
    """The company that sells (and hosts, and invoices) a provider's calls, and its service."""

    company: str
    service: str


_SELLERS: Final[dict[str, Seller]] = {
    "openai": Seller("OpenAI", "OpenAI API"),
    "anthropic": Seller("Anthropic", "Claude API"),
    "aws.bedrock": Seller("Amazon Web Services", "Amazon Bedrock"),
    "azure.ai.openai": Seller("Microsoft", "Azure OpenAI"),
    "azure.ai.inference": Seller("Microsoft", "Azure AI Inference"),
    "gcp.vertex_ai": Seller("Google Cloud", "Vertex AI"),
    "gcp.gemini": Seller("Google", "Gemini API"),
    "gcp.gen_ai": Seller("Google", "Gemini API"),
    "mistral_ai": Seller("Mistral AI", "Mistral API"),
    "deepseek": Seller("DeepSeek", "DeepSeek API"),
    "x_ai": Seller("xAI", "xAI API"),
    "cohere": Seller("Cohere", "Cohere API"),
    "perplexity": Seller("Perplexity", "Perplexity API"),
    "groq": Seller("Groq", "GroqCloud"),
    "moonshot_ai": Seller("Moonshot AI", "Moonshot API"),
    "ibm.watsonx.ai": Seller("IBM", "watsonx.ai"),
}

_UNKNOWN: Final = "unknown"

_MARKETPLACES: Final = frozenset({"aws.bedrock", "gcp.vertex_ai"})
"""Clouds where a third party's model is sold by its developer (see the module docstring)."""

_OWN_MODELS: Final = {"Amazon Web Services": "Amazon", "Google Cloud": "Google"}
"""A cloud and the name of the company whose models it sells as its own."""

# Model id prefixes (after a Bedrock geography prefix is removed), most specific first.
_DEVELOPERS: Final[tuple[tuple[str, str], ...]] = (
    ("claude", "Anthropic"),
    ("anthropic.", "Anthropic"),
    ("gpt-", "OpenAI"),
    ("chatgpt", "OpenAI"),
    ("o1", "OpenAI"),
    ("o3", "OpenAI"),
    ("o4", "OpenAI"),
    ("text-embedding-3", "OpenAI"),
    ("text-embedding-ada", "OpenAI"),
    ("gemini", "Google"),
    ("gemma", "Google"),
    ("text-embedding-0", "Google"),
    ("mistral", "Mistral AI"),
    ("ministral", "Mistral AI"),
    ("magistral", "Mistral AI"),
    ("codestral", "Mistral AI"),
    ("devstral", "Mistral AI"),
    ("pixtral", "Mistral AI"),
    ("llama", "Meta"),
    ("meta.", "Meta"),
    ("amazon.", "Amazon"),
    ("nova", "Amazon"),
    ("titan", "Amazon"),
    ("command", "Cohere"),
    ("embed-", "Cohere"),
    ("cohere.", "Cohere"),
    ("deepseek", "DeepSeek"),
    ("grok", "xAI"),
    ("sonar", "Perplexity"),
)
_GEOGRAPHIES: Final = ("global.", "us.", "eu.", "apac.", "jp.", "au.", "ca.", "us-gov.")


def seller_of(provider: str | None) -> Seller:
    """The company and service behind ``provider`` (its own name when not in the table)."""
    if not provider:
        return Seller(_UNKNOWN, _UNKNOWN)
    return _SELLERS.get(provider, Seller(provider, provider))


def model_developer(provider: str | None, model: str | None) -> str:
    """Who made ``model``: from its id, else the provider when it makes its own models."""
    name = (model or "").lower()
    for prefix in _GEOGRAPHIES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    for prefix, developer in _DEVELOPERS:
        if name.startswith(prefix):
            return developer
    # A model the table does not know: first-party APIs serve their own models.
    return seller_of(provider).company


@dataclass(frozen=True, slots=True)
class Entities:
    """The FOCUS entity names of one provider and model."""

    service_provider: str
    host_provider: str
    invoice_issuer: str
    service_name: str
    developer: str


def entities(provider: str | None, model: str | None) -> Entities:
    """Who sells, hosts and invoices calls of ``model`` through ``provider``, and who made it."""
    seller = seller_of(provider)
    developer = model_developer(provider, model)
    third_party = developer not in (seller.company, _OWN_MODELS.get(seller.company))
    sold_by = developer if provider in _MARKETPLACES and third_party else seller.company
    return Entities(sold_by, seller.company, seller.company, seller.service, developer)
