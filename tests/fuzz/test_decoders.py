"""Fuzzing the OTLP decoders: any input decodes or raises PermanentIngestError, nothing else.

A receiver that lets another exception escape answers a retryable 503 / UNAVAILABLE
(``receiver/errors.py``: anything that is not an IngestError is treated as our fault), so a
sender would retry a request that can never succeed. These properties hold the decoders to the
contract, on four kinds of input:

* arbitrary bytes, for OTLP/JSON, OTLP/protobuf and the gzip/deflate decompressor;
* JSON documents shaped like ``ExportTraceServiceRequest``, generated from the protobuf
  descriptors themselves, where any value may be replaced by a JSON value of the wrong kind;
* valid protobuf and compressed bodies with bytes flipped, cut off or appended;
* hand-picked extremes (deep nesting, huge numbers, lone surrogates).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import zlib
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelcost.errors import PermanentIngestError
from otelcost.receiver.compression import decompress
from otelcost.receiver.messages import decode_protobuf_request
from otelcost.receiver.otlp_json import decode_export_request, encode_export_request

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
"""Examples per property; ``FUZZ_EXAMPLES=5000 pytest tests/fuzz`` for a longer hunt."""

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the working tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def decodes_or_refuses(decode: Any, body: bytes) -> None:
    with contextlib.suppress(PermanentIngestError):
        decode(body)


# -- JSON values of every kind, including the awkward ones ------------------------------------------

_awkward_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)
_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _awkward_text
    | st.sampled_from(
        ["", "NaN", "Infinity", "-Infinity", "1e3", "1.5", " 7 ", "0x10", "-0", "AAAA", "==", "zz"]
    )
)
json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_awkward_text, inner, max_size=4),
    max_leaves=12,
)


# -- documents shaped like the message, from its descriptor --------------------------------------------

_HEX_DIGITS = {"trace_id": 32, "span_id": 16, "parent_span_id": 16}
_INTEGER_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _scalar_value(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    """A value of the field's JSON kind (the decoder should accept nearly all of them)."""
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return st.text(max_size=20)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(["NaN", "-Infinity", "2.5"])
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        names = [value.name for value in field.enum_type.values]
        return st.integers(min_value=0, max_value=5) | st.sampled_from(names)
    if kind == FieldDescriptor.TYPE_BYTES:
        digits = _HEX_DIGITS.get(field.name)
        if digits is not None:
            return st.text(alphabet="0123456789abcdefABCDEF", min_size=digits, max_size=digits) | st.just("")
        return st.binary(max_size=12).map(lambda raw: base64.b64encode(raw).decode())
    low, high = _INTEGER_RANGES[kind]
    numbers = st.integers(min_value=low, max_value=high)
    return numbers | numbers.map(str)


def _message_document(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON document of ``descriptor``'s type with every value of the right kind."""

    def build(draw: st.DrawFn) -> dict[str, Any]:
        document: dict[str, Any] = {}
        fields = list(descriptor.fields)
        chosen = draw(st.lists(st.sampled_from(fields), max_size=len(fields), unique=True))
        for field in chosen:
            if field.message_type is not None:
                if depth >= 5:
                    continue
                value: st.SearchStrategy[Any] = _message_document(field.message_type, depth + 1)
            else:
                value = _scalar_value(field)
            if field.is_repeated:
                value = st.lists(value, min_size=1, max_size=2)
            document[draw(st.sampled_from([field.json_name, field.name]))] = draw(value)
        return document

    return st.composite(build)()


def _slots(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in a JSON document, depth first."""
    found: list[tuple[Any, Any]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in items:
        found.append((node, key))
        found.extend(_slots(child))
    return found


def _corrupted(documents: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Well-formed documents with a few values replaced by arbitrary JSON, or keys added."""

    def corrupt(draw: st.DrawFn) -> dict[str, Any]:
        document = draw(documents)
        for _ in range(draw(st.integers(min_value=0, max_value=3))):
            slots = _slots(document)
            replace_a_value = draw(st.booleans())
            if slots and replace_a_value:
                container, key = draw(st.sampled_from(slots))
                container[key] = draw(json_values)
            else:
                objects = [document] + [c[k] for c, k in slots if isinstance(c[k], dict)]
                target = draw(st.sampled_from(objects))
                target[draw(_awkward_text)] = draw(json_values)
        return document

    return st.composite(corrupt)()


request_documents = _corrupted(_message_document(ExportTraceServiceRequest.DESCRIPTOR))


def _sample_request() -> ExportTraceServiceRequest:
    document = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "openai"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "chat gpt-4o",
                                "kind": 3,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000001000000000",
                                "attributes": [
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "120"}},
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                                    {"key": "x", "value": {"arrayValue": {"values": [{"doubleValue": 0.5}]}}},
                                ],
                                "status": {"code": 1},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    return decode_export_request(json.dumps(document).encode())


