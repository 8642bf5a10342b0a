"""The OTLP/gRPC receiver, driven by the real OpenTelemetry SDK exporter and raw gRPC channels."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

from otelcost.config import GrpcReceiverConfig
from otelcost.errors import PermanentIngestError, TransientIngestError
from otelcost.receiver.errors import BindError
from otelcost.receiver.grpc import GrpcReceiver
from otelcost.receiver.intake import ExportOutcome
from otelcost.receiver.messages import OFFLOAD_BYTES
from tests.receiver.conftest import SMALL_LIMIT, BackgroundLoop, RecordingIntake, make_request
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@contextmanager
def stub_for(receiver: GrpcReceiver) -> Iterator[TraceServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
        yield TraceServiceStub(channel)


def export(
    receiver: GrpcReceiver, request: ExportTraceServiceRequest, **kwargs: object
) -> ExportTraceServiceResponse:
    with stub_for(receiver) as stub:
        response: ExportTraceServiceResponse = stub.Export(request, timeout=5, **kwargs)
        return response


def rpc_error(receiver: GrpcReceiver, request: ExportTraceServiceRequest, **kwargs: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        export(receiver, request, **kwargs)
    return info.value


def assert_still_serving(receiver: GrpcReceiver, intake: RecordingIntake) -> None:
    before = len(intake.requests)
    assert export(receiver, make_request(1)) == ExportTraceServiceResponse()
    assert len(intake.requests) == before + 1


@pytest.mark.parametrize("compression", [grpc.Compression.NoCompression, grpc.Compression.Gzip])
def test_sdk_exporter_spans_arrive_intact(
    grpc_receiver: GrpcReceiver, intake: RecordingIntake, compression: grpc.Compression
) -> None:
    exporter = OTLPSpanExporter(
        endpoint=f"127.0.0.1:{grpc_receiver.port}", insecure=True, timeout=5, compression=compression
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("acme.llm", "2.1.0")
    with (
        tracer.start_as_current_span("agent") as parent,
        tracer.start_as_current_span(
            "chat gpt-4o",
            attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1200, "ratio": 0.5},
        ) as child,
    ):
        pass
    assert provider.force_flush(5000)
    provider.shutdown()

    spans = {span.name: span for span in intake.spans()}
    assert set(spans) == {"agent", "chat gpt-4o"}
    sent_child, sent_parent = child.get_span_context(), parent.get_span_context()
    received = spans["chat gpt-4o"]
    assert received.trace_id == sent_child.trace_id.to_bytes(16, "big")
    assert received.span_id == sent_child.span_id.to_bytes(8, "big")
    assert received.parent_span_id == sent_parent.span_id.to_bytes(8, "big")
    attributes = {kv.key: kv.value for kv in received.attributes}
    assert attributes["gen_ai.request.model"].string_value == "gpt-4o"
    assert attributes["gen_ai.usage.input_tokens"].int_value == 1200
    assert attributes["ratio"].double_value == 0.5
    resource = intake.requests[0].resource_spans[0]
    assert {kv.key: kv.value.string_value for kv in resource.resource.attributes}[
        "service.name"
    ] == "checkout"
    assert resource.scope_spans[0].scope.name == "acme.llm"
    assert grpc_receiver.stats.requests["accepted"] == 1
    assert grpc_receiver.stats.spans == 2


def test_full_success_leaves_partial_success_unset(
    grpc_receiver: GrpcReceiver, intake: RecordingIntake
) -> None:
    response = export(grpc_receiver, make_request(3))
    assert not response.HasField("partial_success")
    assert len(intake.spans()) == 3


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (
            ExportOutcome(2, "rejected 2 invalid spans: 2 missing_model"),
            (2, "rejected 2 invalid spans: 2 missing_model"),
        ),
        (ExportOutcome(0, "warning: deprecated attributes"), (0, "warning: deprecated attributes")),
    ],
)
def test_partial_success(
    grpc_receiver: GrpcReceiver, intake: RecordingIntake, outcome: ExportOutcome, expected: tuple[int, str]
) -> None:
    intake.outcome = outcome
    response = export(grpc_receiver, make_request(3))
    assert response.HasField("partial_success")
    assert (response.partial_success.rejected_spans, response.partial_success.error_message) == expected
    assert grpc_receiver.stats.requests["partial_success"] == 1


def test_transient_error_is_retried_by_the_sdk_exporter(
    grpc_receiver: GrpcReceiver, intake: RecordingIntake
) -> None:
    intake.fail_next(TransientIngestError("spool is full", retry_after=0.1))
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_receiver.port}", insecure=True, timeout=5)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("retried"):
        pass
    started = time.monotonic()
    assert provider.force_flush(5000)
    elapsed = time.monotonic() - started
    provider.shutdown()
    assert intake.calls == 2  # refused once, then accepted
    # The exporter waited RetryInfo's 0.1 s, not its own first backoff of 0.8-1.2 s.
    assert elapsed < 0.7
    assert [span.name for span in intake.spans()] == ["retried"]
    assert grpc_receiver.stats.requests == {"overloaded": 1, "accepted": 1}


def test_transient_error_carries_retry_info_in_both_trailers(
    grpc_receiver: GrpcReceiver, intake: RecordingIntake
) -> None:
    intake.fail_next(TransientIngestError("spool is full", retry_after=2.5))
    error = rpc_error(grpc_receiver, make_request(1))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details() == "spool is full"
    trailers = dict(error.trailing_metadata())
    retry_info = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    assert retry_info.retry_delay.ToMilliseconds() == 2500
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert status.details[0].Unpack(detail := error_details_pb2.RetryInfo())
    assert detail == retry_info
    assert_still_serving(grpc_receiver, intake)


def test_permanent_error_is_invalid_argument_with_bad_request(
    grpc_receiver: GrpcReceiver, intake: RecordingIntake
) -> None:
    intake.fail_next(PermanentIngestError("every span lacks a trace id"))
    error = rpc_error(grpc_receiver, make_request(1))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = status_pb2.Status.FromString(dict(error.trailing_metadata())["grpc-status-details-bin"])
    assert status.details[0].Is(error_details_pb2.BadRequest.DESCRIPTOR)
    assert "google.rpc.retryinfo-bin" not in dict(error.trailing_metadata())
    assert_still_serving(grpc_receiver, intake)


def test_unexpected_error_is_retryable_unavailable(
    grpc_receiver: GrpcReceiver, intake: RecordingIntake, caplog: pytest.LogCaptureFixture
) -> None:
    intake.fail_next(ZeroDivisionError("bug"))
    with caplog.at_level(logging.CRITICAL, logger="otelcost.receiver"):
        error = rpc_error(grpc_receiver, make_request(1))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "ZeroDivisionError" in error.details()
    assert_still_serving(grpc_receiver, intake)


def test_bytes_that_are_not_protobuf_are_invalid_argument(
    grpc_receiver: GrpcReceiver, intake: RecordingIntake
) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{grpc_receiver.port}") as channel:
        raw_export = channel.unary_unary(EXPORT_METHOD)  # identity (de)serializers: bytes as they are
        with pytest.raises(grpc.RpcError) as info:
            raw_export(b"\x0a\xff\xff\xff\xff\x0f not protobuf", timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not an ExportTraceServiceRequest" in info.value.details()
    assert intake.calls == 0
    assert grpc_receiver.stats.requests["invalid"] == 1
    assert_still_serving(grpc_receiver, intake)


@pytest.mark.parametrize("compression", [grpc.Compression.NoCompression, grpc.Compression.Gzip])
def test_oversized_request_is_resource_exhausted_without_retry_info(
    grpc_receiver: GrpcReceiver, intake: RecordingIntake, compression: grpc.Compression
) -> None:
    # Zeros compress ~1000:1, so the gzip case is a small message that inflates past the limit.
    big = make_request(1, attributes={"prompt": "\0" * (SMALL_LIMIT + 1)})
    error = rpc_error(grpc_receiver, big, compression=compression)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "google.rpc.retryinfo-bin" not in dict(error.trailing_metadata() or ())
    assert intake.calls == 0
    assert_still_serving(grpc_receiver, intake)


def test_empty_request_succeeds_without_reaching_the_intake(
    grpc_receiver: GrpcReceiver, intake: RecordingIntake
) -> None:
    assert export(grpc_receiver, ExportTraceServiceRequest()) == ExportTraceServiceResponse()
    assert export(grpc_receiver, make_request(0)) == ExportTraceServiceResponse()
    assert intake.calls == 0
    assert grpc_receiver.stats.requests["empty"] == 2


def test_busy_port_is_a_bind_error(background_loop: BackgroundLoop, intake: RecordingIntake) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        listen = f"127.0.0.1:{squatter.getsockname()[1]}"
        receiver = GrpcReceiver(config=GrpcReceiverConfig(listen=listen), intake=intake)
        try:
            with pytest.raises(BindError) as info:
                background_loop.run(receiver.start())
        finally:
            background_loop.run(receiver.stop(0))  # in case it did start
    assert str(info.value) == f"cannot listen on {listen}: address already in use (receiver.grpc.listen)"


def test_busy_port_taken_by_another_receiver_is_a_bind_error(
    background_loop: BackgroundLoop, grpc_receiver: GrpcReceiver, intake: RecordingIntake
) -> None:
    # gRPC sets SO_REUSEPORT by default, which would let two servers share a port silently.
    second = GrpcReceiver(config=GrpcReceiverConfig(listen=f"127.0.0.1:{grpc_receiver.port}"), intake=intake)
    try:
        with pytest.raises(BindError, match="address already in use"):
            background_loop.run(second.start())
    finally:
        background_loop.run(second.stop(0))  # in case it did start


def test_stop_is_safe_before_start_and_twice(
    background_loop: BackgroundLoop, intake: RecordingIntake
) -> None:
    receiver = GrpcReceiver(config=GrpcReceiverConfig(listen="127.0.0.1:0"), intake=intake)
    background_loop.run(receiver.stop(1.0))
    background_loop.run(receiver.start())
    port = receiver.port
    background_loop.run(receiver.stop(1.0))
    background_loop.run(receiver.stop(1.0))
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more


def test_sdk_exporter_result_is_success(grpc_receiver: GrpcReceiver, intake: RecordingIntake) -> None:
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_receiver.port}", insecure=True, timeout=5)
    provider = TracerProvider()
    span = provider.get_tracer("t").start_span("direct")
    span.end()
    assert exporter.export([span]) is SpanExportResult.SUCCESS  # type: ignore[list-item]
    exporter.shutdown()
    provider.shutdown()
    assert [s.name for s in intake.spans()] == ["direct"]


def test_stop_lets_requests_in_flight_finish(
    background_loop: BackgroundLoop, intake: RecordingIntake
) -> None:
    intake.delay = 0.3
    receiver = GrpcReceiver(config=GrpcReceiverConfig(listen="127.0.0.1:0"), intake=intake)
    background_loop.run(receiver.start())
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(export, receiver, make_request(1))
        wait_until(lambda: intake.calls == 1)
        background_loop.run(receiver.stop(5.0))
        assert in_flight.result(5) == ExportTraceServiceResponse()
    assert len(intake.requests) == 1


def test_stop_gives_up_on_requests_after_the_grace_period(
    background_loop: BackgroundLoop, intake: RecordingIntake
) -> None:
    intake.delay = 30
    receiver = GrpcReceiver(config=GrpcReceiverConfig(listen="127.0.0.1:0"), intake=intake)
    background_loop.run(receiver.start())
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(export, receiver, make_request(1))
        wait_until(lambda: intake.calls == 1)
        background_loop.run(receiver.stop(0.2), timeout=5)
        with pytest.raises(grpc.RpcError) as info:
            in_flight.result(5)
    assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    assert intake.requests == []


def test_large_message_is_decoded_intact(background_loop: BackgroundLoop, intake: RecordingIntake) -> None:
    # Over messages.OFFLOAD_BYTES: parsed in a worker thread rather than on the event loop.
    receiver = GrpcReceiver(
        config=GrpcReceiverConfig(listen="127.0.0.1:0", max_request_size=8 * 2**20), intake=intake
    )
    background_loop.run(receiver.start())
    try:
        request = make_request(2000, attributes={"prompt": "p" * 500})
        assert request.ByteSize() > OFFLOAD_BYTES
        assert export(receiver, request, compression=grpc.Compression.Gzip) == ExportTraceServiceResponse()
    finally:
        background_loop.run(receiver.stop(1.0))
    assert intake.requests == [request]
