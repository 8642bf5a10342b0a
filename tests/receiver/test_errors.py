"""The one table from our errors to gRPC codes, HTTP statuses, retryability and status details."""

from __future__ import annotations

import json
import logging

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from otelcost.errors import IngestError, LakeError, PermanentIngestError, TransientIngestError
from otelcost.receiver.errors import (
    MAX_MESSAGE_BYTES,
    MalformedRequestError,
    MethodNotAllowedError,
    NotFoundError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
    grpc_trailing_metadata,
    http_error_body,
    http_error_headers,
    protocol_status,
    truncate_message,
)

C = grpc.StatusCode

# exception, gRPC code, HTTP status, retryable, Retry-After header, detail in google.rpc.Status
TABLE = [
    (TransientIngestError("spool full", retry_after=2.5), C.UNAVAILABLE, 503, True, "3", "RetryInfo"),
    (TransientIngestError("spool full", retry_after=0.1), C.UNAVAILABLE, 503, True, "1", "RetryInfo"),
    (RequestTooLargeError("too big"), C.RESOURCE_EXHAUSTED, 413, False, None, None),
    (UnsupportedMediaTypeError("text/plain"), C.INVALID_ARGUMENT, 415, False, None, None),
    (MethodNotAllowedError("GET"), C.UNIMPLEMENTED, 405, False, None, None),
    (NotFoundError("/v1/trace"), C.UNIMPLEMENTED, 404, False, None, None),
    (
        MalformedRequestError("bad hex", field="spans[0].traceId"),
        C.INVALID_ARGUMENT,
        400,
        False,
        None,
        "BadRequest",
    ),
    (PermanentIngestError("invalid"), C.INVALID_ARGUMENT, 400, False, None, "BadRequest"),
    (IngestError("neither"), C.UNAVAILABLE, 503, True, None, None),
    (LakeError("disk full"), C.UNAVAILABLE, 503, True, None, None),
    (KeyError("bug"), C.UNAVAILABLE, 503, True, None, None),
]


@pytest.mark.parametrize(
    ("exc", "grpc_code", "http_status", "retryable", "retry_after_header", "detail"),
    TABLE,
    ids=[f"{type(row[0]).__name__}-{row[2]}-{i}" for i, row in enumerate(TABLE)],
)
def test_mapping_table(  # noqa: PLR0917 (one parameter per table column)
    exc: Exception,
    grpc_code: grpc.StatusCode,
    http_status: int,
    retryable: bool,
    retry_after_header: str | None,
    detail: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.CRITICAL, logger="otelcost.receiver")  # unexpected errors are logged
    status = protocol_status(exc)
    assert (status.grpc_code, status.http_status, status.retryable) == (grpc_code, http_status, retryable)
    assert http_error_headers(status).get("Retry-After") == retry_after_header

    rpc_status = status_pb2.Status.FromString(http_error_body(status, json_body=False))
    assert rpc_status.code == grpc_code.value[0]
    assert rpc_status.message == status.message
    details = [d.TypeName().rsplit(".", 1)[1] for d in rpc_status.details]
    assert details == ([detail] if detail else [])

    trailers = dict(grpc_trailing_metadata(status))
    assert status_pb2.Status.FromString(trailers["grpc-status-details-bin"]) == rpc_status
    if detail == "RetryInfo":
        retry_info = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
        assert isinstance(exc, TransientIngestError)
        assert retry_info.retry_delay.ToNanoseconds() == round(exc.retry_after * 1e9)
    else:
        assert "google.rpc.retryinfo-bin" not in trailers


def test_too_large_never_carries_retry_info() -> None:
    # The spec: RESOURCE_EXHAUSTED is retryable only with RetryInfo; an oversized request must not be.
    status = protocol_status(RequestTooLargeError("too big"))
    assert status.retry_after is None
    assert [key for key, _ in grpc_trailing_metadata(status)] == ["grpc-status-details-bin"]


def test_bad_request_names_the_field() -> None:
    status = protocol_status(MalformedRequestError("expected 32 hex digits", field="resourceSpans[0].x"))
    rpc_status = status_pb2.Status.FromString(http_error_body(status, json_body=False))
    bad_request = error_details_pb2.BadRequest()
    assert rpc_status.details[0].Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("resourceSpans[0].x", "expected 32 hex digits")
    ]


def test_json_error_body_is_a_json_status() -> None:
    status = protocol_status(TransientIngestError("spool full", retry_after=1.5))
    body = json.loads(http_error_body(status, json_body=True))
    assert body == {
        "code": 14,
        "message": "spool full",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.500s"}],
    }


def test_unexpected_errors_are_logged_with_traceback_but_rate_limited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class SurpriseError(Exception):
        pass

    with caplog.at_level(logging.ERROR, logger="otelcost.receiver"):
        for _ in range(5):
            status = protocol_status(SurpriseError("boom"))
    assert status.reason == "internal_error"
    assert "SurpriseError" in status.message
    records = [r for r in caplog.records if r.exc_info and r.exc_info[0] is SurpriseError]
    assert len(records) == 1


def test_messages_are_truncated_to_a_bounded_size() -> None:
    long = "é" * MAX_MESSAGE_BYTES
    short = truncate_message(long)
    assert len(short.encode()) <= MAX_MESSAGE_BYTES
    assert short.endswith("(truncated)")
    assert truncate_message("fine") == "fine"
    assert len(protocol_status(PermanentIngestError(long)).message.encode()) <= MAX_MESSAGE_BYTES
