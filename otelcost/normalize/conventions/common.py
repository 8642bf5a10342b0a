"""Fields read the same way whichever convention recognized a span: one merged key list each.

Models, provider and service tier do not change meaning between conventions, only spelling, so
each is the first present key of a list that spans all conventions (documented, with the same
order, in docs/conventions.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from otelcost.normalize.providers import (
    normalize_provider,
    normalize_service_tier,
    openinference_provider,
    provider_from_address,
)

__all__ = [
    "REQUEST_MODEL_KEYS",
    "RESPONSE_ID_KEYS",
    "RESPONSE_MODEL_KEYS",
    "SERVICE_TIER_KEYS",
    "first_text",
    "read_provider",
    "read_response_id",
    "read_service_tier",
]

REQUEST_MODEL_KEYS: Final = (
    "gen_ai.request.model",
    "llm.request.model_name",
    "ai.model.id",
    "llm.model_name",
    "embedding.model_name",
    "langfuse.observation.model.name",
)
RESPONSE_MODEL_KEYS: Final = (
    "gen_ai.response.model",
    "llm.response.model_name",
    "ai.response.model",
    "llm.model_name",
    "langfuse.observation.model.name",
)
RESPONSE_ID_KEYS: Final = (
    # OpenTelemetry GenAI (also OpenLLMetry, Logfire, the provider SDKs' own spans), Vercel AI SDK.
    "gen_ai.response.id",
    "ai.response.id",
)
PROVIDER_KEYS: Final = ("gen_ai.provider.name", "gen_ai.system")
_JSON_ID_PREFIX: Final = '{"id":'
_JSON_ID_SCAN: Final = 200
SERVICE_TIER_KEYS: Final = (
    # OpenTelemetry (openai.* since 1.37, gen_ai.openai.* before), OpenLLMetry's Anthropic
    # instrumentation (anthropic.*), OpenLIT (gen_ai.request/response.service_tier).
    # What the provider answered (the tier actually used) beats what was asked for ("auto").
    "openai.response.service_tier",
    "gen_ai.openai.response.service_tier",
    "gen_ai.response.service_tier",
    "anthropic.response.service_tier",
    "openai.request.service_tier",
    "gen_ai.openai.request.service_tier",
    "gen_ai.request.service_tier",
    "anthropic.request.service_tier",
)


def first_text(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    """The first of ``keys`` holding a non-empty value, as text."""
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value if isinstance(value, str) else str(value)
    return None


def read_response_id(attrs: Mapping[str, Any]) -> str | None:
    """The provider's response id: an id attribute, else the ``id`` that opens a JSON
    ``output.value`` (OpenInference records the whole response body there and has no id key).

    Only the opening of the body is read: OpenAI and Anthropic responses begin with their
    ``id``, and parsing a whole response (kilobytes of text) per span would cost more than
    everything else the normalizer does with it.
    """
    for key in RESPONSE_ID_KEYS:
        value = attrs.get(key)
        if type(value) is str and value:
            return value
    output = attrs.get("output.value")
    if type(output) is not str or not output.startswith(_JSON_ID_PREFIX):
        return None
    head = output[len(_JSON_ID_PREFIX) : _JSON_ID_SCAN].lstrip()
    if not head.startswith('"'):
        return None
    end = head.find('"', 1)
    ident = head[1:end] if end > 1 else ""
    return ident if ident and "\\" not in ident else None


def read_provider(attrs: Mapping[str, Any]) -> str | None:
    """``gen_ai.provider.name`` > ``gen_ai.system`` > OpenInference ``llm.provider`` /
    ``llm.system`` > Vercel ``ai.model.provider`` > a guess from ``server.address``."""
    for key in PROVIDER_KEYS:
        value = attrs.get(key)
        if isinstance(value, str) and value:
            return normalize_provider(value)
    host, family = attrs.get("llm.provider"), attrs.get("llm.system")
    if host or family:
        return openinference_provider(host, family)
    value = attrs.get("ai.model.provider")
    if isinstance(value, str) and value:
        return normalize_provider(value)
    return provider_from_address(attrs.get("server.address"))


def read_service_tier(attrs: Mapping[str, Any]) -> str:
    """The first recognizable tier in :data:`SERVICE_TIER_KEYS`, then the ``service_tier`` inside
    OpenInference's ``llm.invocation_parameters`` JSON; ``standard`` otherwise."""
    for key in SERVICE_TIER_KEYS:
        raw = attrs.get(key)
        if raw is not None:
            tier = normalize_service_tier(raw)
            if tier is not None:
                return tier
    params = attrs.get("llm.invocation_parameters")
    if isinstance(params, str) and "service_tier" in params:
        try:
            parsed = json.loads(params)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            tier = normalize_service_tier(parsed.get("service_tier"))
            if tier is not None:
                return tier
    return "standard"