SAMPLE_PROTOBUF = _sample_request().SerializeToString()
SAMPLE_JSON = encode_export_request(_sample_request())


def _mutated(base: bytes) -> st.SearchStrategy[bytes]:
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(base)
        for _ in range(draw(st.integers(min_value=1, max_value=4))):
            kind = draw(st.sampled_from(["flip", "cut", "insert", "append"]))
            position = draw(st.integers(min_value=0, max_value=max(0, len(data) - 1)))
            if kind == "flip" and data:
                data[position] ^= draw(st.integers(min_value=1, max_value=255))
            elif kind == "cut":
                del data[position:]
            elif kind == "insert":
                data[position:position] = draw(st.binary(min_size=1, max_size=8))
            else:
                data += draw(st.binary(min_size=1, max_size=16))
        return bytes(data)

    return st.composite(mutate)()


# -- the properties -----------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=512))
@example(b"")
@example(b"\xff\xfe{}")
@example(b"null")
@example(b'{"resourceSpans": {}}')
def test_json_decoder_on_arbitrary_bytes(body: bytes) -> None:
    decodes_or_refuses(decode_export_request, body)


@FUZZ
@given(json_values)
def test_json_decoder_on_arbitrary_json(value: Any) -> None:
    decodes_or_refuses(decode_export_request, json.dumps(value).encode())


@settings(FUZZ, max_examples=max(1, EXAMPLES // 3))  # the slowest strategy to draw from
@given(request_documents)
def test_json_decoder_on_request_shaped_documents(document: dict[str, Any]) -> None:
    decodes_or_refuses(decode_export_request, json.dumps(document).encode())


@FUZZ
@given(_mutated(SAMPLE_JSON))
def test_json_decoder_on_mutated_requests(body: bytes) -> None:
    decodes_or_refuses(decode_export_request, body)


@FUZZ
@given(st.binary(max_size=512) | _mutated(SAMPLE_PROTOBUF))
@example(b"\x0a\xff\xff\xff\xff\x0f")  # a length far past the end
@example(b"\x0a\x02\x0a")
def test_protobuf_decoder_on_arbitrary_and_mutated_bytes(body: bytes) -> None:
    decodes_or_refuses(decode_protobuf_request, body)


@FUZZ
@given(
    st.sampled_from(["gzip", "deflate", "identity"]),
    st.binary(max_size=256)
    | _mutated(gzip.compress(SAMPLE_PROTOBUF))
    | _mutated(zlib.compress(SAMPLE_PROTOBUF))
    | _mutated(zlib.compress(SAMPLE_PROTOBUF)[2:-4]),
)
def test_decompressor_on_arbitrary_and_mutated_bodies(coding: str, body: bytes) -> None:
    try:
        result = decompress(body, coding, max_size=4096)
    except PermanentIngestError:
        return
    assert len(result) <= 4096


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 100_000, id="deeply nested arrays"),
        pytest.param(
            b'{"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":'
            + b'{"arrayValue":{"values":[' * 3000
            + b"{}"
            + b"]}}" * 3000
            + b"}]}}]}",
            id="attribute values nested 3000 deep",
        ),
        pytest.param(b'{"resourceSpans":[{"schemaUrl":"\\ud800"}]}', id="lone surrogate"),
        pytest.param(b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":1e999}]}]}]}', id="infinite enum"),
        pytest.param(
            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"' + b"9" * 5000 + b'"}]}]}]}',
            id="5000-digit string",
        ),
    ],
)
def test_json_decoder_on_extremes(body: bytes) -> None:
    decodes_or_refuses(decode_export_request, body)


def test_json_decoder_on_a_5000_digit_number() -> None:
    decodes_or_refuses(decode_export_request, b'{"resourceSpans":' + b"1" * 5000 + b"}")
