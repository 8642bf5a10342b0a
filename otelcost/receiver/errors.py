"""The one mapping from otelcost errors to OTLP protocol answers (gRPC status, HTTP status, body).

Both receivers ask :func:`protocol_status` what to answer; nothing else in ``receiver/`` decides a
status code. The table (``docs/receiver.md`` has the full version)::

    exception                      gRPC                 HTTP  sender retries?      detail
    TransientIngestError           UNAVAILABLE          503   yes, after the hint  RetryInfo / Retry-After
    RequestTooLargeError           RESOURCE_EXHAUSTED   413   no                   (never RetryInfo)
    UnsupportedMediaTypeError      INVALID_ARGUMENT     415   no
    MethodNotAllowedError          UNIMPLEMENTED        405   no                   (+ Allow: POST)
    NotFoundError                  UNIMPLEMENTED        404   no
    AuthenticationError            UNAUTHENTICATED      401   no                   (+ WWW-Authenticate)
    PermissionDeniedError          PERMISSION_DENIED    403   no
    PermanentIngestError (other)   INVALID_ARGUMENT     400   no                   BadRequest
    IngestError (neither kind)     UNAVAILABLE          503   yes, client backoff
    anything else                  UNAVAILABLE          503   yes, client backoff  (traceback logged)

Why the last row is retryable: an exception that is not an ``IngestError`` is our fault, not the
sender's data (a bug, a full disk), and telling the sender to drop data for our fault loses spans
for good. The OpenTelemetry Collector makes the same choice ("Default to a retryable error",
``receiver/otlpreceiver/internal/errors/errors.go``). Senders bound their retries (the Python
exporters try six times within their timeout), so a request that trips a bug every time costs a
few retries, not a storm. A sender's data is dropped only when the data itself is bad (400) or too
large (413).

How the answers are carried (OTLP specification, ``opentelemetry-proto/docs/specification.md``):

* gRPC: the status code and message; retryable refusals carry ``google.rpc.RetryInfo`` twice, as
  the ``google.rpc.retryinfo-bin`` trailer (what the Python exporter reads) and inside a
  ``google.rpc.Status`` in ``grpc-status-details-bin`` (what Go clients read through
  ``status.Details()``); bad data carries ``google.rpc.BadRequest`` in the latter.
* HTTP: every 4xx/5xx body is a ``google.rpc.Status``, binary protobuf or JSON to match the
  request's Content-Type; 503 carries ``Retry-After`` in whole seconds (rounded up).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
from dataclasses import dataclass
from typing import Final

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

from otelcost.errors import (
    AuthenticationError,
    IngestError,
    OtelcostError,
    PermanentIngestError,
    PermissionDeniedError,
    TransientIngestError,
)

__all__ = [
    "MAX_MESSAGE_BYTES",
    "BindError",
    "MalformedRequestError",
    "MethodNotAllowedError",
    "NotFoundError",
    "ProtocolStatus",
    "RequestTooLargeError",
    "UnsupportedMediaTypeError",
    "bind_error",
    "grpc_trailing_metadata",
    "http_error_body",
    "http_error_headers",
    "protocol_status",
    "truncate_message",
]

log = logging.getLogger("otelcost.receiver")

MAX_MESSAGE_BYTES: Final = 16 * 1024
"""Longest error or partial-success message sent back (UTF-8 bytes).

