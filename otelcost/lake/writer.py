"""The lake writer: a sink that buffers priced calls in memory and writes them as Parquet files.

Rows folded into another call (``duplicate_of_span_id`` set, ``otelcost/settle``) are written to
the ``duplicate_spans`` table in the same flush, all or nothing with the calls.

``consume(batch)`` and ``append(batch, seq=)`` only add the batch to an in-memory buffer (no I/O
on the caller's thread); a background thread flushes the buffer every ``lake.flush_interval``, or
sooner when it holds ``lake.max_buffer_rows`` rows. A flush writes one file per UTC day present
in the buffer (:func:`otelcost.lake.publish.write_files`: temp name, fsync, rename, fsync the
directory), while holding the lake lock shared.

Backpressure: the buffer is bounded at ``4 x max_buffer_rows`` rows (counting rows being
written). A batch that would exceed it is refused with ``TransientIngestError`` *before* it is
taken, so the receiver answers "retry later" (gRPC UNAVAILABLE / HTTP 503) and nothing is
half-applied; this happens when the disk is slower than the traffic, or failing.

A failed write (disk full, permissions) loses nothing: the rows go back to the front of the
buffer, ``flush_errors`` counts it, and the next interval tries again. While another job holds
the lake lock exclusively (``otelcost reprice``, the swap of a compaction), the flush thread
waits for it in steps of one flush interval, so that a stop is never held up by it for longer;
the final flush of :meth:`LakeWriter.shutdown` waits at most ``shutdown_lock_timeout`` seconds.
Rows are written in the order they were consumed, and a flush is all or nothing, so
``on_flushed(files, rows)`` means exactly "the oldest ``rows`` rows not reported before are now
durable".

Spool records: the writer is the pipeline's :class:`~otelcost.stages.DurableSink`. A batch
appended with ``seq=N`` (or consumed with ``spool_seq=N``) holds the rows of spool record N. Each
file records the seqs of the rows it holds (``lake/seqs.py``), and after every successful flush
``on_seqs_durable(seqs)`` names the records whose rows are now *all* in Parquet (a half-failed
flush can leave part of a record for the next one); the pipeline turns that into the spool
checkpoint. A spooled batch must never be refused after its append: the sender would retry a
batch that the spool replays anyway, and the lake would get it twice. So the pipeline first
:meth:`LakeWriter.reserve` s room in the buffer (which may refuse), then appends to the spool,
then :meth:`LakeWriter.append` s, which takes the reservation instead of checking the bound.
After a restart, :meth:`LakeWriter.unrecorded` tells the replay which rows of a record the
lake's files do not hold yet (``lake/recovery.py``). The seqs are kept under the writer's id
(``writer_id``, ``lake/writers.py``), so several writers can share one lake root.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

import pyarrow as pa

from otelcost.errors import LakeError, LakeLockTimeoutError, TransientIngestError
from otelcost.histogram import DurationHistogram
from otelcost.lake.config import LakeConfig
from otelcost.lake.layout import conform, days_of, split_by_day, split_by_table, table_dir
from otelcost.lake.locking import lake_lock
from otelcost.lake.publish import PartialWriteError
from otelcost.lake.recovery import recover
from otelcost.lake.s3 import S3Lake
from otelcost.lake.seqs import SeqSet
from otelcost.lake.target import publish, replay_filter
from otelcost.lake.writers import writer_id_of

__all__ = ["BUFFER_BOUND_FACTOR", "LakeWriter"]

log = logging.getLogger(__name__)

BUFFER_BOUND_FACTOR: Final = 4
"""The buffer refuses batches beyond this many times ``lake.max_buffer_rows`` rows."""

FlushedCallback = Callable[[list[Path], int], None]
SeqsDurableCallback = Callable[[list[int]], None]


@dataclass(frozen=True, slots=True)
class _Entry:
    """A consumed batch and the spool record its rows came from (None: not spooled)."""

    table: pa.Table
    seq: int | None


def _seqs_by_day(entries: list[_Entry]) -> dict[date, SeqSet]:
    days: dict[date, set[int]] = {}
    for entry in entries:
        if entry.seq is not None:
            for day in days_of(entry.table):
                days.setdefault(day, set()).add(entry.seq)
    return {day: SeqSet.of(seqs) for day, seqs in days.items()}


class LakeWriter:
    """Sink of RECORD_SCHEMA batches into ``<lake_dir>/llm_calls/date=YYYY-MM-DD/*.parquet``.

    A ``stages.Sink`` (:meth:`consume`) and a ``stages.DurableSink`` (:meth:`reserve`,
    :meth:`release`, :meth:`append`, :meth:`flush_due`, :meth:`flush`, :meth:`unrecorded`).

    Counters (plain attributes, read by ``otelcost/metrics.py``): ``rows_written``,
    ``files_written``, ``flushes`` (flushes that wrote rows), ``flush_errors``,
    ``last_flush_seconds``, ``refused_batches``; :attr:`buffered_rows` is a gauge;
    ``flush_durations`` is the distribution of successful flushes' durations.
    """

    def __init__(
        self,
        *,
        lake_dir: Path | S3Lake,
        config: LakeConfig,
        on_flushed: FlushedCallback | None = None,
        on_seqs_durable: SeqsDurableCallback | None = None,
        shutdown_lock_timeout: float = 30.0,
        writer_id: str | None = None,
    ) -> None:
        self.lake_dir = lake_dir if isinstance(lake_dir, S3Lake) else Path(lake_dir)
        self.writer_id = writer_id_of(config, writer_id)
        self._shutdown_lock_timeout = shutdown_lock_timeout
        self.config = config
        self._on_flushed = on_flushed
        self._on_seqs_durable = on_seqs_durable
        self._interval = config.flush_interval.total_seconds()
        self._hard_limit = BUFFER_BOUND_FACTOR * config.max_buffer_rows

        self._lock = threading.Lock()  # guards the buffer and the counters below
        self._buffer: list[_Entry] = []
        self._buffer_rows = 0
        self._inflight_rows = 0
        self._reserved_rows = 0  # room promised to spooled batches not yet consumed
        self._flush_lock = threading.Lock()  # one flush at a time
        self._wake = threading.Event()
        self._stopping = False
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._replay_filter = replay_filter(self.lake_dir, writer=self.writer_id)

        self.rows_written = 0
        self.files_written = 0
        self.flushes = 0
        self.flush_errors = 0
        self.last_flush_seconds = 0.0
        self.flush_durations = DurationHistogram()
        self.refused_batches = 0

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Create the lake directory, repair what a crash left behind, start the flush thread."""
        if self._thread is not None:
            return
        lake = self.lake_dir
        try:
            if not isinstance(lake, S3Lake):  # on S3 nothing is left half-done to repair
                table_dir(lake).mkdir(parents=True, exist_ok=True)
                with lake_lock(lake, timeout=max(30.0, 3 * self._interval)):
                    for action in recover(lake):
                        log.warning("lake recovery: %s", action)
        except OSError as exc:
            raise LakeError(f"cannot prepare the lake in {lake}: {exc.strerror or exc}") from exc
        self._replay_filter = replay_filter(self.lake_dir, writer=self.writer_id)
        self._stopping = self._stopped = False
        self._thread = threading.Thread(target=self._run, name="otelcost-lake-writer", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        """Stop the flush thread and write what is buffered. Idempotent; safe before start().

        Raises LakeError when the final write fails, or when another job holds the lake lock
        for more than ``shutdown_lock_timeout`` seconds: the rows are still buffered (a later
        call tries again), but they are lost if the process exits now, unless a spool holds them.
        """
        thread = self._thread
        if thread is not None:
            self._stopping = True
            self._wake.set()
            thread.join()
            self._thread = None
            self._stopped = True
        try:
            self.flush(lock_timeout=self._shutdown_lock_timeout)
        except LakeError as exc:
            raise type(exc)(f"{exc}; {self.buffered_rows} buffered row(s) are not in the lake") from exc

    # -- data path ----------------------------------------------------------------------------

    @property
    def buffered_rows(self) -> int:
        """Rows taken but not yet durable (in the buffer or being written)."""
        with self._lock:
            return self._buffer_rows + self._inflight_rows

    def _check_room(self, rows: int) -> None:
        """Refuse ``rows`` more when stopped or beyond the bound (called with the lock held)."""
        if self._stopped:
            self.refused_batches += 1
            raise TransientIngestError("the lake writer has stopped", retry_after=self._interval)
        pending = self._buffer_rows + self._inflight_rows + self._reserved_rows
        if pending and pending + rows > self._hard_limit:
            self.refused_batches += 1
            raise TransientIngestError(
                f"the lake writer's buffer is full ({pending} rows waiting to be written)",
                retry_after=self._interval,
            )

    def reserve(self, rows: int) -> None:
        """Promise room for ``rows`` rows to a batch that is about to be spooled.

        Raises TransientIngestError exactly when :meth:`consume` would refuse the batch. Every
        reservation ends in :meth:`append` or :meth:`release`.
        """
        with self._lock:
            self._check_room(rows)
            self._reserved_rows += rows

    def release(self, rows: int) -> None:
        """Give back a reservation whose batch will not come (its spool append failed)."""
        with self._lock:
            self._reserved_rows = max(0, self._reserved_rows - rows)

    def consume(self, batch: pa.Table, *, spool_seq: int | None = None) -> None:
        """Take a RECORD_SCHEMA batch into the buffer; never waits for I/O.

        ``spool_seq`` is the spool record the batch came from. Raises TransientIngestError when
        the buffer is full or the writer has stopped (the sender should retry after
        ``retry_after`` seconds), LakeError when the batch does not have the record schema.
        """
        batch = conform(batch)
        rows = batch.num_rows
        if rows == 0:
            return
        with self._lock:
            self._check_room(rows)
            self._buffer.append(_Entry(batch, spool_seq))
            self._buffer_rows += rows
            full = self._buffer_rows >= self.config.max_buffer_rows
        if full:
            self._wake.set()

    def append(self, batch: pa.Table, *, seq: int | None) -> None:
        """Take the rows of spool record ``seq`` whatever the bound; never waits for I/O.

        The batch was :meth:`reserve` d before its spool append (its reservation is taken here)
        or is a replayed record, which was accepted before the restart and is taken before
        anything is reserved (the replay flushes as it goes). Refused (TransientIngestError) only
        when the writer has stopped; LakeError when the batch does not have the record schema.
        """
        rows = batch.num_rows
        try:
            batch = conform(batch)
        except LakeError:
            self.release(rows)
            raise
        if rows == 0:
            return
        with self._lock:
            self._reserved_rows = max(0, self._reserved_rows - rows)
            if self._stopped:
                self.refused_batches += 1
                raise TransientIngestError("the lake writer has stopped", retry_after=self._interval)
            self._buffer.append(_Entry(batch, seq))
            self._buffer_rows += rows
            full = self._buffer_rows >= self.config.max_buffer_rows
        if full:
            self._wake.set()

    @property
    def flush_due(self) -> bool:
        """The buffer holds ``lake.max_buffer_rows`` rows or more (rows being written included)."""
        return self.buffered_rows >= self.config.max_buffer_rows

    def unrecorded(self, batch: pa.Table, *, seq: int) -> pa.Table:
        """The rows of replayed spool record ``seq`` on the days whose files do not name it
        (``lake/recovery.py``); asked once per record, after :meth:`start`."""
        return self._replay_filter.unrecorded(batch, seq=seq)

    def flush(self, *, lock_timeout: float | None = None) -> int:
        """Write everything buffered now; return the number of rows written.

        On failure the rows stay buffered (ahead of newer ones) and LakeError is raised;
        ``LakeLockTimeoutError`` when the lake lock was not free within ``lock_timeout`` seconds
        (None: wait as long as it takes), which is not counted as a flush error.
        """
        with self._flush_lock:
            with self._lock:
                entries, rows = self._buffer, self._buffer_rows
                self._buffer, self._buffer_rows, self._inflight_rows = [], 0, rows
            if rows == 0:
                return 0
            started = time.perf_counter()
            try:
                paths = publish(
                    self.lake_dir,
                    pa.concat_tables([entry.table for entry in entries]),
                    compression=self.config.compression,
                    row_group_size=self.config.row_group_size,
                    spool_seqs=_seqs_by_day(entries),
                    writer=self.writer_id,
                    lock_timeout=lock_timeout,
                )
            except PartialWriteError as exc:
                kept = self._keep_unpublished(entries, exc)
                self._report_seqs(entries, kept)
                raise
            except LakeLockTimeoutError:
                self._requeue(entries, rows, failed=False)
                raise
            except Exception as exc:  # whatever went wrong, the rows must not be lost
                self._requeue(entries, rows)
                if isinstance(exc, LakeError):
                    raise
                raise LakeError(f"cannot write to the lake in {self.lake_dir}: {exc}") from exc
            with self._lock:
                self._inflight_rows = 0
                self.rows_written += rows
                self.files_written += len(paths)
                self.flushes += 1
                self.last_flush_seconds = time.perf_counter() - started
            self.flush_durations.observe(self.last_flush_seconds)
            if self._on_flushed is not None:
                try:
                    self._on_flushed(paths, rows)
                except Exception:  # the rows are durable whatever the hook does; never write them twice
                    log.exception("the on_flushed hook of the lake writer failed")
            self._report_seqs(entries, [])
            return rows

    def _report_seqs(self, flushed: list[_Entry], kept: list[_Entry]) -> None:
        """Tell ``on_seqs_durable`` which spool records of ``flushed`` are now wholly in Parquet.

        Called with the flush lock held, so reports arrive in flush order.
        """
        if self._on_seqs_durable is None:
            return
        pending = {entry.seq for entry in kept}
        durable = sorted({e.seq for e in flushed if e.seq is not None and e.seq not in pending})
        if not durable:
            return
        try:
            self._on_seqs_durable(durable)
        except Exception:  # as for on_flushed: the rows are durable, never write them twice
            log.exception("the on_seqs_durable hook of the lake writer failed")

    def _requeue(self, entries: list[_Entry], rows: int, *, failed: bool = True) -> None:
        with self._lock:
            self._buffer = entries + self._buffer
            self._buffer_rows += rows
            self._inflight_rows = 0
            self.flush_errors += failed

    def _keep_unpublished(self, entries: list[_Entry], exc: PartialWriteError) -> list[_Entry]:
        """Keep only the rows of the (table, day) parts that did not reach the lake (see
        PartialWriteError).

        Split entry by entry, so that each kept part still names its spool record.
        """
        remaining = [
            _Entry(part, entry.seq)
            for entry in entries
            for name, rows in split_by_table(entry.table)
            for day, part in split_by_day(rows)
            if (name, day) not in exc.published_parts
        ]
        kept = sum(entry.table.num_rows for entry in remaining)
        with self._lock:
            self._buffer = remaining + self._buffer
            self._buffer_rows += kept
            self._inflight_rows = 0
            self.flush_errors += 1
        log.error("lake write half-failed: %s; %d row(s) kept for the next flush", exc, kept)
        return remaining

    # -- the flush thread --------------------------------------------------------------------------

    def _run(self) -> None:
        due = time.monotonic() + self._interval
        retry_not_before = 0.0
        waiting_for_lock = False
        while not self._stopping:
            self._wake.wait(max(0.0, due - time.monotonic()))
            self._wake.clear()
            if self._stopping:
                break
            now = time.monotonic()
            if now < due and (now < retry_not_before or not self.flush_due):
                continue  # woken early, but not (or not yet again) worth a flush
            try:
                # Bounded, so that a stop is seen within an interval while a reprice holds the lock.
                self.flush(lock_timeout=self._interval)
            except LakeLockTimeoutError:
                if not waiting_for_lock:
                    log.info("the lake lock is held by another job (reprice, compaction): flushes wait")
                waiting_for_lock = True
                due = time.monotonic()  # try again at once: this was the wait
                continue
            except LakeError as exc:
                log.error("lake flush failed, rows kept for the next attempt: %s", exc)
                retry_not_before = time.monotonic() + self._interval
            waiting_for_lock = False
            due = time.monotonic() + self._interval
