"""The OTLP/HTTP receiver, driven by the real OpenTelemetry SDK exporter and by ``requests``."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otelcost.config import HttpReceiverConfig
from otelcost.errors import PermanentIngestError, TransientIngestError
from otelcost.receiver import http as http_module
from otelcost.receiver import otlp_json
from otelcost.receiver.errors import BindError
from otelcost.receiver.http import HttpReceiver
from otelcost.receiver.intake import ExportOutcome
from otelcost.receiver.messages import OFFLOAD_BYTES
from tests.receiver.conftest import SMALL_LIMIT, BackgroundLoop, RecordingIntake, make_request
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
TRACE_HEX = "5B8EFFF798038103D269B633813FC60C"


def url(receiver: HttpReceiver, path: str = "/v1/traces") -> str:
    return f"http://127.0.0.1:{receiver.port}{path}"


def post(
    receiver: HttpReceiver, body: bytes, content_type: str = PROTOBUF, **headers: str
) -> requests.Response:
    headers = {"Content-Type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return requests.post(url(receiver), data=body, headers=headers, timeout=5)


def json_body(spans: list[dict[str, Any]]) -> bytes:
    document = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
                "scopeSpans": [{"scope": {"name": "browser"}, "spans": spans}],
            }
        ]
    }
    return json.dumps(document).encode()


def json_span(trace_id: str = TRACE_HEX, span_id: str = "EEE19B7EC3C1B174", **fields: Any) -> dict[str, Any]:
    return {"traceId": trace_id, "spanId": span_id, "name": "chat", "kind": 3, **fields}


def error_status(response: requests.Response) -> status_pb2.Status:
    """The google.rpc.Status every 4xx/5xx body must be, in the request's encoding."""
    if response.headers["Content-Type"].startswith(JSON):
        status = status_pb2.Status()
        json_format.ParseDict(response.json(), status)
        return status
    assert response.headers["Content-Type"] == PROTOBUF
    return status_pb2.Status.FromString(response.content)


def assert_still_serving(receiver: HttpReceiver, intake: RecordingIntake) -> None:
    before = len(intake.requests)
    response = post(receiver, make_request(1).SerializeToString())
    assert response.status_code == 200, response.content
    assert len(intake.requests) == before + 1


# -- the SDK exporter -----------------------------------------------------------------------


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip, Compression.Deflate])
def test_sdk_exporter_spans_arrive_intact(
    http_receiver: HttpReceiver, intake: RecordingIntake, compression: Compression
) -> None:
    exporter = OTLPSpanExporter(endpoint=url(http_receiver), timeout=5, compression=compression)
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("acme.llm", "2.1.0")
    with (
        tracer.start_as_current_span("agent") as parent,
        tracer.start_as_current_span(
            "chat gpt-4o", attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.usage.output_tokens": 77}
        ) as child,
    ):
        pass
    assert provider.force_flush(5000)
    provider.shutdown()

    spans = {span.name: span for span in intake.spans()}
    assert set(spans) == {"agent", "chat gpt-4o"}
    received = spans["chat gpt-4o"]
    assert received.trace_id == child.get_span_context().trace_id.to_bytes(16, "big")
    assert received.span_id == child.get_span_context().span_id.to_bytes(8, "big")
    assert received.parent_span_id == parent.get_span_context().span_id.to_bytes(8, "big")
    attributes = {kv.key: kv.value for kv in received.attributes}
    assert attributes["gen_ai.request.model"].string_value == "gpt-4o"
    assert attributes["gen_ai.usage.output_tokens"].int_value == 77
    assert http_receiver.stats.requests["accepted"] == 1


def test_sdk_exporter_retries_after_503(http_receiver: HttpReceiver, intake: RecordingIntake) -> None:
    intake.fail_next(TransientIngestError("spool is full", retry_after=0.1))  # Retry-After: 1
    exporter = OTLPSpanExporter(endpoint=url(http_receiver), timeout=5)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("retried"):
        pass
    assert provider.force_flush(5000)
    provider.shutdown()
    assert intake.calls == 2
    assert [span.name for span in intake.spans()] == ["retried"]


# -- protobuf and JSON bodies ---------------------------------------------------------------


def test_protobuf_success_has_no_partial_success(
    http_receiver: HttpReceiver, intake: RecordingIntake
) -> None:
    response = post(http_receiver, make_request(2).SerializeToString())
    assert response.status_code == 200
    assert response.headers["Content-Type"] == PROTOBUF
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
    assert len(intake.spans()) == 2