The OTLP specification asks servers to keep responses small (4 MiB recommended) by shortening
``error_message`` first; no useful message is anywhere near this long.
"""

RETRY_INFO_TRAILER: Final = "google.rpc.retryinfo-bin"
STATUS_DETAILS_TRAILER: Final = "grpc-status-details-bin"

_UNEXPECTED_LOG_INTERVAL_SECONDS: Final = 10.0


class BindError(OtelcostError):
    """A receiver cannot listen on its configured address (port busy, address not local...)."""


def bind_error(listen: str, config_key: str, cause: OSError | None = None) -> BindError:
    """A ``BindError`` that says why ``listen`` cannot be bound: ``address already in use``.

    gRPC reports a failed bind without the operating system's reason; when ``cause`` is None the
    reason is found by trying to bind a plain socket to the same address.
    """
    if cause is None:
        cause = _probe_bind(listen)
    if cause is None:
        reason = "the server could not bind it"
    else:  # asyncio puts the address into strerror; the plain OS text reads better after ours
        errno = None if isinstance(cause, socket.gaierror) else cause.errno
        reason = os.strerror(errno) if errno else (cause.strerror or str(cause))
    return BindError(f"cannot listen on {listen}: {reason[:1].lower()}{reason[1:]} ({config_key})")


def _probe_bind(listen: str) -> OSError | None:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, ValueError) as exc:
        return exc if isinstance(exc, OSError) else None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            try:
                probe.bind(address)
            except OSError as exc:
                return exc
    return None


class MalformedRequestError(PermanentIngestError):
    """The body cannot be decoded as an ExportTraceServiceRequest.

    ``field`` names the offending JSON field (``resourceSpans[0].scopeSpans[0].spans[3].traceId``)
    when there is one; it becomes the ``field`` of the ``BadRequest`` field violation.
    """

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class RequestTooLargeError(PermanentIngestError):
    """The request is larger than ``max_request_size`` (after decompression)."""


class UnsupportedMediaTypeError(PermanentIngestError):
    """An HTTP Content-Type or Content-Encoding the receiver does not speak."""


class MethodNotAllowedError(PermanentIngestError):
    """An HTTP method other than POST on the OTLP path."""


class NotFoundError(PermanentIngestError):
    """An HTTP path that is not an OTLP endpoint."""


@dataclass(frozen=True, slots=True)
class ProtocolStatus:
    """What a receiver answers for one refused request, in both protocols.

    ``reason`` is a short stable label for metrics (``otelcost_receiver_requests{outcome=...}``).
    ``retry_after`` (seconds) is set for refusals that tell the sender when to come back;
    ``bad_request_field`` is not None when the answer carries a ``google.rpc.BadRequest``.
    """

    grpc_code: grpc.StatusCode
    http_status: int
    reason: str
    message: str
    retry_after: float | None = None
    bad_request_field: str | None = None

    @property
    def retryable(self) -> bool:
        """Whether a conforming OTLP sender retries this answer (spec: 429/502/503/504)."""
        return self.http_status in (429, 502, 503, 504)

    def to_rpc_status(self) -> status_pb2.Status:
        """The ``google.rpc.Status`` sent as HTTP body and in ``grpc-status-details-bin``."""
        status = status_pb2.Status(code=self.grpc_code.value[0], message=self.message)
        if self.retry_after is not None:
            status.details.add().Pack(_retry_info(self.retry_after))
        if self.bad_request_field is not None:
            bad_request = error_details_pb2.BadRequest()
            bad_request.field_violations.add(field=self.bad_request_field, description=self.message)
            status.details.add().Pack(bad_request)
        return status


def protocol_status(exc: Exception) -> ProtocolStatus:
    """Map an exception raised while taking in a request to the protocol answer.

    Exceptions that are not ``IngestError`` are logged here with their traceback (at most one
    per exception type every few seconds, so a failing pipeline cannot flood the log).
    """
    message = truncate_message(str(exc))
    if isinstance(exc, TransientIngestError):
        return ProtocolStatus(
            grpc.StatusCode.UNAVAILABLE, 503, "overloaded", message, retry_after=max(exc.retry_after, 0.0)
        )
    if isinstance(exc, RequestTooLargeError):
        return ProtocolStatus(grpc.StatusCode.RESOURCE_EXHAUSTED, 413, "too_large", message)
    if isinstance(exc, UnsupportedMediaTypeError):
        return ProtocolStatus(grpc.StatusCode.INVALID_ARGUMENT, 415, "unsupported_media_type", message)
    if isinstance(exc, MethodNotAllowedError):
        return ProtocolStatus(grpc.StatusCode.UNIMPLEMENTED, 405, "method_not_allowed", message)
    if isinstance(exc, NotFoundError):
        return ProtocolStatus(grpc.StatusCode.UNIMPLEMENTED, 404, "not_found", message)
    if isinstance(exc, AuthenticationError):
        return ProtocolStatus(grpc.StatusCode.UNAUTHENTICATED, 401, "unauthenticated", message)
    if isinstance(exc, PermissionDeniedError):
        return ProtocolStatus(grpc.StatusCode.PERMISSION_DENIED, 403, "forbidden", message)
    if isinstance(exc, PermanentIngestError):
        field = exc.field if isinstance(exc, MalformedRequestError) else ""
        return ProtocolStatus(
            grpc.StatusCode.INVALID_ARGUMENT, 400, "invalid", message, bad_request_field=field
        )
    if isinstance(exc, IngestError):  # neither permanent nor transient: retryable, like the Collector
        return ProtocolStatus(grpc.StatusCode.UNAVAILABLE, 503, "internal_error", message)
    _log_unexpected(exc)
    return ProtocolStatus(
        grpc.StatusCode.UNAVAILABLE,
        503,
        "internal_error",
        f"internal error ({type(exc).__name__}) while taking in the request; not accepted, retry later",
    )


def grpc_trailing_metadata(status: ProtocolStatus) -> tuple[tuple[str, bytes], ...]:
    """Trailers for a gRPC refusal: the rich status, and RetryInfo where the sender should wait."""
    trailers: list[tuple[str, bytes]] = []
    if status.retry_after is not None:
        trailers.append((RETRY_INFO_TRAILER, _retry_info(status.retry_after).SerializeToString()))
    trailers.append((STATUS_DETAILS_TRAILER, status.to_rpc_status().SerializeToString()))
    return tuple(trailers)


def http_error_body(status: ProtocolStatus, *, json_body: bool) -> bytes:
    """The ``google.rpc.Status`` body of an HTTP refusal, as protobuf or JSON."""
    rpc_status = status.to_rpc_status()
    if json_body:
        return json.dumps(json_format.MessageToDict(rpc_status), ensure_ascii=False).encode()
    body: bytes = rpc_status.SerializeToString()
    return body


def http_error_headers(status: ProtocolStatus) -> dict[str, str]:
    """Extra headers of an HTTP refusal: ``Retry-After`` in whole seconds, rounded up, and the
    challenge of a 401 (RFC 6750)."""
    if status.http_status == 401:
        return {"WWW-Authenticate": 'Bearer realm="otelcost"'}
    if status.retry_after is None:
        return {}
    return {"Retry-After": str(math.ceil(status.retry_after))}


def truncate_message(message: str, limit: int = MAX_MESSAGE_BYTES) -> str:
    """Cut ``message`` to at most ``limit`` UTF-8 bytes, saying that it was cut."""
    encoded = message.encode("utf-8")
    if len(encoded) <= limit:
        return message
    marker = " ... (truncated)"
    head = encoded[: limit - len(marker)].decode("utf-8", errors="ignore")
    return head + marker


def _retry_info(retry_after: float) -> error_details_pb2.RetryInfo:
    info = error_details_pb2.RetryInfo()
    info.retry_delay.FromNanoseconds(round(retry_after * 1e9))
    return info


_last_logged: dict[type[BaseException], float] = {}


def _log_unexpected(exc: Exception) -> None:
    now = time.monotonic()
    last = _last_logged.get(type(exc))
    if last is not None and now - last < _UNEXPECTED_LOG_INTERVAL_SECONDS:
        return
    _last_logged[type(exc)] = now
    log.error(
        "unexpected error while taking in an export request (answered as retryable): %s",
        exc,
        exc_info=exc,
    )
