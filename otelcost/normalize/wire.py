"""A lean view of an OTLP trace request: attributes as raw bytes, decoded through a cache.

Why: with the upb protobuf runtime, parsing a request is cheap (about 2 µs per span) but reading
it from Python is not: every ``KeyValue`` and ``AnyValue`` read creates a wrapper object, about
1 µs per attribute, so a 20-attribute span cost 20-40 µs before the normalizer did any work.

The trick: wire-compatible *shadow* messages (same field numbers as ``trace.proto``) that declare
``attributes`` as ``repeated bytes`` instead of ``repeated KeyValue``. Parsing a request as
:class:`WireRequest` gives, per span, a list of the raw encoded ``KeyValue`` messages, created in
C. Those bytes repeat heavily across spans (``gen_ai.operation.name=chat``, a team, a model, a
port ...), so :func:`decode_wire_attributes` looks each one up in a bounded cache and decodes
only the new ones, with a fast path for the common encodings (short string, int, double, bool)
and the real ``KeyValue`` parser otherwise. The result is the same dict
:func:`otelcost.normalize.values.decode_attributes` builds from the full messages: same keys in
the same order, a repeated key keeps its last value, same value types.

Only the fields the normalizer reads are declared; anything else in the bytes is an unknown
field to upb and skipped. Names are those of ``trace.proto``, so code reading a span works on
either kind.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from otelcost.normalize.values import decode_any

__all__ = ["WireRequest", "decode_wire_attributes", "to_wire"]

_F = descriptor_pb2.FieldDescriptorProto
_MESSAGES: Final[dict[str, list[tuple[str, int, int, int, str | None]]]] = {
    # message -> [(name, number, type, label, message type name or None)]
    "Request": [("resource_spans", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "ResourceSpans")],
    "ResourceSpans": [
        ("resource", 1, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, "Resource"),
        ("scope_spans", 2, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "ScopeSpans"),
    ],
    "Resource": [("attributes", 1, _F.TYPE_BYTES, _F.LABEL_REPEATED, None)],
    "Scope": [("name", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None)],
    "ScopeSpans": [
        ("scope", 1, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, "Scope"),
        ("spans", 2, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "Span"),
    ],
    "Span": [
        ("trace_id", 1, _F.TYPE_BYTES, _F.LABEL_OPTIONAL, None),
        ("span_id", 2, _F.TYPE_BYTES, _F.LABEL_OPTIONAL, None),
        ("parent_span_id", 4, _F.TYPE_BYTES, _F.LABEL_OPTIONAL, None),
        ("name", 5, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
        ("start_time_unix_nano", 7, _F.TYPE_FIXED64, _F.LABEL_OPTIONAL, None),
        ("end_time_unix_nano", 8, _F.TYPE_FIXED64, _F.LABEL_OPTIONAL, None),
        ("attributes", 9, _F.TYPE_BYTES, _F.LABEL_REPEATED, None),
        ("events", 11, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "Event"),
        ("status", 15, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, "Status"),
    ],
    "Event": [("attributes", 3, _F.TYPE_BYTES, _F.LABEL_REPEATED, None)],
    # ``code`` is an enum in trace.proto: an open enum is a varint on the wire, as int32 is.
    "Status": [
        ("message", 2, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
        ("code", 3, _F.TYPE_INT32, _F.LABEL_OPTIONAL, None),
    ],
}
_PACKAGE: Final = "otelcost.normalize.wire"


def _build_classes() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(
        name="otelcost/normalize/wire.proto", package=_PACKAGE, syntax="proto3"
    )
    for message_name, fields in _MESSAGES.items():
        message = file.message_type.add(name=message_name)
        for name, number, kind, label, type_name in fields:
            field = message.field.add(name=name, number=number, type=kind, label=label)
            if type_name is not None:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()  # our own pool: never clashes with the real protos
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in _MESSAGES
    }


_CLASSES: Final = _build_classes()
WireRequest: Final[Any] = _CLASSES["Request"]
"""Parse with ``WireRequest.FromString(body)``: an ``ExportTraceServiceRequest`` whose
attribute lists are raw ``KeyValue`` bytes (read them with :func:`decode_wire_attributes`)."""


def to_wire(request: ExportTraceServiceRequest) -> Any:
    """The same request as a :data:`WireRequest` (a serialize and a parse, both in C)."""
    return WireRequest.FromString(request.SerializeToString())


_CACHE: dict[bytes, tuple[str, Any]] = {}
_CACHE_LIMIT: Final = 65_536
"""Distinct encoded attributes kept; the cache is emptied when full (a cheap, crude LRU: the hot
ones are back after one request)."""
_CACHE_MAX_BYTES: Final = 256
"""Longer attributes (prompts, JSON blobs) are rarely repeated: decoded, never cached."""
_DOUBLE: Final = struct.Struct("<d")


def _varint(raw: bytes, start: int) -> int:
    """The varint that fills ``raw[start:]`` exactly; -1 when it is not exactly that."""
    result = shift = 0
    end = len(raw)
    for position in range(start, end):
        byte = raw[position]
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result if position == end - 1 else -1
    return -1


def _decode_slow(raw: bytes) -> tuple[str, Any]:
    kv = KeyValue.FromString(raw)
    return kv.key, decode_any(kv.value)


def _decode_kv(raw: bytes) -> tuple[str, Any]:
    """One encoded ``KeyValue``: the common shapes by hand, anything else by the real parser.

    The fast path accepts only the canonical encoding upb writes (key field, then value field, one
    ``AnyValue`` member, one-byte lengths, nothing after) and hands every other shape to
    ``KeyValue.FromString``, so both give the same answer for the same bytes.
    """
    size = len(raw)
    if size < 4 or raw[0] != 0x0A or raw[1] >= 0x80:
        return _decode_slow(raw)
    key_end = 2 + raw[1]
    if key_end + 3 > size or raw[key_end] != 0x12 or raw[key_end + 1] != size - key_end - 2:
        return _decode_slow(raw)
    if raw[key_end + 1] >= 0x80:  # a multi-byte length: not the short shape
        return _decode_slow(raw)
    tag = raw[key_end + 2]
    body = key_end + 3
    try:
        if tag == 0x0A:  # string_value
            if body < size and raw[body] == size - body - 1 and raw[body] < 0x80:
                return raw[2:key_end].decode(), raw[body + 1 :].decode()
        elif tag == 0x18:  # int_value: a two's-complement int64 varint
            number = _varint(raw, body)
            if 0 <= number < 1 << 64:
                return raw[2:key_end].decode(), number - (1 << 64) if number >= 1 << 63 else number
        elif tag == 0x21:  # double_value
            if size - body == 8:
                return raw[2:key_end].decode(), _DOUBLE.unpack_from(raw, body)[0]
        elif tag == 0x10 and size - body == 1 and raw[body] < 2:  # bool_value
            return raw[2:key_end].decode(), raw[body] == 1
    except UnicodeDecodeError:
        pass  # the real parser raises its own error
    return _decode_slow(raw)


def decode_wire_attributes(attributes: Iterable[bytes]) -> dict[str, Any]:
    """Encoded ``KeyValue`` messages as a dict; a repeated key keeps its last value.

    Values are what :func:`~otelcost.normalize.values.decode_attributes` gives. Cached values are
    shared between spans; arrays are copied on every hit (lists are mutable) and key-value lists
    are never cached.
    """
    decoded: dict[str, Any] = {}
    cache = _CACHE
    for raw in attributes:
        hit = cache.get(raw)
        if hit is None:
            hit = _decode_kv(raw)
            value = hit[1]
            if len(raw) <= _CACHE_MAX_BYTES and type(value) is not dict:
                if type(value) is list:
                    if any(type(item) in (list, dict) for item in value):
                        decoded[hit[0]] = value
                        continue
                    hit = (hit[0], tuple(value))  # stored immutable, handed out as a fresh list
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[raw] = hit
            else:
                decoded[hit[0]] = value
                continue
        value = hit[1]
        decoded[hit[0]] = list(value) if type(value) is tuple else value
    return decoded
