"""The data path: the only module that knows every stage and wires them together.

::

    receiver (gRPC, HTTP) --ExportTraceServiceRequest--> Pipeline.export
        -> Preparer.prepare       normalize, price (prepare.py; a receiver worker runs this in
                                  its own process and sends the result to Pipeline.commit)
        -> Pipeline.commit        the one way a batch becomes durable:
           Settler.settle         spans repeating a provider call already seen are marked as
                                  folded, late attribution becomes before/after change rows
                                  (otelcost/settle): the lake stores them apart, in
                                  duplicate_spans and attribution_changes; the evaluator
                                  skips folded spans and moves spend by the changes
           sink.reserve(rows)     every sink, in order; the lake writer may refuse (retryable)
           Spool.append           Arrow IPC bytes, fsynced (group commit): the ack's guarantee
           sink.append(batch,seq) every sink, in order: LakeWriter (Parquet), then the budget
                                  Evaluator (decisions), through stages.DurableSink
    lake flush --on_seqs_durable--> CheckpointTracker --contiguous prefix--> Spool.checkpoint

Data flows one way. Stages never call each other; each is handed its input here. Every sink is
a ``stages.DurableSink`` and is driven the same way, on a live commit and on the replay: the lake
writer is one natively, the evaluator (and any ``extra_sinks``) through ``stages.DerivedSink``,
since it rebuilds its state from the lake at start. A refusal must come before the spool append:
a batch that is in the spool is replayed after a crash whatever the sender does, so if a sink
refused it after the append, the sender's retry would put it in the lake a second time. So every
sink reserves room first (refusing there leaves nothing anywhere), then the batch is appended to
the spool, then every sink takes it (taking its reservation: it cannot refuse, short of having
stopped). The budget evaluator de-duplicates by (trace_id, span_id), so a retried request never
counts twice there either. With the spool off, the same path runs without the append.

Replay (``start``): the sinks start in order (the lake recovers, then the evaluator rebuilds its
open windows from it), then every spool record after the checkpoint is read back and each sink
appends the rows it does not hold (``DurableSink.unrecorded``: for the lake, the (record, day)
pairs no file's footer names, ``lake/recovery.py``; the evaluator lacks what the lake lacks).
A record no sink lacks is durable already. The sinks are flushed as they fill and at the end,
the spool is checkpointed, and the spool's numbering is moved past every seq the lake names.
Only then do the receivers accept (``server.py``). docs/durability.md, "Pipeline", states the
guarantees.

The work of one request runs on the caller's event loop (the receivers'): normalizing and pricing
are vectorised and take well under a millisecond per hundred spans, and doing them inline means a
request is acknowledged only once its rows are in the spool and the lake writer's buffer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelcost.budgets import Evaluator
from otelcost.budgets.sink import SharedBudgetSink
from otelcost.config import Config
from otelcost.counters import IntakeCounters, ReplayCounters
from otelcost.errors import LakeError, OtelcostError, TransientIngestError
from otelcost.lake.recovery import highest_recorded_seq
from otelcost.lake.writer import LakeWriter
from otelcost.lake.writers import lake_writer_id, stored_writer_id
from otelcost.prepare import BatchSummary, Preparer, decode_batch, encode_batch
from otelcost.receiver.intake import ExportOutcome
from otelcost.schema import without_folded
from otelcost.settle import Settled, Settler
from otelcost.spool import Spool
from otelcost.spool.tracker import CheckpointTracker
from otelcost.stages import DerivedSink, DurableSink, Sink

__all__ = ["Pipeline"]

log = logging.getLogger(__name__)


class Pipeline:
    """Normalizer -> pricer -> spool -> sinks. Implements the receivers' ``Intake`` protocol.

    ``sinks`` are the lake writer, the budget evaluator, then ``extra_sinks``, each a
    ``DurableSink``; ``extra_sinks`` get what the evaluator gets (``DerivedSink`` of the lake).
    """

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
            writer_id=lake_writer_id(
                config.data_dir, root=config.lake.root, configured=config.lake.writer_id
            ),
        )
        shared = config.budgeting.shared
        self.evaluator = Evaluator.from_sections(
            budgets=config.budgets,
            settings=config.budgeting,
            data_dir=config.data_dir,
            lake_dir=config.lake_dir,
            clock_ns=clock_ns,
            # A shared store tells this process's replays from the others' by this id.
            writer=(config.lake.writer_id or stored_writer_id(config.data_dir)) if shared else None,
        )
        self.settler = Settler(config.settle, clock_ns=clock_ns)
        budget_sink: DurableSink = (
            SharedBudgetSink(self.evaluator, rows=without_folded)
            if shared
            else DerivedSink(self.evaluator, source=self.lake, rows=without_folded)
        )
        self.sinks: tuple[DurableSink, ...] = (
            self.lake,
            budget_sink,
            *(DerivedSink(sink, source=self.lake, rows=without_folded) for sink in extra_sinks),
        )
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

    def _checkpoint(self, spool: Spool, seq: int) -> None:
        # A shared budget store holds back records it has not added to Redis yet (budgets/sink.py).
        hold = self.evaluator.spool_hold()
        if hold is not None:
            seq = min(seq, hold)
        # checkpoint() ignores a seq at or below the current one, so racing callers (the flush
        # thread, the end of the replay, shutdown) cannot move it backwards.
        if seq > spool.checkpointed_seq:
            spool.checkpoint(seq)
            self.evaluator.checkpointed(seq)

    def _replay(self, spool: Spool) -> None:
        """Append every spool record after the checkpoint to the sinks that lack its rows.

        Runs before the receivers accept, on the starting thread. The sinks are flushed whenever
        one is ``flush_due`` (the lake: ``lake.max_buffer_rows`` rows), and once at the end, so
        the replay is durable (and checkpointed) before new data arrives; a failed flush keeps
        the rows for the sink's next attempt, as on the live path.
        """
        if spool.depth == 0:
            return
        started = time.monotonic()
        counters = ReplayCounters()
        for record in spool.replay():
            batch = decode_batch(record.payload, seq=record.seq)
            # Every sink is asked before this record is appended anywhere again.
            parts = [sink.unrecorded(batch, seq=record.seq) for sink in self.sinks]
            rows = max(part.num_rows for part in parts)
            counters.rows_in_lake += batch.num_rows - rows
            if rows == 0:
                # No sink will report this seq durable: it already is (the others derive from the lake).
                counters.records_in_lake += 1
                self._tracker.mark([record.seq])
                continue
            with self._lock:
                for sink, part in zip(self.sinks, parts, strict=True):
                    if part.num_rows:
                        sink.append(part, seq=record.seq)
            if parts[0].num_rows == 0:
                # The lake holds all of it (a shared budget store lacked it): the lake will not
                # report this seq durable again, so it is marked here.
                self._tracker.mark([record.seq])
            counters.records += 1
            counters.rows += rows
            if any(sink.flush_due for sink in self.sinks):
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

    def _flush_replayed(self) -> None:
        for sink in self.sinks:
            try:
                sink.flush()
            except LakeError as exc:
                log.error("flush during the spool replay failed, rows kept for the next attempt: %s", exc)

    def _continue_numbering(self, spool: Spool) -> None:
        """Never hand out a seq the lake already names (``Spool.skip_to`` says when it would)."""
        started = time.monotonic()
        highest = highest_recorded_seq(self.config.lake_dir, writer=self.lake.writer_id)
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

    # -- data path ---------------------------------------------------------------------------

    async def export(self, request: ExportTraceServiceRequest) -> ExportOutcome:
        return await self.commit(*self.preparer.prepare(request))

    async def commit(
        self, summary: BatchSummary, priced: pa.Table, *, encoded: pa.Buffer | bytes | None = None
    ) -> ExportOutcome:
        """The durable half of ``export``: reserve in every sink, spool, append to every sink,
        count. A batch without rows only counts.

        For a batch normalized and priced elsewhere (a receiver worker process,
        ``otelcost/workers``), ``encoded`` is the batch as ``prepare.encode_batch`` made it
        there: those bytes become the spool record as they are.
        """
        # Each call is settled here, in the serve process, whichever process prepared it
        # (otelcost/settle): spans of one provider call folded, late attribution turned into
        # changes. The spool then holds the batch as it is stored and counted.
        settled = self.settler.settle(priced)
        if settled.table is not priced:
            encoded = None
        rows = settled.table.num_rows
        if rows == 0:
            return self._deliver(summary, settled, None)
        try:
            self._reserve(rows)
        except BaseException:
            self.settler.withdraw(settled)
            raise
        if self.spool is None:
            return self._deliver(summary, settled, None)
        # Once appended, the batch must reach the sinks even if the request is cancelled (client
        # gone, receiver stopping): an appended seq the lake never sees would hold the
        # checkpoint back for good. So the append and the hand-over run as one shielded task.
        payload = encoded if encoded is not None else encode_batch(settled.table)
        task = asyncio.ensure_future(self._spool_and_deliver(self.spool, summary, settled, payload))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_retrieve_failure)
            raise

    async def _spool_and_deliver(
        self, spool: Spool, summary: BatchSummary, settled: Settled, payload: pa.Buffer | bytes
    ) -> ExportOutcome:
        try:
            seq = await spool.append(payload)
        except BaseException as exc:
            self.settler.withdraw(settled)
            self._release(self.sinks, settled.table.num_rows, refused=isinstance(exc, TransientIngestError))
            raise
        return self._deliver(summary, settled, seq)

    def _reserve(self, rows: int) -> None:
        for index, sink in enumerate(self.sinks):
            try:
                sink.reserve(rows)
            except TransientIngestError:
                self._release(self.sinks[:index], rows, refused=True)
                raise

    def _release(self, sinks: tuple[DurableSink, ...], rows: int, *, refused: bool) -> None:
        """Give back reservations; ``refused``: count the request as refused (retryable: a full
        sink or spool, or a disk that refused)."""
        for sink in sinks:
            sink.release(rows)
        if refused:
            with self._lock:
                self._counters.refused_requests += 1

    def _deliver(self, summary: BatchSummary, settled: Settled, seq: int | None) -> ExportOutcome:
        """Append the (reserved) batch of spool record ``seq`` to every sink and count it."""
        priced = settled.table
        with self._lock:
            rows = priced.num_rows
            if rows:
                for index, sink in enumerate(self.sinks):
                    try:
                        sink.append(priced, seq=seq)
                    except Exception:
                        # Refused only by a sink that has stopped; the record stays in the spool,
                        # un-checkpointed, and is replayed at the next start.
                        for later in self.sinks[index + 1 :]:
                            later.release(rows)
                        self._counters.refused_requests += 1
                        raise
            self._counters.add(summary, priced)
        self.settler.committed(settled)
        return summary.outcome()

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
