"""Semantic-convention adapters: one module per telemetry convention, one registry.

A new convention is a new module with an adapter class (see :mod:`.base`) added to
:data:`.registry.ADAPTERS`; nothing else in the normalizer branches on conventions.
"""

from otelcost.normalize.conventions.base import Adapter, RawUsage, Role, SpanContext, Tokens, settle
from otelcost.normalize.conventions.registry import ADAPTERS, MARKER_BITS, USAGE_KEYS, adapters_for

__all__ = [
    "ADAPTERS",
    "MARKER_BITS",
    "USAGE_KEYS",
    "Adapter",
    "RawUsage",
    "Role",
    "SpanContext",
    "Tokens",
    "adapters_for",
    "settle",
]
