"""The lean wire view decodes attributes exactly as the full protobuf messages do."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from otelcost.normalize import wire
from otelcost.normalize.values import decode_attributes
from otelcost.normalize.wire import decode_wire_attributes, to_wire

VALUES = [
    AnyValue(string_value="chat"),
    AnyValue(string_value=""),
    AnyValue(string_value="é" * 70),  # 140 bytes: a two-byte length
    AnyValue(string_value="x" * 300),  # longer than the cache takes
    AnyValue(int_value=0),
    AnyValue(int_value=1200),
    AnyValue(int_value=-5),
    AnyValue(int_value=2**63 - 1),
    AnyValue(int_value=-(2**63)),
    AnyValue(double_value=0.2),
    AnyValue(double_value=0.0),
    AnyValue(double_value=float("inf")),
    AnyValue(bool_value=True),
    AnyValue(bool_value=False),
    AnyValue(bytes_value=b"\x00\xff"),
    AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="stop")])),
    AnyValue(
        array_value=ArrayValue(values=[AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1)]))])
    ),
    AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="a", value=AnyValue(int_value=1))])),
    AnyValue(),
]


def _request(attributes: list[KeyValue]) -> ExportTraceServiceRequest:
    span = Span(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        name="chat",
        attributes=attributes,
        events=[Span.Event(name="usage", attributes=attributes)],
        status=Status(code=Status.STATUS_CODE_ERROR, message="boom"),
    )
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(resource=Resource(attributes=attributes), scope_spans=[ScopeSpans(spans=[span])])
        ]
    )


@pytest.mark.parametrize("value", VALUES, ids=lambda v: v.WhichOneof("value") or "empty")
def test_every_kind_of_value_decodes_as_the_full_message_does(value: AnyValue) -> None:
    attributes = [KeyValue(key="k", value=value), KeyValue(key="", value=value), KeyValue(key="no_value")]
    request = _request(attributes)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    for _ in range(2):  # the second time from the cache
        wire_span = to_wire(request).resource_spans[0].scope_spans[0].spans[0]
        expected = decode_attributes(span.attributes)
        decoded = decode_wire_attributes(wire_span.attributes)
        assert decoded == expected
        assert [type(v) for v in decoded.values()] == [type(v) for v in expected.values()]
        assert decode_wire_attributes(wire_span.events[0].attributes) == expected


def test_order_and_repeated_keys_are_kept_and_cached_lists_are_not_shared() -> None:
    attributes = [
        KeyValue(key="b", value=AnyValue(string_value="first")),
        KeyValue(key="a", value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="stop")]))),
        KeyValue(key="b", value=AnyValue(int_value=7)),
    ]
    request = _request(attributes)
    wire_span = to_wire(request).resource_spans[0].scope_spans[0].spans[0]
    first = decode_wire_attributes(wire_span.attributes)
    assert list(first.items()) == [("b", 7), ("a", ["stop"])]
    first["a"].append("mutated")
    assert decode_wire_attributes(wire_span.attributes)["a"] == ["stop"]


def test_span_fields_read_by_the_normalizer_survive() -> None:
    request = _request([])
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.parent_span_id = b"\x03" * 8
    span.start_time_unix_nano = 1_700_000_000_000_000_000
    span.end_time_unix_nano = 1_700_000_001_000_000_000
    request.resource_spans[0].scope_spans[0].scope.name = "scope"
    wire = to_wire(request)
    wire_span = wire.resource_spans[0].scope_spans[0].spans[0]
    for name in (
        "trace_id",
        "span_id",
        "parent_span_id",
        "name",
        "start_time_unix_nano",
        "end_time_unix_nano",
    ):
        assert getattr(wire_span, name) == getattr(span, name)
    assert wire_span.status.code == Status.STATUS_CODE_ERROR
    assert wire_span.status.message == "boom"
    assert wire.resource_spans[0].scope_spans[0].scope.name == "scope"


def _encoded(*pairs: tuple[str, AnyValue]) -> list[bytes]:
    return [KeyValue(key=key, value=value).SerializeToString() for key, value in pairs]


def _array(*items: str) -> AnyValue:
    return AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=item) for item in items]))


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "cached"])
def test_repeated_keys_mixing_arrays_and_scalars_keep_the_last_value(warm: bool) -> None:
    # Every order of an array and a scalar (or two arrays) under one key, each decoded from a
    # cold cache and again with every entry cached: the last one wins, in the first one's place.
    cases = [
        (("k", _array("a")), ("x", AnyValue(int_value=1)), ("k", AnyValue(string_value="s"))),
        (("k", AnyValue(string_value="s")), ("x", AnyValue(int_value=1)), ("k", _array("a"))),
        (("k", _array("a")), ("k", _array("b")), ("x", _array("a"))),
        (("k", _array("b")), ("k", _array("b")), ("k", _array())),
        (("k", _array()), ("j", _array())),
    ]
    for pairs in cases:
        raws = _encoded(*pairs)
        expected = decode_attributes([KeyValue.FromString(raw) for raw in raws])
        if warm:
            decode_wire_attributes(raws)
        decoded = decode_wire_attributes(raws)
        assert list(decoded.items()) == list(expected.items()), pairs
        for value in decoded.values():
            if isinstance(value, list):
                value.append("mutated")  # never the cache's copy
        assert decode_wire_attributes(raws) == expected


def test_hits_and_misses_in_one_call_and_a_full_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "_CACHE_LIMIT", 4)
    cached = _encoded(("a", _array("x")), ("b", AnyValue(int_value=2)))
    decode_wire_attributes(cached)
    for round_ in range(5):  # the cache fills up and is emptied between calls, never during one
        fresh = _encoded(*((f"new{round_}-{i}", AnyValue(int_value=i)) for i in range(6)))
        raws = [cached[0], *fresh, cached[1]]
        decoded = decode_wire_attributes(raws)
        assert decoded == {"a": ["x"], **{f"new{round_}-{i}": i for i in range(6)}, "b": 2}
        assert type(decoded["a"]) is list
