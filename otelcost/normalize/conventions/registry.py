"""The adapter registry: which conventions exist, in which order they are consulted.

Order matters when one span speaks several conventions (OpenInference with its GenAI output
switched on, Vercel AI SDK step spans that repeat their usage under ``gen_ai.usage.*``, a Langfuse
generation that also carries OpenLLMetry keys). The rule:

1. Every adapter whose marker keys appear on the span classifies it, in :data:`ADAPTERS` order.
2. The first adapter that finds token counts is the span's convention: *all* token counts come
   from it, never mixed across conventions (their semantics differ).
3. If no adapter finds token counts, the first adapter that classified the span decides.
4. Model, provider, service tier and error fields are read from a merged key list
   (:mod:`otelcost.normalize.conventions.common`), whichever convention recognized the span.

The order is Vercel AI SDK (its spans repeat usage under ``gen_ai.*`` with the AI SDK's own
semantics, so its keys must win on its spans), then the OpenTelemetry GenAI family (the standard),
then OpenInference, then Langfuse.
"""

from __future__ import annotations

from typing import Final

from otelcost.normalize.conventions.base import Adapter
from otelcost.normalize.conventions.gen_ai import GenAiAdapter
from otelcost.normalize.conventions.langfuse import LangfuseAdapter
from otelcost.normalize.conventions.openinference import OpenInferenceAdapter
from otelcost.normalize.conventions.vercel_ai import VercelAiAdapter

__all__ = ["ADAPTERS", "MARKER_BITS", "USAGE_KEYS", "adapters_for"]

ADAPTERS: Final[tuple[Adapter, ...]] = (
    VercelAiAdapter(),
    GenAiAdapter(),
    OpenInferenceAdapter(),
    LangfuseAdapter(),
)


def _marker_bits() -> dict[str, int]:
    bits: dict[str, int] = {}
    for index, adapter in enumerate(ADAPTERS):
        for key in adapter.markers:
            bits[key] = bits.get(key, 0) | (1 << index)
    return bits


MARKER_BITS: Final = _marker_bits()
"""Attribute key -> bit mask of the adapters it may belong to (one dict lookup per key)."""

USAGE_KEYS: Final = frozenset().union(*(adapter.usage_keys for adapter in ADAPTERS))
"""Every key that carries token counts, in any convention (used to find usage in span events)."""

_BY_MASK: dict[int, tuple[Adapter, ...]] = {}


def adapters_for(mask: int) -> tuple[Adapter, ...]:
    """The adapters whose bit is set in ``mask``, in registry order (memoized per mask)."""
    found = _BY_MASK.get(mask)
    if found is None:
        found = tuple(adapter for index, adapter in enumerate(ADAPTERS) if mask & (1 << index))
        _BY_MASK[mask] = found
    return found
