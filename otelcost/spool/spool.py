"""The spool: a write-ahead log of priced batches, appended before the export request is acked.

::

    append(payload) ──write──▶ newest segment ──fsync (group commit)──▶ seq returned = the ack
    lake writer: "everything up to seq N is in Parquet"  ──▶ checkpoint(N): old segments deleted
    start(): validate, cut a torn tail ──▶ replay(): records after the checkpoint, in order

Sequence numbers start at 1 and increase by one per record, with no gaps, for the life of the
directory (a restart continues after the highest number on disk or in the checkpoint). A record is
acknowledged only once it and every record before it are synced, which is what lets recovery tell a
torn tail (cut it) from damage to acknowledged data (refuse to start): see ``scan.py``.

:class:`Spool` owns the lifecycle, the locks and the order of things; the jobs are in
``recovery.py`` (what ``start()`` does to the directory), ``segments.py`` (the segment files and
rolling), ``committer.py`` (group commit), ``limits.py`` (what is bounded, and by what),
``replay.py`` (reading records back) and ``stats.py`` (the counters).

Thread-safety: every method may be called from any thread. ``append`` must be awaited on a
running event loop; the record is written on that thread (a page-cache copy, tens of
microseconds for 64 KiB), and the fsync happens on the committer thread, never on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, TypeVar

from otelcost.spool.committer import AsyncWaiter, GroupCommitter, SyncWaiter
from otelcost.spool.config import SpoolConfig
from otelcost.spool.durable import write_checkpoint_file
from otelcost.spool.errors import IO_RETRY_AFTER, SpoolError, SpoolWriteError
from otelcost.spool.format import MAX_PAYLOAD, RECORD_HEADER, encode_record_header, payload_crc
from otelcost.spool.limits import PendingRecords, never_fits
from otelcost.spool.recovery import RecoveredDirectory, RecoveryReport, recover
from otelcost.spool.replay import SpoolRecord, read_records
from otelcost.spool.segments import Payload, SegmentLog, delete_segments, describe_os_error, write_all
from otelcost.spool.stats import SpoolCounters, SpoolStats

__all__ = ["Spool"]

log = logging.getLogger(__name__)

_W = TypeVar("_W", SyncWaiter, AsyncWaiter)


class Spool:
    """A durable, replayable log of opaque payloads in ``directory`` (created if missing)."""

    def __init__(self, directory: Path, *, config: SpoolConfig) -> None:
        self._directory = Path(directory)
        self._config = config
        self._lock = threading.Lock()
        self._checkpoint_lock = threading.Lock()
        self._state: Literal["new", "running", "closing", "closed"] = "new"
        self._failure: Exception | None = None
        self._counters = SpoolCounters()
        self._opened: RecoveredDirectory | None = None
        self._committer: GroupCommitter | None = None
        self._files = SegmentLog(
            self._directory,
            segment_size=config.segment_size,
            counters=self._counters,
            on_failure=self._fail,
        )
        self._checkpointed = 0
        self._last_seq = 0
        self._pending = PendingRecords()
        self._recovery: RecoveryReport | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the directory, validate it, cut a torn tail, and start the committer thread.

        Raises :class:`SpoolCorruptionError` when a record that may have been acknowledged is
        damaged (``otelcost spool repair`` decides what to keep), and :class:`SpoolError` when
        the directory is in use by another process or cannot be read.
        """
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"Spool.start() called on a spool that is {self._state}")
            opened = recover(self._directory)
            self._opened = opened
            self._checkpointed = opened.checkpoint
            self._last_seq = opened.last_seq
            self._pending = PendingRecords(opened.record_sizes)
            self._recovery = opened.report
            if self._config.fsync:
                self._committer = GroupCommitter(
                    self._lock,
                    directory_fd=opened.directory_fd,
                    interval=self._config.commit_interval.total_seconds(),
                    counters=self._counters,
                    on_failure=self._fail,
                    failure=lambda: self._failure,
                )
                self._committer.set_active(opened.active_fd, created=False)
                self._committer.start()
            self._files.open(opened.segments, opened.active_fd, self._committer)
            self._state = "running"

    def shutdown(self) -> None:
        """Sync and close. Idempotent and safe before ``start()``; appends after it are refused."""
        with self._lock:
            if self._state in ("closing", "closed"):
                return
            if self._state == "new":
                self._state = "closed"
                return
            self._state = "closing"
        if self._committer is not None:
            self._committer.stop()
        with self._lock:
            self._files.close()
            if self._opened is not None:
                self._opened.close()
                self._opened = None
            self._state = "closed"

    # -- appending -----------------------------------------------------------------------------------

    async def append(self, payload: Payload) -> int:
        """Append one record; return its sequence number once it is durable.

        Raises :class:`SpoolFullError` (retryable) when ``max_size`` would be exceeded,
        :class:`SpoolWriteError` (retryable) when the disk refuses the write or the sync, and
        ``PermanentIngestError`` for a payload that could never fit.
        """
        loop = asyncio.get_running_loop()
        seq, waiter = self._append(payload, lambda seq: AsyncWaiter(loop, loop.create_future(), seq))
        if waiter is None:
            return seq
        return await waiter.future

    def append_sync(self, payload: Payload) -> int:
        """``append`` for callers without an event loop: blocks until the record is durable."""
        seq, waiter = self._append(payload, SyncWaiter)
        return seq if waiter is None else waiter.wait()

    def _append(self, payload: Payload, make_waiter: Callable[[int], _W]) -> tuple[int, _W | None]:
        length = len(payload) if not isinstance(payload, memoryview) else payload.nbytes
        size = RECORD_HEADER.size + length
        max_size = self._config.max_size
        if length > MAX_PAYLOAD or size > max_size:
            raise never_fits(length, max_size)
        crc = payload_crc(payload)
        with self._lock:
            self._check_writable()
            if self._pending.total() + size > max_size:
                self._counters.refused_full += 1
                raise self._pending.full(max_size)
            seq = self._last_seq + 1
            segment, fd = self._files.for_record(size, seq)
            if self._failure is not None:  # the roll's sync of the old segment failed
                self._check_writable()
            try:
                write_all(fd, encode_record_header(seq, length, crc), payload)
            except OSError as exc:
                self._counters.refused_io += 1
                self._files.cut_back(segment, fd)
                raise SpoolWriteError(
                    f"writing to the spool failed ({describe_os_error(exc)}); nothing was written",
                    retry_after=IO_RETRY_AFTER,
                ) from exc
            segment.end += size
            segment.last_seq = seq
            self._last_seq = seq
            self._pending.add(size)
            self._counters.appends += 1
            self._counters.bytes_appended += length
            if self._committer is None:
                return seq, None
            waiter = make_waiter(seq)
            self._committer.submit(waiter)
            return seq, waiter

    def _check_writable(self) -> None:
        if self._state == "new":
            raise RuntimeError("Spool.append() before start()")
        if self._state != "running":
            self._counters.refused_io += 1
            raise SpoolWriteError("the spool is shut down", retry_after=IO_RETRY_AFTER)
        if self._failure is not None:
            self._counters.refused_io += 1
            raise SpoolWriteError(
                f"the spool stopped taking appends after an I/O error ({self._failure}); restart otelcost "
                "to recover",
                retry_after=IO_RETRY_AFTER,
            ) from self._failure

    def _fail(self, error: Exception) -> None:
        """Refuse appends from now on (called with the lock held).

        After a failed fsync the kernel may have dropped the dirty pages and a later fsync can
        report success for data that never reached the disk, so appending on would risk acking
        records that are not durable. A restart re-validates the log from disk.
        """
        if self._failure is None:
            log.error("spool: refusing appends after an I/O error: %s", error)
            self._failure = error

    # -- checkpoint and replay ---------------------------------------------------------------------

    def skip_to(self, seq: int) -> None:
        """Number the next record ``seq + 1``: seqs up to ``seq`` belong to records that are gone.

        Downstream may name seqs forever (the lake's footers do, ``otelcost/lake/seqs.py``), so
        a seq must never be handed out twice. It would be after ``otelcost spool repair`` (the
        cut records' seqs), after a power loss with ``fsync: false`` (an erased tail), or with a
        new spool directory. The caller passes the highest seq downstream knows. Only with
        nothing to replay (everything checkpointed); a ``seq`` not ahead of ``last_seq`` is
        ignored. Writes the checkpoint, so the numbering survives a restart.
        """
        with self._checkpoint_lock:
            with self._lock:
                if self._state != "running":
                    raise RuntimeError(f"Spool.skip_to() on a spool that is {self._state}")
                if seq <= self._last_seq:
                    return
                if self._last_seq != self._checkpointed:
                    raise RuntimeError("Spool.skip_to() with records still to replay")
                # The next record opens a segment named after its own seq.
                doomed = self._files.take_all()
            self._write_checkpoint(seq)
            with self._lock:
                self._checkpointed = self._last_seq = seq
            delete_segments(doomed)

    def checkpoint(self, seq: int) -> None:
        """Record that everything up to ``seq`` is durable downstream, and delete what that frees.

        Never goes backwards: a ``seq`` at or below the current checkpoint is ignored. The
        checkpoint file is replaced atomically and synced (even with ``fsync: false``) before any
        segment is deleted. Raises ``ValueError`` for a seq that was never appended and
        :class:`SpoolError` when the checkpoint cannot be written (the old one stays valid).

        It blocks its caller for two fsyncs and the deletions, holding the append lock only for
        bookkeeping: call it from a worker thread (the lake writer's), not from the event loop.
        """
        with self._checkpoint_lock:
            with self._lock:
                if self._state != "running":
                    raise RuntimeError(f"Spool.checkpoint() on a spool that is {self._state}")
                if seq <= self._checkpointed:
                    return
                if seq > self._last_seq:
                    raise ValueError(
                        f"cannot checkpoint seq {seq}: the last appended record is {self._last_seq}"
                    )
            self._write_checkpoint(seq)
            with self._lock:
                self._pending.release(seq - self._checkpointed)
                self._checkpointed = seq
                files = self._files
                doomed = files.take_checkpointed(seq)
                if not files.segments and files.active_fd is not None and self._state == "running":
                    files.retire(files.active_fd, sync_now=False)  # (shutdown closes it otherwise)
            # Deleting is slow on some filesystems (durable.delete_gradually), so it happens outside
            # the lock: the names are all <= seq, below any segment an append can create from now on.
            delete_segments(doomed)

    def _write_checkpoint(self, seq: int) -> None:
        started = time.perf_counter()
        try:
            write_checkpoint_file(self._directory, seq)
        except OSError as exc:
            raise SpoolError(f"cannot write the spool checkpoint in {self._directory}: {exc}") from exc
        with self._lock:
            self._counters.fsyncs += 2  # the file and its directory
            self._counters.fsync_seconds_total += time.perf_counter() - started

    def replay(self) -> Iterator[SpoolRecord]:
        """The records after the checkpoint, oldest first, read from disk one at a time.

        Call after ``start()`` and before new appends; records appended after this call are not
        included. Raises :class:`SpoolCorruptionError` if a record changed on disk since
        ``start()`` validated it.
        """
        with self._lock:
            if self._state != "running":
                raise RuntimeError(f"Spool.replay() on a spool that is {self._state}")
            checkpoint, last = self._checkpointed, self._last_seq
            plan = [
                (s.path, s.first_seq, min(s.last_seq, last))
                for s in self._files.segments
                if s.last_seq > checkpoint
            ]
        return read_records(plan, checkpoint, lambda: self._checkpointed)

    # -- introspection -------------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def checkpointed_seq(self) -> int:
        return self._checkpointed

    @property
    def last_seq(self) -> int:
        """The seq of the newest record written (it may still be waiting for its fsync)."""
        return self._last_seq

    @property
    def depth(self) -> int:
        """Records after the checkpoint."""
        return self._last_seq - self._checkpointed

    @property
    def size_bytes(self) -> int:
        """On-disk bytes (headers included) of the records after the checkpoint."""
        with self._lock:
            return self._pending.total()

    @property
    def recovery(self) -> RecoveryReport | None:
        """What ``start()`` found; None before it."""
        return self._recovery

    @property
    def appends(self) -> int:
        return self._counters.appends

    @property
    def bytes_appended(self) -> int:
        """Payload bytes appended (headers not included)."""
        return self._counters.bytes_appended

    @property
    def fsyncs(self) -> int:
        """fsync/fdatasync calls of every kind: group commits, rolls, directory, checkpoint."""
        return self._counters.fsyncs

    @property
    def fsync_seconds_total(self) -> float:
        return self._counters.fsync_seconds_total

    @property
    def commits(self) -> int:
        """Group commits that resolved at least one append."""
        return self._counters.commits

    @property
    def refused_full(self) -> int:
        return self._counters.refused_full

    @property
    def refused_io(self) -> int:
        return self._counters.refused_io

    def stats(self) -> SpoolStats:
        with self._lock:
            c = self._counters
            return SpoolStats(
                appends=c.appends,
                bytes_appended=c.bytes_appended,
                fsyncs=c.fsyncs,
                fsync_seconds_total=c.fsync_seconds_total,
                commits=c.commits,
                refused_full=c.refused_full,
                refused_io=c.refused_io,
                depth=self._last_seq - self._checkpointed,
                size_bytes=self._pending.total(),
                segments=len(self._files.segments),
                checkpointed_seq=self._checkpointed,
                last_seq=self._last_seq,
            )

    def __repr__(self) -> str:
        return (
            f"Spool({str(self._directory)!r}, state={self._state}, checkpointed_seq={self._checkpointed}, "
            f"last_seq={self._last_seq})"
        )