@pytest.mark.parametrize("case", [str.upper, str.lower])
def test_json_with_hex_ids(http_receiver: HttpReceiver, intake: RecordingIntake, case: Any) -> None:
    spans = [
        json_span(case(TRACE_HEX), case("EEE19B7EC3C1B174"), parentSpanId=case("00F067AA0BA902B7")),
        json_span(case(TRACE_HEX), case("00F067AA0BA902B7"), startTimeUnixNano="1767225600000000000"),
    ]
    response = post(http_receiver, json_body(spans), JSON)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == JSON
    assert response.json() == {}
    child, parent = intake.spans()
    assert child.trace_id == bytes.fromhex("5b8efff798038103d269b633813fc60c")
    assert child.span_id == bytes.fromhex("eee19b7ec3c1b174")
    assert child.parent_span_id == bytes.fromhex("00f067aa0ba902b7") == parent.span_id
    assert parent.start_time_unix_nano == 1767225600000000000


def test_content_type_parameters_are_allowed(http_receiver: HttpReceiver, intake: RecordingIntake) -> None:
    response = post(http_receiver, json_body([json_span()]), "Application/JSON; charset=utf-8")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == JSON
    assert len(intake.spans()) == 1


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b, wbits=-zlib.MAX_WBITS)),
    ],
)
@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_compressed_bodies(
    http_receiver: HttpReceiver, intake: RecordingIntake, encoding: str, compress: Any, content_type: str
) -> None:
    raw = (
        make_request(2).SerializeToString()
        if content_type == PROTOBUF
        else json_body([json_span(), json_span()])
    )
    response = post(http_receiver, compress(raw), content_type, Content_Encoding=encoding)
    assert response.status_code == 200, response.content
    assert [span.trace_id.hex() for span in intake.spans()] == ["5b8efff798038103d269b633813fc60c"] * 2


@pytest.mark.parametrize(
    ("outcome", "expected_json"),
    [
        (
            ExportOutcome(2, "rejected 2 invalid spans"),
            {"rejectedSpans": "2", "errorMessage": "rejected 2 invalid spans"},
        ),
        (ExportOutcome(0, "warning only"), {"rejectedSpans": "0", "errorMessage": "warning only"}),
    ],
)
def test_partial_success_in_protobuf_and_json(
    http_receiver: HttpReceiver,
    intake: RecordingIntake,
    outcome: ExportOutcome,
    expected_json: dict[str, str],
) -> None:
    intake.outcome = outcome
    response = post(http_receiver, make_request(3).SerializeToString())
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert (partial.rejected_spans, partial.error_message) == (outcome.rejected_spans, outcome.error_message)

    response = post(http_receiver, json_body([json_span()]), JSON)
    assert response.status_code == 200
    assert response.json() == {"partialSuccess": expected_json}


def test_empty_request_succeeds_without_reaching_the_intake(
    http_receiver: HttpReceiver, intake: RecordingIntake
) -> None:
    assert post(http_receiver, b"").status_code == 200
    assert post(http_receiver, b"{}", JSON).json() == {}
    assert intake.calls == 0
    assert http_receiver.stats.requests["empty"] == 2


