"""What the OTLP receivers hand their requests to.

The receivers (``grpc.py``, ``http.py``) only turn bytes into an ``ExportTraceServiceRequest``
and protocol responses; everything after that is the intake's business. The pipeline implements
:class:`Intake`; tests use a recording one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

__all__ = ["ExportOutcome", "Intake"]


@dataclass(frozen=True, slots=True)
class ExportOutcome:
    """The result of an accepted request: OTLP full success, or partial success.

    ``rejected_spans`` > 0 (or a non-empty ``error_message``) becomes the OTLP
    ``partial_success`` field; senders do not retry it.
    """

    rejected_spans: int = 0
    error_message: str = ""

    @property
    def is_full_success(self) -> bool:
        return self.rejected_spans == 0 and not self.error_message


class Intake(Protocol):
    async def export(self, request: ExportTraceServiceRequest) -> ExportOutcome:
        """Take in one request and say what was rejected.

        Raises ``TransientIngestError`` when the pipeline cannot take it now (the receiver answers
        gRPC UNAVAILABLE / HTTP 503 with a retry delay) and ``PermanentIngestError`` when the
        request itself is invalid (INVALID_ARGUMENT / 400). Once this returns, the request's
        accepted spans are the pipeline's responsibility.
        """
        ...
