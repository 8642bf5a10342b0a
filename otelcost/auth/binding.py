"""Token-bound attribution: the key a request was sent with travels with its spans.

A receiver that authenticated a request stamps the key's name and bound dimensions on every
resource of the request as ``otelcost.key.*`` resource attributes, after removing any a sender
put there itself (so a sender cannot claim to be a key it is not). The normalizer reads them back
(:func:`read_stamp`): the name fills ``ingest_key``, a bound dimension overrides what the span's
rules gave, and ``bound_dimensions`` records what the span had claimed. The stamp is in the
request, not beside it, so it takes the same road in the serve process and in receiver workers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from otelcost.auth.keys import Principal

__all__ = ["BIND_PREFIX", "KEY_NAME_ATTRIBUTE", "STAMP_PREFIX", "KeyStamp", "read_stamp", "stamp_principal"]

STAMP_PREFIX: Final = "otelcost.key."
KEY_NAME_ATTRIBUTE: Final = "otelcost.key.name"
BIND_PREFIX: Final = "otelcost.key.bind."


def stamp_principal(
    request: ExportTraceServiceRequest, principal: Principal | None
) -> ExportTraceServiceRequest:
    """Remove every ``otelcost.key.*`` resource attribute, then stamp ``principal``'s (in place);
    returns ``request``, so a receiver can stamp where it decodes.

    An anonymous principal (or None) stamps nothing: its calls have no ``ingest_key``.
    """
    stamp: list[tuple[str, str]] = []
    if principal is not None and not principal.anonymous:
        stamp.append((KEY_NAME_ATTRIBUTE, principal.name))
        stamp.extend((BIND_PREFIX + dimension, value) for dimension, value in sorted(principal.bind.items()))
    for resource_spans in request.resource_spans:
        attributes = resource_spans.resource.attributes
        if any(kv.key.startswith(STAMP_PREFIX) for kv in attributes):
            kept = [kv for kv in attributes if not kv.key.startswith(STAMP_PREFIX)]
            del attributes[:]
            attributes.extend(kept)
        for key, value in stamp:
            kv = KeyValue(key=key)
            kv.value.string_value = value
            attributes.append(kv)
    return request


class KeyStamp:
    """What a resource's stamp says: the key's name and the dimensions it fixes."""

    __slots__ = ("bind", "name")

    def __init__(self, name: str, bind: Mapping[str, str]) -> None:
        self.name = name
        self.bind = bind


def read_stamp(attrs: dict[str, Any]) -> KeyStamp | None:
    """Take the stamp out of decoded resource attributes (removing it); None when unstamped.

    Only called for a resource that has a ``otelcost.key.name`` attribute, so unauthenticated
    traffic pays one dict lookup per resource.
    """
    name = attrs.pop(KEY_NAME_ATTRIBUTE, None)
    bind: dict[str, str] = {}
    for key in [key for key in attrs if key.startswith(STAMP_PREFIX)]:
        value = attrs.pop(key)
        if key.startswith(BIND_PREFIX) and isinstance(value, str):
            bind[key[len(BIND_PREFIX) :]] = value
    return KeyStamp(name, bind) if isinstance(name, str) else None
