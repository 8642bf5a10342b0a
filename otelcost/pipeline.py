"""The data path: the only module that knows every stage and wires them together.

::

    receiver (gRPC, HTTP) --ExportTraceServiceRequest--> Pipeline.export
        -> Preparer.prepare:
           Normalizer.normalize   request -> CALL_SCHEMA table (LLM calls only, attributed)
           Pricer.price           CALL_SCHEMA -> RECORD_SCHEMA (exact cost columns)
        -> Pipeline.commit:       (a receiver worker prepares in its own process and commits here)
        -> LakeWriter.reserve     room in the lake buffer, or a retryable refusal
        -> Spool.append           Arrow IPC bytes, fsynced (group commit): the ack's guarantee
        -> sinks, in order        LakeWriter (Parquet), then the budget Evaluator (decisions)
    lake flush --on_seqs_durable--> CheckpointTracker --contiguous prefix--> Spool.checkpoint

Data flows one way. Stages never call each other; each is handed its input here. The lake writer
is the one sink that may refuse a batch (its buffer is full), and a refusal must come before the
spool append: a batch that is in the spool is replayed after a crash whatever the sender does,
so if the lake refused it after the append, the sender's retry would put it in the lake a second
time. The pipeline therefore reserves room in the lake buffer first (refusing there leaves
nothing anywhere), appends, then hands the batch to the lake (which takes the reservation and
cannot refuse) and to the evaluator. The budget evaluator de-duplicates by (trace_id, span_id),
so a retried request never counts twice there either.

Replay (``start``): the lake recovers, the evaluator rebuilds its open windows from the lake,
then every spool record after the checkpoint is read back. The rows of a record that a lake file
already holds (the file names the record's seq in its footer, ``lake/seqs.py``: a crash came
between the file's rename and the checkpoint) are skipped; the rest go to the lake writer and
the evaluator, as the live path would have. Only then do the receivers accept (``server.py``).
docs/durability.md, "Pipeline", states the guarantees.

The work of one request runs on the caller's thread (the receivers' event loop): normalizing and
pricing are vectorised and take well under a millisecond per hundred spans, and doing them inline
means a request is acknowledged only once its rows are in the spool and the lake writer's buffer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelcost.budgets import Evaluator
from otelcost.config import Config
from otelcost.errors import LakeError, OtelcostError, TransientIngestError
from otelcost.lake.files import (
    conform_stored,
    highest_recorded_seq,
    lake_lock,
    read_partition_seqs,
    split_by_day,
)
from otelcost.lake.seqs import SeqSet
from otelcost.lake.writer import LakeWriter
from otelcost.normalize import Normalizer, NormalizeResult
from otelcost.pricing import Catalog, Pricer
from otelcost.receiver.intake import ExportOutcome
from otelcost.spool import Spool, SpoolError
from otelcost.spool.tracker import CheckpointTracker
from otelcost.stages import Sink

__all__ = [
    "BatchSummary",
    "IntakeCounters",
    "Pipeline",
    "Preparer",
    "ReplayCounters",
    "decode_batch",
    "encode_batch",
]

log = logging.getLogger(__name__)


@dataclass
class IntakeCounters:
    """Running totals of what the pipeline took in, read by the metrics endpoint.

    Updated under the pipeline's lock by the thread that runs ``export``; the metrics collector
    reads a copy (:meth:`Pipeline.counters_snapshot`).
    """

    requests: int = 0
    spans: int = 0
    calls: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    pricing_status: Counter[str] = field(default_factory=Counter)
    attribution_status: Counter[str] = field(default_factory=Counter)
    refused_requests: int = 0

    def copy(self) -> IntakeCounters:
        return IntakeCounters(
            self.requests,
            self.spans,
            self.calls,
            Counter(self.rejected),
            Counter(self.dropped),
            Counter(self.pricing_status),
            Counter(self.attribution_status),
            self.refused_requests,
        )


@dataclass
class ReplayCounters:
    """What the last start replayed from the spool (read by the metrics endpoint)."""

    records: int = 0
    """Records whose rows (some or all) were handed to the sinks again."""
    rows: int = 0
    records_in_lake: int = 0
    """Records every row of which a lake file already held: skipped."""
    rows_in_lake: int = 0
    seconds: float = 0.0


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


class Preparer:
    """Normalizer -> pricer: one request in, its summary and its priced rows out.

    The half of the data path with no durable state, so it can run in the serve process
    (``Pipeline.export``) or in a receiver worker (``otelcost/workers``) alike.
    """

    def __init__(self, config: Config, *, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.normalizer = Normalizer(config.attribution)
        self.pricer = Pricer(Catalog.load(config.pricing), config.pricing)
        self._clock_ns = clock_ns

    def prepare(self, request: ExportTraceServiceRequest) -> tuple[BatchSummary, pa.Table]:
        """``received_at`` is now (``clock_ns``): it also bounds future timestamps."""
        result = self.normalizer.normalize(request, received_at_ns=self._clock_ns())
        return BatchSummary.of(result), self.pricer.price(result.calls)


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


def _value_counts(column: pa.ChunkedArray) -> dict[str, int]:
    counts = pc.value_counts(column)
    return {
        str(value): int(count)
        for value, count in zip(
            counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
        )
    }


def _partial_success_message(rejected_reasons: Mapping[str, int]) -> str:
    total = sum(rejected_reasons.values())
    parts = ", ".join(f"{count} {reason}" for reason, count in sorted(rejected_reasons.items()))
    return f"rejected {total} invalid span{'s' if total != 1 else ''}: {parts}"


class Pipeline:
    """Normalizer -> pricer -> sinks. Implements the receivers' ``Intake`` protocol."""

    def __init__(
        self,
        config: Config,
        *,
        extra_sinks: tuple[Sink, ...] = (),
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self.preparer = Preparer(config, clock_ns=clock_ns)
        self.normalizer = self.preparer.normalizer
        self.pricer = self.preparer.pricer
        self.spool = Spool(config.spool_dir, config=config.spool) if config.spool.enabled else None
        self.lake = LakeWriter(
            lake_dir=config.lake_dir,
            config=config.lake,
            on_seqs_durable=self._seqs_durable if self.spool is not None else None,
        )
        self.evaluator = Evaluator.from_config(config, clock_ns=clock_ns)
        self.sinks: tuple[Sink, ...] = (self.lake, self.evaluator, *extra_sinks)
        self.replayed = ReplayCounters()
        self._tracker = CheckpointTracker()
        self._counters = IntakeCounters()
        self._lock = threading.Lock()
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Open the spool, start the sinks in data-flow order, then replay the spool.

        The spool starts first: a damaged log or a second process on the same directory stops
        everything before a file is touched. The lake recovers before the evaluator rebuilds its
        open windows from it, and the replay comes last ("rebuild first, then replay",
        ``budgets/rebuild.py``). On failure, whatever was started is stopped again.
        """
        try:
            if self.spool is not None:
                self.spool.start()
                self._tracker = CheckpointTracker(self.spool.checkpointed_seq)
            for sink in self.sinks:
                sink.start()
            if self.spool is not None:
                self._replay(self.spool)
                self._continue_numbering(self.spool)
        except BaseException:
            try:
                self.shutdown()
            except Exception:
                log.exception("stopping the pipeline after a failed start failed too")
            raise
        self._started = True

    def shutdown(self) -> None:
        """Flush and stop every sink, in data-flow order, then the spool. Idempotent; safe
        before start().

        Every sink is shut down even when one fails; the first failure is raised afterwards
        (the lake writer raises ``LakeError`` naming rows it could not write). The spool stops
        last, because the lake's final flush checkpoints it.
        """
        failure: BaseException | None = None
        for sink in self.sinks:
            try:
                sink.shutdown()
            except LakeError as exc:
                if self.spool is not None:  # their seqs were never checkpointed
                    exc = type(exc)(f"{exc}; the spool holds them: they are replayed at the next start")
                failure = failure or exc
            except Exception as exc:
                failure = failure or exc
        if self.spool is not None:
            try:
                self._checkpoint(self.spool, self._tracker.prefix)
            except Exception as exc:  # the records are replayed (and skipped) at the next start
                log.warning("the final spool checkpoint failed: %s", exc)
            self.spool.shutdown()
        self._started = False
        if failure is not None:
            raise failure

    # -- the spool -------------------------------------------------------------------------

    def _seqs_durable(self, seqs: list[int]) -> None:
        """The lake writer's hook, on its flush thread (never the event loop): checkpoint."""
        prefix = self._tracker.mark(seqs)
        if prefix is not None and self.spool is not None:
            self._checkpoint(self.spool, prefix)

    @staticmethod
    def _checkpoint(spool: Spool, seq: int) -> None:
        # checkpoint() ignores a seq at or below the current one, so racing callers (the flush
        # thread, the end of the replay, shutdown) cannot move it backwards.
        if seq > spool.checkpointed_seq:
            spool.checkpoint(seq)

    def _replay(self, spool: Spool) -> None:
        """Hand every spool record after the checkpoint to the sinks, minus the rows the lake has.

        Runs before the receivers accept, on the starting thread. The lake buffer is flushed
        whenever it holds ``lake.max_buffer_rows`` rows, and once at the end, so the replay
        is in Parquet (and checkpointed) before new data arrives; a failed flush keeps the rows
        for the writer's next attempt, as on the live path.
        """
        if spool.depth == 0:
            return
        started = time.monotonic()
        counters = ReplayCounters()
        in_lake: dict[date, SeqSet] = {}  # per day: the seqs that day's files already hold
        for record in spool.replay():
            batch = decode_batch(record.payload, seq=record.seq)
            fresh = []
            for day, part in split_by_day(batch):
                if day not in in_lake:
                    # Shared, as a flush: an operator's `lake compact` or `reprice` swapping
                    # this day's files must not show the listing a day half-swapped.
                    with lake_lock(self.config.lake_dir, shared=True):
                        in_lake[day] = read_partition_seqs(self.config.lake_dir, day)
                if record.seq in in_lake[day]:
                    counters.rows_in_lake += part.num_rows
                else:
                    fresh.append(part)
            if not fresh:
                counters.records_in_lake += 1
                self._tracker.mark([record.seq])
                continue
            rows = fresh[0] if len(fresh) == 1 else pa.concat_tables(fresh)
            with self._lock:
                self.lake.consume_unbounded(rows, spool_seq=record.seq)
                for sink in self.sinks[1:]:
                    sink.consume(rows)
            counters.records += 1
            counters.rows += rows.num_rows
            if self.lake.buffered_rows >= self.config.lake.max_buffer_rows:
                self._flush_replayed()
        self._flush_replayed()
        self._checkpoint(spool, self._tracker.prefix)
        counters.seconds = time.monotonic() - started
        self.replayed = counters
        log.info(
            "spool replay: %d record(s) after checkpoint %d; %d record(s) (%d rows) handed to the "
            "lake and the budgets, %d record(s) (%d rows) already in the lake; %.2fs",
            counters.records + counters.records_in_lake,
            spool.recovery.checkpointed_seq if spool.recovery else 0,
            counters.records,
            counters.rows,
            counters.records_in_lake,
            counters.rows_in_lake,
            counters.seconds,
        )

    def _continue_numbering(self, spool: Spool) -> None:
        """Never hand out a seq the lake already names (``Spool.skip_to`` says when it would).

        Reads every lake file's footer once per start: with background compaction that is a
        few files per day.
        """
        started = time.monotonic()
        with lake_lock(self.config.lake_dir, shared=True):
            highest = highest_recorded_seq(self.config.lake_dir)
        if highest > spool.last_seq and spool.depth:
            # A replayed batch could not be flushed: renumbering must wait for a clean start.
            log.error(
                "the lake names spool records up to seq %d but the spool ends at %d, and %d "
                "record(s) are still to replay: numbering is checked again at the next start",
                highest,
                spool.last_seq,
                spool.depth,
            )
        elif highest > spool.last_seq:
            log.warning(
                "the lake names spool records up to seq %d but the spool ends at %d (repaired, "
                "replaced, or its tail lost with fsync off): numbering continues after %d",
                highest,
                spool.last_seq,
                highest,
            )
            spool.skip_to(highest)
        log.debug("highest seq in the lake: %d (%.2fs)", highest, time.monotonic() - started)

    def _flush_replayed(self) -> None:
        try:
            self.lake.flush()
        except LakeError as exc:
            log.error("lake flush during the spool replay failed, rows kept for the next attempt: %s", exc)

    # -- data path ---------------------------------------------------------------------------

    def process(self, request: ExportTraceServiceRequest) -> ExportOutcome:
        """Run one request through every stage; what ``export`` does, callable without a loop
        (it blocks for the spool's fsync)."""
        summary, priced = self.preparer.prepare(request)
        if self.spool is None or priced.num_rows == 0:
            return self._deliver(summary, priced, None)
        self._reserve(priced.num_rows)
        try:
            seq = self.spool.append_sync(encode_batch(priced))
        except BaseException as exc:
            self._unreserve(priced.num_rows, exc)
            raise
        return self._deliver(summary, priced, seq)

    async def export(self, request: ExportTraceServiceRequest) -> ExportOutcome:
        return await self.commit(*self.preparer.prepare(request))

    async def commit(
        self, summary: BatchSummary, priced: pa.Table, *, encoded: pa.Buffer | bytes | None = None
    ) -> ExportOutcome:
        """The durable half of ``export``: reserve, spool, hand to the sinks, count.

        For a batch normalized and priced elsewhere (a receiver worker process,
        ``otelcost/workers``), ``encoded`` is the batch as :func:`encode_batch` made it there:
        those bytes become the spool record as they are.
        """
        if self.spool is None or priced.num_rows == 0:
            return self._deliver(summary, priced, None)  # nothing to make durable
        self._reserve(priced.num_rows)
        # Once appended, the batch must reach the lake writer even if the request is cancelled
        # (client gone, receiver stopping): an appended seq the lake never sees would hold the
        # checkpoint back for good. So the append and the hand-over run as one shielded task.
        payload = encoded if encoded is not None else encode_batch(priced)
        task = asyncio.ensure_future(self._spool_and_deliver(self.spool, summary, priced, payload))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_retrieve_failure)
            raise

    async def _spool_and_deliver(
        self, spool: Spool, summary: BatchSummary, priced: pa.Table, payload: pa.Buffer | bytes
    ) -> ExportOutcome:
        try:
            seq = await spool.append(payload)
        except BaseException as exc:
            self._unreserve(priced.num_rows, exc)
            raise
        return self._deliver(summary, priced, seq)

    def _reserve(self, rows: int) -> None:
        try:
            self.lake.reserve(rows)
        except TransientIngestError:
            with self._lock:
                self._counters.refused_requests += 1
            raise

    def _unreserve(self, rows: int, exc: BaseException) -> None:
        self.lake.release(rows)
        if isinstance(exc, TransientIngestError):  # the spool is full or the disk refused
            with self._lock:
                self._counters.refused_requests += 1

    def _deliver(self, summary: BatchSummary, priced: pa.Table, seq: int | None) -> ExportOutcome:
        """Hand the batch to the sinks (spool record ``seq``, reserved in the lake) and count it."""
        with self._lock:
            try:
                if seq is None:
                    for sink in self.sinks:
                        sink.consume(priced)
                else:
                    # Refused only when the lake writer has stopped; the record stays in the
                    # spool, un-checkpointed, and is replayed at the next start.
                    self.lake.consume(priced, spool_seq=seq, reserved=True)
                    for sink in self.sinks[1:]:
                        sink.consume(priced)
            except Exception:
                self._counters.refused_requests += 1
                raise
            self._count(summary.spans_seen, priced, summary.dropped, summary.rejected_reasons)
        rejected = sum(summary.rejected_reasons.values())
        if rejected:
            return ExportOutcome(rejected, _partial_success_message(summary.rejected_reasons))
        return ExportOutcome()

    def _count(
        self,
        spans: int,
        priced: pa.Table,
        dropped: Mapping[str, int],
        rejected: Mapping[str, int],
    ) -> None:
        counters = self._counters
        counters.requests += 1
        counters.spans += spans
        counters.calls += priced.num_rows
        counters.dropped.update(dropped)
        counters.rejected.update(rejected)
        if priced.num_rows:
            counters.pricing_status.update(_value_counts(priced["pricing_status"]))
            counters.attribution_status.update(_value_counts(priced["attribution_status"]))

    def counters_snapshot(self) -> IntakeCounters:
        with self._lock:
            return self._counters.copy()


def _retrieve_failure(task: asyncio.Future[ExportOutcome]) -> None:
    """Done-callback of a shielded export whose caller went away: log instead of
    "exception never retrieved"."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        if isinstance(exc, OtelcostError):
            log.info("an export whose caller went away was refused: %s", exc)
        else:
            log.error("an export whose caller went away failed", exc_info=exc)
