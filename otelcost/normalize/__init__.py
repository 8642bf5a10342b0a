"""Normalization and attribution: OTLP export requests in, attributed LLM-call tables out.

``Normalizer(config).normalize(request, received_at_ns=...)`` returns a :class:`NormalizeResult`
whose ``calls`` table has exactly ``otelcost.schema.CALL_SCHEMA``. The conventions it reads are
in :mod:`otelcost.normalize.conventions` (docs/conventions.md); the attribution rules, the trace
memory and the nested-usage rule are in docs/attribution.md.
"""

from otelcost.normalize.attribution import OwnershipTable, load_ownership
from otelcost.normalize.config import AttributionConfig, AttributionSource, OwnershipConfig, TraceMemoryConfig
from otelcost.normalize.normalizer import Normalizer, NormalizerCounters, NormalizeResult

__all__ = [
    "AttributionConfig",
    "AttributionSource",
    "NormalizeResult",
    "Normalizer",
    "NormalizerCounters",
    "OwnershipConfig",
    "OwnershipTable",
    "TraceMemoryConfig",
    "load_ownership",
]