def test_large_bodies_are_decoded_off_the_event_loop(
    background_loop: BackgroundLoop, intake: RecordingIntake, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoding_threads: list[str] = []

    def recording_decoder(body: bytes) -> Any:
        decoding_threads.append(threading.current_thread().name)
        return otlp_json.decode_export_request(body)

    monkeypatch.setitem(http_module._DECODERS, JSON, recording_decoder)
    receiver = HttpReceiver(
        config=HttpReceiverConfig(listen="127.0.0.1:0", max_request_size=8 * 2**20), intake=intake
    )
    background_loop.run(receiver.start())
    try:
        small = json_body([json_span()])
        big = json_body(
            [
                json_span(span_id=f"{i:016x}", attributes=[{"key": "k", "value": {"stringValue": "v" * 100}}])
                for i in range(3000)
            ]
        )
        assert len(small) < OFFLOAD_BYTES < len(big)
        assert post(receiver, small, JSON).status_code == 200
        assert post(receiver, big, JSON).status_code == 200
        assert post(receiver, gzip.compress(big), JSON, Content_Encoding="gzip").status_code == 200
    finally:
        background_loop.run(receiver.stop(1.0))
    assert decoding_threads[0] == "test-event-loop"
    assert "test-event-loop" not in decoding_threads[1:]
    assert len(intake.spans()) == 1 + 3000 + 3000
    assert intake.spans()[-1].span_id == (2999).to_bytes(8, "big")


# -- refusals -------------------------------------------------------------------------------


def bomb(size: int) -> bytes:
    return gzip.compress(make_request(1, attributes={"prompt": "\0" * size}).SerializeToString())


@pytest.mark.parametrize(
    ("content_type", "body", "headers", "status", "message"),
    [
        ("text/plain", b"hello", {}, 415, "unsupported Content-Type 'text/plain'"),
        (PROTOBUF, b"", {"Content-Encoding": "br"}, 415, "unsupported Content-Encoding 'br'"),
        (PROTOBUF, b"\x0a\xff\xff\xff\xff\x0f junk", {}, 400, "invalid OTLP/protobuf"),
        (JSON, b'{"resourceSpans": [', {}, 400, "invalid OTLP/JSON: Expecting value"),
        (
            JSON,
            json_body([json_span(trace_id="5B8EFFF7")]),
            {},
            400,
            "resourceSpans[0].scopeSpans[0].spans[0].traceId: "
            "expected 32 hex digits (16 bytes), got '5B8EFFF7'",
        ),
        (JSON, json_body([json_span(span_id="ZZZ19B7EC3C1B174")]), {}, 400, "expected 16 hex digits"),
        (PROTOBUF, b"not gzip at all", {"Content-Encoding": "gzip"}, 400, "invalid gzip body"),
        (PROTOBUF, b"\0" * (SMALL_LIMIT * 2), {}, 413, "request body is larger than"),
        (PROTOBUF, bomb(SMALL_LIMIT * 4), {"Content-Encoding": "gzip"}, 413, "after decompression"),
    ],
    ids=[
        "415-type",
        "415-encoding",
        "400-proto",
        "400-json",
        "400-hex",
        "400-hex-digits",
        "400-gzip",
        "413",
        "413-bomb",
    ],
)
def test_refusals(  # noqa: PLR0917 (one parameter per table column)
    http_receiver: HttpReceiver,
    intake: RecordingIntake,
    content_type: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    response = requests.post(
        url(http_receiver), data=body, headers={"Content-Type": content_type, **headers}, timeout=5
    )
    assert response.status_code == status
    rpc_status = error_status(response)
    assert message in rpc_status.message
    assert response.headers["Content-Type"] == (JSON if content_type == JSON else PROTOBUF)
    assert "Retry-After" not in response.headers
    if status == 400:
        bad_request = error_details_pb2.BadRequest()
        assert rpc_status.details[0].Unpack(bad_request)
        assert bad_request.field_violations[0].description == rpc_status.message
    assert intake.calls == 0
    assert_still_serving(http_receiver, intake)


def test_transient_error_is_503_with_retry_after(
    http_receiver: HttpReceiver, intake: RecordingIntake
) -> None:
    intake.fail_next(TransientIngestError("spool is full", retry_after=2.2))
    response = post(http_receiver, json_body([json_span()]), JSON)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "3"
    assert response.json()["message"] == "spool is full"
    assert response.json()["details"][0]["@type"] == "type.googleapis.com/google.rpc.RetryInfo"
    assert_still_serving(http_receiver, intake)


def test_permanent_error_from_the_intake_is_400(http_receiver: HttpReceiver, intake: RecordingIntake) -> None:
    intake.fail_next(PermanentIngestError("no usable spans"))
    response = post(http_receiver, make_request(1).SerializeToString())
    assert response.status_code == 400
    assert error_status(response).message == "no usable spans"
    assert_still_serving(http_receiver, intake)


def test_unexpected_error_is_a_retryable_503_without_retry_after(
    http_receiver: HttpReceiver, intake: RecordingIntake, caplog: pytest.LogCaptureFixture
) -> None:
    intake.fail_next(RuntimeError("bug"))
    with caplog.at_level(logging.CRITICAL, logger="otelcost.receiver"):
        response = post(http_receiver, make_request(1).SerializeToString())
    assert response.status_code == 503
    assert "Retry-After" not in response.headers
    assert "RuntimeError" in error_status(response).message
    assert_still_serving(http_receiver, intake)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_with_allow(
    http_receiver: HttpReceiver, intake: RecordingIntake, method: str
) -> None:
    response = requests.request(method, url(http_receiver), timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert "use POST" in error_status(response).message
    assert_still_serving(http_receiver, intake)


@pytest.mark.parametrize("path", ["/", "/v1/trace", "/v1/traces/", "/v1/metrics"])
def test_other_paths_are_404(http_receiver: HttpReceiver, intake: RecordingIntake, path: str) -> None:
    response = requests.post(url(http_receiver, path), data=b"", headers={"Content-Type": JSON}, timeout=5)
    assert response.status_code == 404
    assert "traces go to /v1/traces" in error_status(response).message
    assert http_receiver.stats.requests["not_found"] == 1
    assert_still_serving(http_receiver, intake)


def test_chunked_oversized_body_is_413(http_receiver: HttpReceiver, intake: RecordingIntake) -> None:
    def chunks() -> Any:  # a generator makes requests use chunked transfer: no Content-Length
        for _ in range(8):
            yield b"\0" * (SMALL_LIMIT // 2)

    response = requests.post(url(http_receiver), data=chunks(), headers={"Content-Type": PROTOBUF}, timeout=5)
    assert response.status_code == 413
    assert_still_serving(http_receiver, intake)


def raw_exchange(receiver: HttpReceiver, head: bytes, body: bytes | None = None) -> list[bytes]:
    """Send request headers, read the first answer, then send ``body`` (if any) and read again."""
    answers = []
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=5) as conn:
        conn.sendall(head)
        answers.append(conn.recv(65536))
        if body is not None:
            conn.sendall(body)
            answers.append(conn.recv(65536))
    return answers


def test_expect_continue_refuses_a_declared_oversized_body_before_it_is_sent(
    http_receiver: HttpReceiver, intake: RecordingIntake
) -> None:
    head = (
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        f"Content-Length: {SMALL_LIMIT * 4}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    (answer,) = raw_exchange(http_receiver, head)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert_still_serving(http_receiver, intake)


def test_expect_continue_accepts_a_body_within_the_limit(
    http_receiver: HttpReceiver, intake: RecordingIntake
) -> None:
    body = make_request(1).SerializeToString()
    head = (
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    ).encode()
    interim, final = raw_exchange(http_receiver, head, body)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert final.startswith(b"HTTP/1.1 200 ")
    assert len(intake.spans()) == 1


# -- lifecycle ------------------------------------------------------------------------------


def test_busy_port_is_a_bind_error(background_loop: BackgroundLoop, intake: RecordingIntake) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        listen = f"127.0.0.1:{squatter.getsockname()[1]}"
        receiver = HttpReceiver(config=HttpReceiverConfig(listen=listen), intake=intake)
        try:
            with pytest.raises(BindError) as info:
                background_loop.run(receiver.start())
        finally:
            background_loop.run(receiver.stop(0))  # in case it did start
    assert str(info.value) == f"cannot listen on {listen}: address already in use (receiver.http.listen)"


def test_stop_is_safe_before_start_and_twice(
    background_loop: BackgroundLoop, intake: RecordingIntake
) -> None:
    receiver = HttpReceiver(config=HttpReceiverConfig(listen="127.0.0.1:0"), intake=intake)
    background_loop.run(receiver.stop(1.0))
    background_loop.run(receiver.start())
    port = receiver.port
    background_loop.run(receiver.stop(1.0))
    background_loop.run(receiver.stop(1.0))
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_stop_lets_requests_in_flight_finish(
    background_loop: BackgroundLoop, intake: RecordingIntake
) -> None:
    intake.delay = 0.3
    receiver = HttpReceiver(config=HttpReceiverConfig(listen="127.0.0.1:0"), intake=intake)
    background_loop.run(receiver.start())
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(post, receiver, make_request(1).SerializeToString())
        wait_until(lambda: intake.calls == 1)
        background_loop.run(receiver.stop(5.0))
        assert in_flight.result(5).status_code == 200
    assert len(intake.requests) == 1


def test_stop_gives_up_on_requests_after_the_grace_period(
    background_loop: BackgroundLoop, intake: RecordingIntake
) -> None:
    intake.delay = 30
    receiver = HttpReceiver(config=HttpReceiverConfig(listen="127.0.0.1:0"), intake=intake)
    background_loop.run(receiver.start())
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(post, receiver, make_request(1).SerializeToString())
        wait_until(lambda: intake.calls == 1)
        background_loop.run(receiver.stop(0.2), timeout=5)
        with pytest.raises(requests.ConnectionError):
            in_flight.result(5)
    assert intake.requests == []  # never acknowledged, so the sender keeps its data
