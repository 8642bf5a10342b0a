"""OpenTelemetry GenAI semantic conventions, current and deprecated, and their dialects.

One adapter reads every ``gen_ai.*`` spelling, because the emitters that use them differ only in
details, and the ``convention`` column tells those emitters apart:

- ``gen_ai``: the OpenTelemetry conventions (``gen_ai.provider.name`` since 1.37,
  ``gen_ai.system`` before; ``gen_ai.usage.input_tokens`` since 1.27, ``prompt_tokens`` before;
  cache keys since 1.40; reasoning since 1.41; ``cache_write`` in the new genai repository),
  and what Logfire, pydantic-ai and the Vercel AI SDK 7 emit in that format.
- ``traceloop``: OpenLLMetry, recognized by its own keys (``llm.request.type``,
  ``traceloop.*``, ``llm.usage.total_tokens``, ``gen_ai.usage.total_tokens``, the underscore
  cache keys ``gen_ai.usage.cache_read_input_tokens`` ...).
- ``openlit``: OpenLIT (resource ``telemetry.sdk.name=openlit``). Its Anthropic instrumentation
  reports ``gen_ai.usage.input_tokens`` *without* cached tokens, against the convention; that
  one case is converted.

Token semantics: input includes cache reads and writes (the convention's SHOULD since 1.40, and
what every examined emitter does except OpenLIT+Anthropic); output includes reasoning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

from otelcost.normalize.conventions.base import RawUsage, Role, SpanContext, first_count
from otelcost.normalize.conventions.common import read_provider

__all__ = ["GenAiAdapter"]

INPUT_KEYS: Final = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT_KEYS: Final = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
CACHE_READ_KEYS: Final = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.prompt_tokens_details.cached_tokens",
)
CACHE_WRITE_KEYS: Final = (
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.prompt_tokens_details.cache_creation_tokens",
)
REASONING_KEYS: Final = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
    "llm.usage.reasoning_tokens",
    "gen_ai.usage.details.reasoning_tokens",
)
TOTAL_KEYS: Final = ("gen_ai.usage.total_tokens", "llm.usage.total_tokens")

INFERENCE_OPERATIONS: Final = frozenset(
    {
        "chat",
        "text_completion",
        "generate_content",
        "embeddings",
        # older or instrumentation-specific spellings of the same operations
        "completion",
        "generate",
        "embedding",
        "responses",
    }
)
"""Operations that are one request to a model. Every other operation (``invoke_agent``,
``create_agent``, ``execute_tool``, ``invoke_workflow``, ``retrieval``, memory operations, custom
values) is a wrapper: it becomes a row only if it carries usage and no call below it does."""

_TRACELOOP_REQUEST_TYPES: Final = {
    "chat": "chat",
    "completion": "text_completion",
    "embedding": "embeddings",
    "rerank": "rerank",
}
_OPERATION_SPELLINGS: Final = {
    "completion": "text_completion",
    "generate": "generate_content",
    "embedding": "embeddings",
}
_TRACELOOP_WRAPPER_KINDS: Final = frozenset({"workflow", "task", "agent", "tool"})

TRACELOOP_MARKERS: Final = frozenset(
    {
        "llm.request.type",
        "llm.usage.total_tokens",
        "llm.usage.reasoning_tokens",
        "gen_ai.usage.total_tokens",
        "llm.is_streaming",
        "gen_ai.is_streaming",
        "gen_ai.usage.cache_read_input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
        "gen_ai.openai.api_base",
        "traceloop.span.kind",
        "traceloop.workflow.name",
        "traceloop.entity.name",
        "traceloop.entity.path",
    }
)

USAGE_KEYS: Final = frozenset(
    INPUT_KEYS + OUTPUT_KEYS + CACHE_READ_KEYS + CACHE_WRITE_KEYS + REASONING_KEYS + TOTAL_KEYS
)


class GenAiAdapter:
    name: ClassVar[str] = "gen_ai"
    usage_keys: ClassVar[frozenset[str]] = USAGE_KEYS
    markers: ClassVar[frozenset[str]] = USAGE_KEYS | {
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.system",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "llm.request.type",
        "traceloop.span.kind",
    }

    @staticmethod
    def _raw_operation(attrs: Mapping[str, Any]) -> str | None:
        op = attrs.get("gen_ai.operation.name")
        if isinstance(op, str) and op:
            return op
        request_type = attrs.get("llm.request.type")
        if isinstance(request_type, str) and request_type:
            return _TRACELOOP_REQUEST_TYPES.get(request_type.lower(), request_type.lower())
        return None

    def classify(self, attrs: Mapping[str, Any], span_name: str) -> Role | None:
        kind = attrs.get("traceloop.span.kind")
        if isinstance(kind, str) and kind.lower() in _TRACELOOP_WRAPPER_KINDS:
            return Role.WRAPPER
        op = self._raw_operation(attrs)
        if op is not None:
            return Role.CALL if op in INFERENCE_OPERATIONS else Role.WRAPPER
        # No operation name (older emitters): a model with a provider, or token counts, make
        # it a call. A model alone does not: proxies stamp the requested model on the spans
        # around the call (LiteLLM's "route <model>" and FastAPI dependency spans carry only
        # gen_ai.request.model), and each would be counted as one more call without usage.
        if ("gen_ai.request.model" in attrs or "gen_ai.response.model" in attrs) and read_provider(attrs):
            return Role.CALL
        if not USAGE_KEYS.isdisjoint(attrs):
            return Role.CALL
        return None

    def usage(self, attrs: Mapping[str, Any], ctx: SpanContext) -> RawUsage | None:
        if USAGE_KEYS.isdisjoint(attrs):
            return None
        openlit_anthropic = ctx.sdk_name == "openlit" and ctx.provider == "anthropic"
        return RawUsage(
            input=first_count(attrs, INPUT_KEYS),
            output=first_count(attrs, OUTPUT_KEYS),
            cache_read=first_count(attrs, CACHE_READ_KEYS),
            cache_write=first_count(attrs, CACHE_WRITE_KEYS),
            reasoning=first_count(attrs, REASONING_KEYS),
            total=first_count(attrs, TOTAL_KEYS),
            input_includes_cache=not openlit_anthropic,
        )

    def operation(self, attrs: Mapping[str, Any], span_name: str) -> str | None:
        op = self._raw_operation(attrs)
        if op is None:
            return None
        return _OPERATION_SPELLINGS.get(op, op)

    def label(self, attrs: Mapping[str, Any], ctx: SpanContext) -> str:
        if ctx.sdk_name == "openlit" or ctx.scope_name.startswith("openlit"):
            return "openlit"
        if not TRACELOOP_MARKERS.isdisjoint(attrs):
            return "traceloop"
        return "gen_ai"
