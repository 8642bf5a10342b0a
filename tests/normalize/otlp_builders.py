"""Build OTLP export requests by hand, value types included (ints as strings, doubles ...)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

NOW_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
START_NS = NOW_NS - 5 * 10**9
_ids = itertools.count(1)


def any_value(value: Any) -> AnyValue:
    if isinstance(value, AnyValue):
        return value
    out = AnyValue()
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, bytes):
        out.bytes_value = value
    elif isinstance(value, Mapping):
        out.kvlist_value.values.extend(key_values(value))
    elif isinstance(value, Sequence):
        out.array_value.values.extend(any_value(v) for v in value)
    elif value is None:
        pass
    else:
        raise TypeError(type(value))
    return out


def key_values(attrs: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def new_trace_id() -> bytes:
    return next(_ids).to_bytes(16, "big")


def new_span_id() -> bytes:
    return (0x1000 + next(_ids)).to_bytes(8, "big")


@dataclass
class SpanSpec:
    attrs: Mapping[str, Any]
    name: str = "chat gpt-4o"
    trace_id: bytes = field(default_factory=new_trace_id)
    span_id: bytes = field(default_factory=new_span_id)
    parent_span_id: bytes = b""
    start_ns: int = START_NS
    end_ns: int = START_NS + 1_500_000_000
    status_code: int = 0
    status_message: str = ""
    events: Sequence[tuple[str, Mapping[str, Any]]] = ()

    def child(self, attrs: Mapping[str, Any], **kw: Any) -> SpanSpec:
        return SpanSpec(attrs, trace_id=self.trace_id, parent_span_id=self.span_id, **kw)

    def to_proto(self) -> Span:
        span = Span(
            trace_id=self.trace_id,
            span_id=self.span_id,
            parent_span_id=self.parent_span_id,
            name=self.name,
            kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=self.start_ns,
            end_time_unix_nano=self.end_ns,
            status=Status(code=self.status_code, message=self.status_message),  # type: ignore[arg-type]
        )
        span.attributes.extend(key_values(self.attrs))
        for name, attrs in self.events:
            event = span.events.add()
            event.name = name
            event.time_unix_nano = self.end_ns
            event.attributes.extend(key_values(attrs))
        return span


def request(
    spans: Iterable[SpanSpec],
    *,
    resource: Mapping[str, Any] | None = None,
    scope: str = "test.instrumentation",
) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(
        key_values(resource if resource is not None else {"service.name": "checkout"})
    )
    ss = rs.scope_spans.add()
    ss.scope.name = scope
    ss.spans.extend(s.to_proto() for s in spans)
    return req


def merge(*requests: ExportTraceServiceRequest) -> ExportTraceServiceRequest:
    out = ExportTraceServiceRequest()
    for req in requests:
        out.resource_spans.extend(req.resource_spans)
    return out
