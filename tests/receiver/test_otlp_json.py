"""OTLP/JSON decoding: hex ids, integer enums, 64-bit ints as strings, unknown fields, clear errors."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from otelcost.receiver.errors import MalformedRequestError
from otelcost.receiver.otlp_json import decode_export_request, encode_export_request, encode_export_response

# opentelemetry-proto examples/trace.json (the specification's own example), reflowed.
SPEC_EXAMPLE = """
{"resourceSpans": [{"resource": {
    "attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
  "scopeSpans": [{"scope": {"name": "my.library", "version": "1.0.0",
      "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
    "spans": [{"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
      "parentSpanId": "EEE19B7EC3C1B173", "name": "I'm a server span",
      "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": "1544712661000000000", "kind": 2,
      "attributes": [{"key": "my.span.attr", "value": {"stringValue": "some value"}}]}]}]}]}
"""


def one_span(**fields: Any) -> bytes:
    span = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "s"}
    span.update(fields)
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


def first_span(request: ExportTraceServiceRequest) -> Span:
    return request.resource_spans[0].scope_spans[0].spans[0]


def test_the_specification_example_decodes_with_hex_ids() -> None:
    request = decode_export_request(SPEC_EXAMPLE.encode())
    resource = request.resource_spans[0]
    assert resource.resource.attributes[0].value.string_value == "my.service"
    scope = resource.scope_spans[0]
    assert (scope.scope.name, scope.scope.version) == ("my.library", "1.0.0")
    span = scope.spans[0]
    assert span.trace_id == bytes.fromhex("5b8efff798038103d269b633813fc60c")
    assert span.span_id == bytes.fromhex("eee19b7ec3c1b174")
    assert span.parent_span_id == bytes.fromhex("eee19b7ec3c1b173")
    assert span.kind == Span.SPAN_KIND_SERVER
    assert (span.start_time_unix_nano, span.end_time_unix_nano) == (1544712660000000000, 1544712661000000000)
    assert span.attributes[0].key == "my.span.attr"


def test_stock_json_format_would_have_mangled_the_ids() -> None:
    # Why the decoder exists: protobuf's own parser base64-decodes the hex into 24 garbage bytes.
    mangled = json_format.Parse(SPEC_EXAMPLE, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    assert len(first_span(mangled).trace_id) == 24
    assert first_span(decode_export_request(SPEC_EXAMPLE.encode())).trace_id.hex().upper() == (
        "5B8EFFF798038103D269B633813FC60C"
    )


@pytest.mark.parametrize("case", [str.lower, str.upper, lambda s: s[:10].upper() + s[10:].lower()])
def test_hex_ids_are_case_insensitive(case: Any) -> None:
    trace_hex, span_hex = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    body = one_span(
        traceId=case(trace_hex),
        spanId=case(span_hex),
        parentSpanId=case("00f067aa0ba902b7"),
        links=[{"traceId": case(trace_hex), "spanId": case("53995c3f42cd8ad8")}],
    )
    span = first_span(decode_export_request(body))
    assert span.trace_id == bytes.fromhex(trace_hex)
    assert span.span_id == bytes.fromhex(span_hex)
    assert span.parent_span_id == bytes.fromhex("00f067aa0ba902b7")
    assert span.links[0].trace_id == bytes.fromhex(trace_hex)
    assert span.links[0].span_id == bytes.fromhex("53995c3f42cd8ad8")


def test_empty_parent_span_id_means_a_root_span() -> None:
    assert first_span(decode_export_request(one_span(parentSpanId=""))).parent_span_id == b""


@pytest.mark.parametrize(
    ("fields", "path", "expected"),
    [
        ({"traceId": "5b8efff798038103d269b633813fc6"}, "traceId", "expected 32 hex digits (16 bytes)"),
        ({"traceId": "W1uO//eYA4EDJpszgT/GDA=="}, "traceId", "expected 32 hex digits (16 bytes)"),
        ({"spanId": "eee19b7ec3c1b17z"}, "spanId", "expected 16 hex digits (8 bytes)"),
        ({"parentSpanId": 12}, "parentSpanId", "expected 16 hex digits (8 bytes), got 12"),
        ({"links": [{}, {"spanId": "abc"}]}, "links[1].spanId", "expected 16 hex digits"),
        ({"kind": "SERVER"}, "kind", "expected an integer SpanKind value, got 'SERVER'"),
        ({"startTimeUnixNano": "soon"}, "startTimeUnixNano", "expected an integer"),
        ({"startTimeUnixNano": 1.5}, "startTimeUnixNano", "expected an integer"),
        ({"startTimeUnixNano": -1}, "startTimeUnixNano", "does not fit"),
        ({"name": 7}, "name", "expected a string, got 7"),
        ({"attributes": {"k": "v"}}, "attributes", "expected a JSON array, got an object"),
        (
            {"attributes": [{"key": "k", "value": {"boolValue": "yes"}}]},
            "attributes[0].value.boolValue",
            "true or false",
        ),
        (
            {"attributes": [{"key": "k", "value": {"bytesValue": "%%%"}}]},
            "attributes[0].value.bytesValue",
            "base64",
        ),
        ({"status": "ok"}, "status", "expected a JSON object, got 'ok'"),
    ],
)
def test_errors_name_the_json_path(fields: dict[str, Any], path: str, expected: str) -> None:
    with pytest.raises(MalformedRequestError) as info:
        decode_export_request(one_span(**fields))
    full_path = f"resourceSpans[0].scopeSpans[0].spans[0].{path}"
    assert str(info.value).startswith(f"invalid OTLP/JSON: {full_path}: ")
    assert expected in str(info.value)
    assert info.value.field == full_path


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "Expecting value at line 1 column 1"),
        (b'{"resourceSpans": [', "Expecting value at line 1 column 20"),
        (b"\xff\xfe\xfa", "not UTF-8"),
        (b"[1, 2]", "expected a JSON object, got an array"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_undecodable_documents(body: bytes, expected: str) -> None:
    with pytest.raises(MalformedRequestError, match="invalid OTLP/JSON") as info:
        decode_export_request(body)
    assert expected in str(info.value)


def test_integers_as_numbers_or_strings_and_enum_names_tolerated() -> None:
    body = one_span(
        startTimeUnixNano=1544712660000000000,
        endTimeUnixNano="1544712661000000000",
        droppedAttributesCount="3",
        flags=257,
        kind="SPAN_KIND_CLIENT",  # forbidden for senders; accepted like the Collector does
        status={"code": 2, "message": "boom"},
        attributes=[
            {"key": "i", "value": {"intValue": "-9007199254740993"}},
            {"key": "j", "value": {"intValue": 42}},
            {"key": "d", "value": {"doubleValue": "Infinity"}},
            {"key": "e", "value": {"doubleValue": 1}},
        ],
    )
    span = first_span(decode_export_request(body))
    assert span.start_time_unix_nano == 1544712660000000000
    assert span.end_time_unix_nano == 1544712661000000000
    assert (span.dropped_attributes_count, span.flags, span.kind) == (3, 257, Span.SPAN_KIND_CLIENT)
    assert (span.status.code, span.status.message) == (Status.STATUS_CODE_ERROR, "boom")
    values = [kv.value for kv in span.attributes]
    assert values[0].int_value == -9007199254740993  # beyond float precision: kept exact
    assert values[1].int_value == 42
    assert math.isinf(values[2].double_value)
    assert values[3].double_value == 1.0


def test_unknown_fields_are_ignored_and_snake_case_is_tolerated() -> None:
    body = one_span(
        futureField={"nested": [1, 2, 3]},
        trace_state="k=v",
        parent_span_id="00F067AA0BA902B7",
        attributes=[{"key": "k", "value": {"stringValue": "v", "somethingNew": 1}, "extra": True}],
    )
    request = decode_export_request(body)
    span = first_span(request)
    assert span.trace_state == "k=v"
    assert span.parent_span_id == bytes.fromhex("00f067aa0ba902b7")
    assert span.attributes[0].value.string_value == "v"


def test_nested_attribute_values_and_bytes() -> None:
    body = one_span(
        attributes=[
            {
                "key": "list",
                "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}, {}]}},
            },
            {
                "key": "map",
                "value": {"kvlistValue": {"values": [{"key": "x", "value": {"boolValue": True}}]}},
            },
            {"key": "raw", "value": {"bytesValue": "3q2-7w"}},  # URL-safe base64 without padding
            {"key": "null", "value": None},
        ]
    )
    attrs = {kv.key: kv.value for kv in first_span(decode_export_request(body)).attributes}
    assert [v.WhichOneof("value") for v in attrs["list"].array_value.values] == [
        "string_value",
        "int_value",
        None,
    ]
    assert attrs["map"].kvlist_value.values[0].value.bool_value is True
    assert attrs["raw"].bytes_value == bytes.fromhex("deadbeef")
    assert not attrs["null"].HasField("value")


def test_empty_object_is_an_empty_request() -> None:
    assert decode_export_request(b"{}") == ExportTraceServiceRequest()
    assert decode_export_request(b'{"resourceSpans": null}') == ExportTraceServiceRequest()


def test_response_encoding() -> None:
    assert encode_export_response(ExportTraceServiceResponse()) == b"{}"
    partial = ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(rejected_spans=3, error_message="3 unpriceable")
    )
    assert json.loads(encode_export_response(partial)) == {
        "partialSuccess": {"rejectedSpans": "3", "errorMessage": "3 unpriceable"}
    }
    warning = ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(error_message="deprecated attributes")
    )
    assert json.loads(encode_export_response(warning)) == {
        "partialSuccess": {"rejectedSpans": "0", "errorMessage": "deprecated attributes"}
    }


def test_encoded_requests_use_hex_ids() -> None:
    request = decode_export_request(SPEC_EXAMPLE.encode())
    span = json.loads(encode_export_request(request))["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert (span["traceId"], span["spanId"], span["kind"]) == (
        "5b8efff798038103d269b633813fc60c",
        "eee19b7ec3c1b174",
        2,
    )


# -- round trip over generated requests --------------------------------------------------------

_text = st.text(max_size=12)
_u64 = st.integers(min_value=0, max_value=2**64 - 1)
_scalar_values = st.one_of(
    _text.map(lambda s: AnyValue(string_value=s)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(lambda i: AnyValue(int_value=i)),
    st.floats(allow_nan=False).map(lambda f: AnyValue(double_value=f)),
    st.binary(max_size=8).map(lambda b: AnyValue(bytes_value=b)),
    st.just(AnyValue()),
)
_any_values = st.recursive(
    _scalar_values,
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
        st.lists(st.builds(KeyValue, key=_text, value=children), max_size=3).map(
            lambda kvs: AnyValue(kvlist_value=KeyValueList(values=kvs))
        ),
    ),
    max_leaves=4,
)
_attributes = st.lists(st.builds(KeyValue, key=_text, value=_any_values), max_size=4)
_spans = st.builds(
    Span,
    trace_id=st.binary(min_size=16, max_size=16),
    span_id=st.binary(min_size=8, max_size=8),
    parent_span_id=st.one_of(st.just(b""), st.binary(min_size=8, max_size=8)),
    trace_state=_text,
    flags=st.integers(min_value=0, max_value=2**32 - 1),
    name=_text,
    kind=st.integers(min_value=0, max_value=5),
    start_time_unix_nano=_u64,
    end_time_unix_nano=_u64,
    attributes=_attributes,
    dropped_attributes_count=st.integers(min_value=0, max_value=2**32 - 1),
    events=st.lists(
        st.builds(Span.Event, time_unix_nano=_u64, name=_text, attributes=_attributes), max_size=2
    ),
    links=st.lists(
        st.builds(
            Span.Link,
            trace_id=st.binary(min_size=16, max_size=16),
            span_id=st.binary(min_size=8, max_size=8),
            attributes=_attributes,
            flags=st.integers(min_value=0, max_value=2**32 - 1),
        ),
        max_size=2,
    ),
    status=st.builds(Status, message=_text, code=st.integers(min_value=0, max_value=2)),
)
_requests = st.builds(
    ExportTraceServiceRequest,
    resource_spans=st.lists(
        st.builds(
            ResourceSpans,
            resource=st.builds(dict, attributes=_attributes),
            scope_spans=st.lists(
                st.builds(ScopeSpans, scope=st.builds(dict, name=_text), spans=st.lists(_spans, max_size=3)),
                max_size=2,
            ),
            schema_url=_text,
        ),
        max_size=2,
    ),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_requests)
def test_round_trip_and_agreement_with_json_format(request: ExportTraceServiceRequest) -> None:
    decoded = decode_export_request(encode_export_request(request))
    assert decoded == request
    # json_format is the reference for everything but the ids, and with base64 ids it is correct.
    assert decoded == json_format.Parse(json_format.MessageToJson(request), ExportTraceServiceRequest())
