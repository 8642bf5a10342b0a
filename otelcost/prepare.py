"""The half of the data path with no durable state, and the bytes its result travels as.

:class:`Preparer` turns one export request into a :class:`BatchSummary` (what the pipeline
counts and answers besides the rows) and a priced batch (``RECORD_SCHEMA``): normalizer, then
pricer. It runs in the serve process (``Pipeline.export``) or in a receiver worker
(``otelcost/workers``); ``Pipeline.commit`` makes the result durable.

:func:`encode_batch` makes a priced batch the bytes of one spool record, an Arrow IPC stream,
which is also what a worker sends the serve process (the spool stores those bytes as they are);
:func:`decode_batch` reads a record back at replay, in today's schema.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelcost.config import Config
from otelcost.errors import LakeError
from otelcost.lake.layout import conform_stored
from otelcost.normalize import Normalizer, NormalizeResult
from otelcost.pricing import Catalog, Pricer
from otelcost.receiver.intake import ExportOutcome
from otelcost.spool import SpoolError

__all__ = ["BatchSummary", "Preparer", "decode_batch", "encode_batch"]


@dataclass(frozen=True)
class BatchSummary:
    """What the pipeline counts of a request besides its rows (and answers: partial success)."""

    spans_seen: int
    dropped: Mapping[str, int]
    """Spans not turned into rows, by reason."""
    rejected_reasons: Mapping[str, int]
    """Invalid spans, by reason (OTLP partial success)."""

    @classmethod
    def of(cls, result: NormalizeResult) -> BatchSummary:
        return cls(result.spans_seen, result.dropped, result.rejected_reasons)

    def outcome(self) -> ExportOutcome:
        """The answer to the sender: OTLP partial success when spans were rejected."""
        rejected = sum(self.rejected_reasons.values())
        if not rejected:
            return ExportOutcome()
        parts = ", ".join(f"{count} {reason}" for reason, count in sorted(self.rejected_reasons.items()))
        return ExportOutcome(
            rejected, f"rejected {rejected} invalid span{'s' if rejected != 1 else ''}: {parts}"
        )


class Preparer:
    """Normalizer -> pricer: one request in, its summary and its priced rows out."""

    def __init__(self, config: Config, *, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.normalizer = Normalizer(config.attribution)
        self.pricer = Pricer(Catalog.load(config.pricing), config.pricing)
        self._clock_ns = clock_ns

    def prepare(self, request: ExportTraceServiceRequest) -> tuple[BatchSummary, pa.Table]:
        """``received_at`` is now (``clock_ns``): it also bounds future timestamps."""
        result = self.normalizer.normalize(request, received_at_ns=self._clock_ns())
        return BatchSummary.of(result), self.pricer.price(result.rows)


def encode_batch(batch: pa.Table) -> pa.Buffer:
    """A priced batch as the bytes of one spool record: an Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_table(batch)
    return sink.getvalue()


def decode_batch(payload: bytes, *, seq: int) -> pa.Table:
    """The inverse of :func:`encode_batch`, in today's RECORD_SCHEMA (columns added since the
    record was written are NULL). Raises SpoolError for bytes that are not such a batch."""
    try:
        table = pa.ipc.open_stream(payload).read_all()
    except (pa.ArrowException, OSError) as exc:
        raise SpoolError(f"spool record {seq} is not an Arrow batch of priced calls: {exc}") from exc
    try:
        return conform_stored(table, source=f"spool record {seq}")
    except LakeError as exc:
        raise SpoolError(str(exc)) from exc
