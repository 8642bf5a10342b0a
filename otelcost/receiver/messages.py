"""What both receivers do with OTLP messages: decode a binary request, hand it over, answer.

Kept apart from the transports so gRPC and HTTP answer identically: the same decoding errors, the
same partial-success rules, the same limit on the response size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, TypeVar

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from otelcost.receiver.errors import MalformedRequestError, truncate_message
from otelcost.receiver.intake import ExportOutcome, Intake
from otelcost.receiver.stats import ReceiverStats

__all__ = [
    "OFFLOAD_BYTES",
    "count_spans",
    "decode_off_loop",
    "decode_protobuf_request",
    "export_response",
    "hand_over",
]

T = TypeVar("T")

OFFLOAD_BYTES: Final = 256 * 1024
"""Bodies this large are decompressed and decoded in a worker thread, not on the event loop.

The receivers share their loop with the API listener (policy endpoint, health checks); a 64 MiB
protobuf takes a few hundred milliseconds to parse and OTLP/JSON about 0.1 s per thousand spans,
which must not freeze everyone else. Small bodies stay on the loop: the thread hop would cost
more than the decoding.
"""


def decode_protobuf_request(body: bytes) -> ExportTraceServiceRequest:
    """Parse a binary ``ExportTraceServiceRequest``; raise ``MalformedRequestError`` if it is not one."""
    try:
        return ExportTraceServiceRequest.FromString(body)
    except (DecodeError, RecursionError) as exc:
        raise MalformedRequestError(
            f"invalid OTLP/protobuf: the body is not an ExportTraceServiceRequest ({exc})"
        ) from exc


async def decode_off_loop(decode: Callable[[], T], size: int) -> T:
    """Run ``decode`` inline for small bodies (``size`` bytes), in a worker thread for large ones."""
    if size < OFFLOAD_BYTES:
        return decode()
    return await asyncio.to_thread(decode)


def count_spans(request: ExportTraceServiceRequest) -> int:
    """Spans in a request; cheap (lengths of repeated fields only)."""
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


def export_response(outcome: ExportOutcome) -> ExportTraceServiceResponse:
    """The OTLP response for an accepted request.

    ``partial_success`` is set only when something was rejected or there is a message (a warning
    on full acceptance, which the specification allows with ``rejected_spans = 0``); the message is
    shortened to keep the response small, as the specification asks.
    """
    response = ExportTraceServiceResponse()
    if not outcome.is_full_success:
        response.partial_success.rejected_spans = outcome.rejected_spans
        response.partial_success.error_message = truncate_message(outcome.error_message)
    return response


async def hand_over(
    request: ExportTraceServiceRequest, intake: Intake, stats: ReceiverStats
) -> ExportTraceServiceResponse:
    """Give a decoded request to the intake and build the answer; count the outcome.

    A request without spans is answered with success without bothering the intake: there is
    nothing to make durable, and a backpressure refusal would only make the sender retry nothing
    (the specification: an empty request SHOULD get success; receivers MAY ignore empty envelopes).
    Exceptions from the intake propagate; the transport maps them with ``errors.protocol_status``.
    """
    spans = count_spans(request)
    if spans == 0:
        stats.requests["empty"] += 1
        return ExportTraceServiceResponse()
    outcome = await intake.export(request)
    stats.spans += spans
    stats.requests["accepted" if outcome.is_full_success else "partial_success"] += 1
    return export_response(outcome)
