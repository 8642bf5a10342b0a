"""Vercel AI SDK spans in its own (``ai.*``) format: AI SDK 3 to 6, and 7's LegacyOpenTelemetry.

Every call makes two spans: an outer ``ai.generateText`` / ``ai.streamText`` /
``ai.generateObject`` / ``ai.streamObject`` / ``ai.embed`` / ``ai.embedMany`` span (a wrapper;
its usage is the sum of its steps, or in AI SDK 5 and early 6 only the last step) and one inner
``...doGenerate`` / ``...doStream`` / ``...doEmbed`` span per provider request (the calls). The
span name and ``ai.operationId`` both hold the operation id.

Token keys changed across versions: ``ai.usage.promptTokens`` / ``completionTokens`` (3-5),
``ai.usage.inputTokens`` / ``outputTokens`` / ``totalTokens`` / ``reasoningTokens`` /
``cachedInputTokens`` (5-6), ``ai.usage.inputTokenDetails.*`` / ``outputTokenDetails.*``
(6.0.119+); embeddings use ``ai.usage.tokens``. Step spans also carry
``gen_ai.usage.input_tokens`` / ``output_tokens`` with the same values.

Semantics: from 6.0.119 (the ``inputTokenDetails`` keys are present) input is the total including
the cache. Before that, input is whatever the provider package reported: inclusive for OpenAI and
Google, but Anthropic's and Bedrock's converters passed the raw cache-exclusive count, with cache
reads in ``cachedInputTokens`` and cache writes only in ``ai.response.providerMetadata``; those
are converted. (AI SDK 6.0.0-6.0.118 already reported Anthropic input inclusively without the
detail keys; such spans are over-counted by their cache tokens. See docs/conventions.md.)
AI SDK 7's default format is the GenAI convention and is read by the gen_ai adapter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, Final

from otelcost.normalize.conventions.base import RawUsage, Role, SpanContext, first_count
from otelcost.normalize.values import read_count

__all__ = ["VercelAiAdapter"]

INPUT_KEYS: Final = (
    "ai.usage.inputTokens",
    "ai.usage.promptTokens",
    "ai.usage.tokens",
    "gen_ai.usage.input_tokens",
)
OUTPUT_KEYS: Final = ("ai.usage.outputTokens", "ai.usage.completionTokens", "gen_ai.usage.output_tokens")
CACHE_READ_KEYS: Final = ("ai.usage.inputTokenDetails.cacheReadTokens", "ai.usage.cachedInputTokens")
CACHE_WRITE_KEYS: Final = ("ai.usage.inputTokenDetails.cacheWriteTokens",)
REASONING_KEYS: Final = ("ai.usage.outputTokenDetails.reasoningTokens", "ai.usage.reasoningTokens")
TOTAL_KEYS: Final = ("ai.usage.totalTokens",)
DETAIL_KEYS: Final = (
    "ai.usage.inputTokenDetails.noCacheTokens",
    "ai.usage.inputTokenDetails.cacheReadTokens",
    "ai.usage.inputTokenDetails.cacheWriteTokens",
)
USAGE_KEYS: Final = frozenset(
    INPUT_KEYS[:3] + OUTPUT_KEYS[:2] + CACHE_READ_KEYS + CACHE_WRITE_KEYS + REASONING_KEYS + TOTAL_KEYS
)
_CALL_SUFFIXES: Final = (".doGenerate", ".doStream", ".doEmbed")
_EXCLUSIVE_PROVIDER_MARKS: Final = ("anthropic", "bedrock")
"""Provider ids (``anthropic.messages``, ``google.vertex.anthropic.messages``,
``amazon-bedrock``) whose converters reported cache-exclusive input before 6.0.119."""


def _operation_id(attrs: Mapping[str, Any], span_name: str) -> str | None:
    op = attrs.get("ai.operationId")
    if isinstance(op, str) and op:
        return op
    return span_name if span_name.startswith("ai.") else None


_CACHE_WRITE_MARKS: Final = ("cacheCreationInputTokens", "cacheWriteInputTokens")


def _provider_metadata_cache_write(attrs: Mapping[str, Any]) -> int | None:
    """Anthropic's cache writes, which AI SDK <= 6.0.118 kept only in the provider metadata."""
    raw = attrs.get("ai.response.providerMetadata")
    if not isinstance(raw, str) or not any(mark in raw for mark in _CACHE_WRITE_MARKS):
        return None
    try:
        metadata = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(metadata, dict):
        return None
    anthropic = metadata.get("anthropic")
    if isinstance(anthropic, dict) and anthropic.get("cacheCreationInputTokens") is not None:
        return read_count(anthropic["cacheCreationInputTokens"], "ai.response.providerMetadata")
    bedrock = metadata.get("bedrock")
    usage = bedrock.get("usage") if isinstance(bedrock, dict) else None
    if isinstance(usage, dict) and usage.get("cacheWriteInputTokens") is not None:
        return read_count(usage["cacheWriteInputTokens"], "ai.response.providerMetadata")
    return None


def _reports_exclusive_input(attrs: Mapping[str, Any]) -> bool:
    raw = attrs.get("ai.model.provider") or attrs.get("gen_ai.system")
    return isinstance(raw, str) and any(mark in raw.lower() for mark in _EXCLUSIVE_PROVIDER_MARKS)


class VercelAiAdapter:
    name: ClassVar[str] = "vercel_ai"
    usage_keys: ClassVar[frozenset[str]] = USAGE_KEYS
    markers: ClassVar[frozenset[str]] = USAGE_KEYS | {"ai.operationId", "ai.model.id", "ai.model.provider"}

    def classify(self, attrs: Mapping[str, Any], span_name: str) -> Role | None:
        op = _operation_id(attrs, span_name)
        if op is not None:
            return Role.CALL if op.endswith(_CALL_SUFFIXES) else Role.WRAPPER
        if not USAGE_KEYS.isdisjoint(attrs):
            return Role.CALL
        return None

    def usage(self, attrs: Mapping[str, Any], ctx: SpanContext) -> RawUsage | None:
        if USAGE_KEYS.isdisjoint(attrs):
            return None
        has_details = any(key in attrs for key in DETAIL_KEYS)
        cache_write = first_count(attrs, CACHE_WRITE_KEYS)
        if cache_write is None and not has_details:
            cache_write = _provider_metadata_cache_write(attrs)
        return RawUsage(
            input=first_count(attrs, INPUT_KEYS),
            output=first_count(attrs, OUTPUT_KEYS),
            cache_read=first_count(attrs, CACHE_READ_KEYS),
            cache_write=cache_write,
            reasoning=first_count(attrs, REASONING_KEYS),
            total=first_count(attrs, TOTAL_KEYS),
            input_includes_cache=has_details or not _reports_exclusive_input(attrs),
        )

    def operation(self, attrs: Mapping[str, Any], span_name: str) -> str | None:
        op = _operation_id(attrs, span_name) or ""
        return "embeddings" if op.startswith("ai.embed") else "chat"

    def label(self, attrs: Mapping[str, Any], ctx: SpanContext) -> str:
        return self.name
