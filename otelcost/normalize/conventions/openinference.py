"""OpenInference (Arize Phoenix) spans.

Recognized by ``openinference.span.kind``: ``LLM`` and ``EMBEDDING`` spans are calls; ``CHAIN``,
``AGENT``, ``TOOL``, ``RETRIEVER`` ... are wrappers. Token counts are ``llm.token_count.prompt``
/ ``completion`` / ``total`` with the open-ended ``prompt_details.*`` and ``completion_details.*``
parts. The OpenAI and Anthropic instrumentors report the prompt count *including* cache reads and
writes (the Anthropic one sums them since March 2025) and the completion count including
reasoning; older Anthropic instrumentors reported the raw, cache-exclusive count, which the
common guard catches when the cache parts exceed the prompt count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

from otelcost.normalize.conventions.base import RawUsage, Role, SpanContext, first_count

__all__ = ["OpenInferenceAdapter"]

PROMPT_KEYS: Final = ("llm.token_count.prompt",)
COMPLETION_KEYS: Final = ("llm.token_count.completion",)
CACHE_READ_KEYS: Final = (
    "llm.token_count.prompt_details.cache_read",
    "llm.token_count.prompt_details.cache_input",
)
CACHE_WRITE_KEYS: Final = ("llm.token_count.prompt_details.cache_write",)
REASONING_KEYS: Final = ("llm.token_count.completion_details.reasoning",)
TOTAL_KEYS: Final = ("llm.token_count.total",)
USAGE_KEYS: Final = frozenset(
    PROMPT_KEYS + COMPLETION_KEYS + CACHE_READ_KEYS + CACHE_WRITE_KEYS + REASONING_KEYS + TOTAL_KEYS
)
_CALL_KINDS: Final = {"LLM": "chat", "EMBEDDING": "embeddings"}


class OpenInferenceAdapter:
    name: ClassVar[str] = "openinference"
    usage_keys: ClassVar[frozenset[str]] = USAGE_KEYS
    markers: ClassVar[frozenset[str]] = USAGE_KEYS | {"openinference.span.kind", "llm.model_name"}

    def classify(self, attrs: Mapping[str, Any], span_name: str) -> Role | None:
        kind = attrs.get("openinference.span.kind")
        if isinstance(kind, str) and kind:
            return Role.CALL if kind.upper() in _CALL_KINDS else Role.WRAPPER
        if not USAGE_KEYS.isdisjoint(attrs):
            return Role.CALL
        return None

    def usage(self, attrs: Mapping[str, Any], ctx: SpanContext) -> RawUsage | None:
        if USAGE_KEYS.isdisjoint(attrs):
            return None
        return RawUsage(
            input=first_count(attrs, PROMPT_KEYS),
            output=first_count(attrs, COMPLETION_KEYS),
            cache_read=first_count(attrs, CACHE_READ_KEYS),
            cache_write=first_count(attrs, CACHE_WRITE_KEYS),
            reasoning=first_count(attrs, REASONING_KEYS),
            total=first_count(attrs, TOTAL_KEYS),
        )

    def operation(self, attrs: Mapping[str, Any], span_name: str) -> str | None:
        kind = attrs.get("openinference.span.kind")
        if isinstance(kind, str):
            return _CALL_KINDS.get(kind.upper(), kind.lower())
        return "chat"

    def label(self, attrs: Mapping[str, Any], ctx: SpanContext) -> str:
        return self.name
