"""Large and deeply nested attribute values through a real server (docs/security.md).

A request carries three LLM calls; the second also has a hostile attribute: arrays nested 40
deep, a 1 MiB string (stored cut to ``attribution.max_attribute_value_length``), or arrays nested
200 deep (past the protobuf runtime's depth limit of 100 messages). Sent over OTLP/HTTP and over
gRPC to a running ``otelcost serve``: what the runtime parses is kept, every call once; what it
cannot is a clear 400 / INVALID_ARGUMENT for that request, and the server keeps serving the
next one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from otelcost.lake.query import run_query
from otelcost.normalize.columns import CUT_MARKER
from otelcost.normalize.wire import WireRequest
from otelcost.server import BackgroundServer
from tests.e2e.conftest import loopback_config
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + _varint(len(payload)) + payload


def deep_attribute(key: str, depth: int) -> bytes:
    """An encoded KeyValue whose value is ``depth`` arrays nested in each other around a string."""
    value = _field(0x0A, b"leaf")
    for _ in range(depth):
        value = _field(0x2A, _field(0x0A, value))  # AnyValue.array_value{values: [value]}
    return _field(0x0A, key.encode()) + _field(0x12, value)


def _request(run: str, hostile: bytes) -> bytes:
    """Three LLM call spans; the second carries ``hostile`` (raw KeyValue bytes)."""
    now = time.time_ns()
    spans = []
    for index in range(3):
        span = Span(
            trace_id=os.urandom(16),
            span_id=os.urandom(8),
            name="chat gpt-4o-mini",
            start_time_unix_nano=now - 1_000_000,
            end_time_unix_nano=now,
        )
        span.attributes.extend(
            KeyValue(key=key, value=value)
            for key, value in {
                "gen_ai.operation.name": AnyValue(string_value="chat"),
                "gen_ai.provider.name": AnyValue(string_value="openai"),
                "gen_ai.request.model": AnyValue(string_value="gpt-4o-mini"),
                "gen_ai.usage.input_tokens": AnyValue(int_value=1000),
                "gen_ai.usage.output_tokens": AnyValue(int_value=100),
                "app.team": AnyValue(string_value=run),
                "app.feature": AnyValue(string_value=f"f{index}"),
            }.items()
        )
        spans.append(span)
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value="svc"))
    )
    resource_spans.scope_spans.add().spans.extend(spans)
    wire = WireRequest.FromString(request.SerializeToString())
    wire.resource_spans[0].scope_spans[0].spans[1].attributes.append(hostile)
    return bytes(wire.SerializeToString())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    data_dir: Path = tmp_path_factory.mktemp("hostile")
    with BackgroundServer(loopback_config(data_dir)) as running:
        yield running


def _calls_of(server: BackgroundServer, team: str) -> list[dict[str, object]]:
    lake_dir = server.server.config.lake_dir
    if not (lake_dir / "llm_calls").exists():
        return []
    sql = "SELECT feature, attributes FROM llm_calls WHERE team = $t ORDER BY feature"
    rows: list[dict[str, object]] = run_query(lake_dir, sql, {"t": team}).to_pylist()
    return rows


def _send_http(server: BackgroundServer, body: bytes) -> httpx.Response:
    http = server.server.http
    assert http is not None
    return httpx.post(
        f"http://127.0.0.1:{http.port}/v1/traces",
        content=body,
        headers={"Content-Type": "application/x-protobuf"},
        timeout=30,
    )


def _send_grpc(server: BackgroundServer, body: bytes) -> trace_service_pb2.ExportTraceServiceResponse:
    receiver = server.server.grpc
    assert receiver is not None
    with grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
        # The raw bytes as they are: a generated stub would parse (and refuse) them client-side.
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString,
        )
        response: trace_service_pb2.ExportTraceServiceResponse = export(body, timeout=30)
        return response


def _big_attribute(size: int) -> bytes:
    return KeyValue(key="app.blob", value=AnyValue(string_value="x" * size)).SerializeToString()


ACCEPTED = {
    "nested-40": deep_attribute("app.deep", 40),
    "string-1MiB": _big_attribute(2**20),
}


def _send(server: BackgroundServer, transport: str, body: bytes) -> None:
    if transport == "http":
        answer = _send_http(server, body)
        assert answer.status_code == 200, answer.text
    else:
        _send_grpc(server, body)


@pytest.mark.parametrize("transport", ["http", "grpc"])
@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_a_large_or_nested_attribute_loses_no_call(
    server: BackgroundServer, transport: str, case: str
) -> None:
    team = f"team-{case}-{transport}"
    _send(server, transport, _request(team, ACCEPTED[case]))
    wait_until(lambda: len(_calls_of(server, team)) >= 3, timeout=30, poll=0.2, what="3 calls in the lake")
    calls = _calls_of(server, team)
    assert [c["feature"] for c in calls] == ["f0", "f1", "f2"]  # every call, each once
    kept = dict(calls[1]["attributes"])  # type: ignore[call-overload]
    if case == "string-1MiB":
        # Cut to attribution.max_attribute_value_length (65,536 by default), and marked as cut.
        limit = server.server.config.attribution.max_attribute_value_length
        assert kept["app.blob"] == "x" * limit + CUT_MARKER.format(length=2**20)
    else:
        assert "app.deep" in kept


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_nesting_past_the_protobuf_limit_is_a_clear_rejection(
    server: BackgroundServer, transport: str
) -> None:
    team = f"team-too-deep-{transport}"
    body = _request(team, deep_attribute("app.deep", 200))
    if transport == "http":
        answer = _send_http(server, body)
        assert answer.status_code == 400
        assert "MaxDepth" in answer.content.decode(errors="replace")
    else:
        with pytest.raises(grpc.RpcError) as refused:
            _send_grpc(server, body)
        assert refused.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL)
    # The server keeps serving: the next request is taken whole.
    after = f"{team}-after"
    _send(server, transport, _request(after, b""))
    wait_until(lambda: len(_calls_of(server, after)) >= 3, timeout=30, poll=0.2, what="3 calls in the lake")
    assert _calls_of(server, team) == []
