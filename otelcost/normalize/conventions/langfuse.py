"""Langfuse-native spans (``langfuse.*`` attributes set by the Langfuse SDKs).

Recognized by ``langfuse.observation.type`` (``generation`` and ``embedding`` are calls; ``span``,
``agent``, ``tool``, ``chain`` ... are wrappers) or by ``langfuse.observation.usage_details``.
Usage is one attribute holding a JSON object (a JSON string, or an OTLP kvlist). Its shape tells
its semantics:

- Langfuse's own keys (``input``, ``output``, ``total``, ``input_cached_tokens`` /
  ``input_cache_read`` / ``cache_read_input_tokens``, ``input_cache_creation`` (+ ``_5m`` /
  ``_1h``) / ``cache_creation_input_tokens``, ``output_reasoning_tokens`` / ``output_reasoning``)
  are *disjoint parts*: ``input`` excludes the cache, ``output`` excludes reasoning. Converted.
- OpenAI's usage object (``prompt_tokens``, ``completion_tokens``, ``prompt_tokens_details``,
  ``completion_tokens_details``), which Langfuse's OpenAI integration passes through as is:
  input includes cache reads, output includes reasoning.
- Anthropic's usage object (``input_tokens`` with ``cache_read_input_tokens`` /
  ``cache_creation_input_tokens``): input excludes the cache. Converted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, Final

from otelcost.normalize.conventions.base import RawUsage, Role, SpanContext, first_count
from otelcost.normalize.values import InvalidCountError

__all__ = ["LangfuseAdapter"]

USAGE_KEY: Final = "langfuse.observation.usage_details"
_CALL_TYPES: Final = {"generation": "chat", "embedding": "embeddings"}
_CACHE_READ: Final = ("input_cached_tokens", "input_cache_read", "cache_read_input_tokens")
_CACHE_WRITE_TOTAL: Final = ("input_cache_creation", "cache_creation_input_tokens")
_CACHE_WRITE_PARTS: Final = ("input_cache_creation_5m", "input_cache_creation_1h")
_REASONING: Final = ("output_reasoning_tokens", "output_reasoning")


def _details(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise InvalidCountError("invalid_token_count", USAGE_KEY, raw) from None
        if isinstance(parsed, dict):
            return parsed
    raise InvalidCountError("invalid_token_count", USAGE_KEY, raw)


def _flatten(details: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a": {"b": 3}}`` -> ``{"a.b": 3}``: OpenAI's nested ``*_tokens_details`` objects."""
    flat: dict[str, Any] = {}
    for key, value in details.items():
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                flat[f"{key}.{inner}"] = inner_value
        else:
            flat[key] = value
    return flat


def _sum_parts(usage: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    counts = [first_count(usage, (key,)) for key in keys]
    present = [c for c in counts if c is not None]
    return sum(present) if present else None


class LangfuseAdapter:
    name: ClassVar[str] = "langfuse"
    usage_keys: ClassVar[frozenset[str]] = frozenset({USAGE_KEY})
    markers: ClassVar[frozenset[str]] = frozenset(
        {USAGE_KEY, "langfuse.observation.type", "langfuse.observation.model.name"}
    )

    def classify(self, attrs: Mapping[str, Any], span_name: str) -> Role | None:
        kind = attrs.get("langfuse.observation.type")
        if isinstance(kind, str) and kind:
            return Role.CALL if kind.lower() in _CALL_TYPES else Role.WRAPPER
        return Role.CALL if USAGE_KEY in attrs else None

    def usage(self, attrs: Mapping[str, Any], ctx: SpanContext) -> RawUsage | None:
        raw = attrs.get(USAGE_KEY)
        if raw is None:
            return None
        usage = _flatten(_details(raw))
        if "prompt_tokens" in usage or "completion_tokens" in usage:
            return RawUsage(
                input=first_count(usage, ("prompt_tokens",)),
                output=first_count(usage, ("completion_tokens",)),
                cache_read=first_count(usage, ("prompt_tokens_details.cached_tokens",)),
                cache_write=first_count(usage, ("prompt_tokens_details.cache_creation_tokens",)),
                reasoning=first_count(usage, ("completion_tokens_details.reasoning_tokens",)),
                total=first_count(usage, ("total_tokens",)),
            )
        if "input_tokens" in usage or "output_tokens" in usage:
            anthropic_shape = "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage
            return RawUsage(
                input=first_count(usage, ("input_tokens",)),
                output=first_count(usage, ("output_tokens",)),
                cache_read=first_count(
                    usage, ("cache_read_input_tokens", "input_tokens_details.cached_tokens")
                ),
                cache_write=first_count(usage, ("cache_creation_input_tokens",)),
                reasoning=first_count(usage, ("output_tokens_details.reasoning_tokens",)),
                total=first_count(usage, ("total_tokens",)),
                input_includes_cache=not anthropic_shape,
            )
        cache_write = first_count(usage, _CACHE_WRITE_TOTAL)
        if cache_write is None:
            cache_write = _sum_parts(usage, _CACHE_WRITE_PARTS)
        return RawUsage(
            input=first_count(usage, ("input",)),
            output=first_count(usage, ("output",)),
            cache_read=first_count(usage, _CACHE_READ),
            cache_write=cache_write,
            reasoning=first_count(usage, _REASONING),
            total=first_count(usage, ("total",)),
            input_includes_cache=False,
            output_includes_reasoning=False,
        )

    def operation(self, attrs: Mapping[str, Any], span_name: str) -> str | None:
        kind = attrs.get("langfuse.observation.type")
        if isinstance(kind, str):
            return _CALL_TYPES.get(kind.lower(), kind.lower())
        return "chat"

    def label(self, attrs: Mapping[str, Any], ctx: SpanContext) -> str:
        return self.name
