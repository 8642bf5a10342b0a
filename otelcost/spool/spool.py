"""The spool: a write-ahead log of priced batches, appended before the export request is acked.

::

    append(payload) ──write──▶ newest segment ──fsync (group commit)──▶ seq returned = the ack
    lake writer: "everything up to seq N is in Parquet"  ──▶ checkpoint(N): old segments deleted
    start(): validate, cut a torn tail ──▶ replay(): records after the checkpoint, in order

Sequence numbers start at 1 and increase by one per record, with no gaps, for the life of the
directory (a restart continues after the highest number on disk or in the checkpoint). A record is
acknowledged only once it and every record before it are synced, which is what lets recovery tell a
torn tail (cut it) from damage to acknowledged data (refuse to start): see ``scan.py``.

What is bounded, and by what:

* disk: ``max_size`` of un-checkpointed records (appends beyond it are refused with the retryable
  :class:`SpoolFullError`), plus at most the part of one segment that is already checkpointed;
* files: ``max_size / segment_size + 1`` segments;
* memory: no payload is kept after its write; the spool keeps 8 bytes per un-checkpointed
  record (their sizes, for exact ``size_bytes`` accounting) and one waiter per unsynced append.

Thread-safety: every method may be called from any thread. ``append`` must be awaited on a
running event loop; the record is written on that thread (a page-cache copy, tens of
microseconds for 64 KiB), and the fsync happens on the committer thread, never on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, TypeVar

from otelcost.errors import PermanentIngestError
from otelcost.fsync import fsync_path
from otelcost.spool.committer import AsyncWaiter, GroupCommitter, SpoolCounters, SyncWaiter, sync_file
from otelcost.spool.config import SpoolConfig
from otelcost.spool.durable import delete_gradually, write_checkpoint_file
from otelcost.spool.errors import SpoolCorruptionError, SpoolError, SpoolFullError, SpoolWriteError
from otelcost.spool.format import (
    CHECKPOINT_TMP_NAME,
    MAX_PAYLOAD,
    RECORD_HEADER,
    SEGMENT_HEADER,
    decode_record_header,
    encode_record_header,
    encode_segment_header,
    payload_crc,
    segment_name,
)
from otelcost.spool.lockfile import DirectoryLock
from otelcost.spool.scan import ScanResult, scan

__all__ = ["RecoveryReport", "Spool", "SpoolRecord", "SpoolStats"]

log = logging.getLogger(__name__)

FULL_RETRY_AFTER: Final = 2.0
"""Seconds a refused sender should wait: about one lake flush, after which a checkpoint frees space."""
IO_RETRY_AFTER: Final = 5.0

Payload = bytes | bytearray | memoryview
_W = TypeVar("_W", SyncWaiter, AsyncWaiter)


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    seq: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What ``start()`` found and did."""

    checkpointed_seq: int
    last_seq: int
    records_to_replay: int
    torn_bytes_dropped: int
    """Bytes of a torn tail that were cut (the unacknowledged writes of a crashed process)."""
    stale_segments_deleted: int


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """A consistent snapshot for the metrics endpoint (docs/durability.md lists the metric names)."""

    appends: int
    bytes_appended: int
    fsyncs: int
    fsync_seconds_total: float
    commits: int
    refused_full: int
    refused_io: int
    depth: int
    size_bytes: int
    segments: int
    checkpointed_seq: int
    last_seq: int


class _Segment:
    __slots__ = ("end", "first_seq", "last_seq", "path")

    def __init__(self, path: Path, first_seq: int, last_seq: int, end: int) -> None:
        self.path = path
        self.first_seq = first_seq
        self.last_seq = last_seq
        self.end = end


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
        self._dir_lock = DirectoryLock(self._directory)
        self._dir_fd: int | None = None
        self._committer: GroupCommitter | None = None
        self._segments: list[_Segment] = []
        self._active_fd: int | None = None
        self._checkpointed = 0
        self._last_seq = 0
        # _record_ends[i] = bytes of records checkpointed+1 .. checkpointed+1+i, counted from
        # _base_bytes; seqs are dense, so the seq is the index.
        self._record_ends: array[int] = array("q")
        self._base_bytes = 0
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
            created = not self._directory.exists()
            try:
                self._directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SpoolError(f"cannot create the spool directory {self._directory}: {exc}") from exc
            if created:
                fsync_path(self._directory.parent)
            self._dir_lock.acquire()
            try:
                self._dir_fd = os.open(self._directory, os.O_RDONLY)
                self._recover()
            except BaseException:
                self._release_files()
                raise
            if self._config.fsync:
                self._committer = GroupCommitter(
                    self._lock,
                    directory_fd=self._dir_fd,
                    interval=self._config.commit_interval.total_seconds(),
                    counters=self._counters,
                    on_failure=self._fail,
                    failure=lambda: self._failure,
                )
                self._committer.set_active(self._active_fd, created=False)
                self._committer.start()
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
            if self._active_fd is not None:
                try:
                    self._timed_sync(self._active_fd)
                except OSError as exc:
                    log.error("syncing the spool on shutdown failed: %s", exc)
                os.close(self._active_fd)
                self._active_fd = None
            self._release_files()
            self._state = "closed"

    def _release_files(self) -> None:
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None
        self._dir_lock.release()

    # -- recovery ------------------------------------------------------------------------------------

    def _recover(self) -> None:
        leftover = self._directory / CHECKPOINT_TMP_NAME
        leftover.unlink(missing_ok=True)  # a checkpoint write that never reached its rename
        result = scan(self._directory)
        if result.missing is not None:
            first, last = result.missing
            raise SpoolError(
                f"spool {self._directory}: records {first}..{last} are missing: the checkpoint is "
                f"{result.checkpoint} but the oldest segment starts at {last + 1} (was a segment or the "
                "checkpoint file deleted?). `otelcost spool repair` accepts the loss and starts after it"
            )
        torn_bytes = 0
        if result.damage is not None:
            damage = result.damage
            if not damage.torn_tail:
                raise SpoolCorruptionError(
                    f"spool record damaged in the middle of the log, in {damage.describe()}; "
                    f"{damage.intact_after} intact record(s) follow it, so acknowledged data may be lost. "
                    "otelcost will not start over it: keep a copy of the spool directory, then run "
                    f"`otelcost spool repair {self._directory}` to cut the log at that offset (the cut "
                    "bytes go to quarantine/)",
                    path=damage.path,
                    offset=damage.offset,
                    seq=damage.seq,
                )
            torn_bytes = self._cut_torn_tail(result)
        stale = list(result.stale)
        segments = [_Segment(s.path, s.first_seq, s.last_seq, s.end) for s in result.segments]
        # A newest segment with nothing after the checkpoint is not worth keeping: the next
        # append starts a fresh one named after its seq.
        if segments and segments[-1].last_seq <= result.checkpoint:
            stale.append(segments.pop().path)
        for path in stale:
            path.unlink(missing_ok=True)
        if stale:
            self._sync_directory()
        self._segments = segments
        self._checkpointed = result.checkpoint
        self._last_seq = result.last_seq
        total = 0
        for size in result.record_sizes:
            total += size
            self._record_ends.append(total)
        if segments:
            newest = segments[-1]
            self._active_fd = os.open(newest.path, os.O_WRONLY | os.O_APPEND)
        self._recovery = RecoveryReport(
            checkpointed_seq=self._checkpointed,
            last_seq=self._last_seq,
            records_to_replay=self._last_seq - self._checkpointed,
            torn_bytes_dropped=torn_bytes,
            stale_segments_deleted=len(stale),
        )
        log.info(
            "spool %s: checkpoint %d, last seq %d, %d record(s) to replay%s",
            self._directory,
            self._checkpointed,
            self._last_seq,
            self._recovery.records_to_replay,
            f", cut a torn tail of {torn_bytes} bytes" if torn_bytes else "",
        )

    def _cut_torn_tail(self, result: ScanResult) -> int:
        damage = result.damage
        assert damage is not None
        dropped = 0
        for later in damage.later_segments:  # they hold no intact record
            dropped += later.stat().st_size
            later.unlink()
        size = damage.path.stat().st_size
        if damage.offset < SEGMENT_HEADER.size:
            damage.path.unlink()  # not even its header was written
            dropped += size
        else:
            with damage.path.open("r+b") as file:
                file.truncate(damage.offset)
                os.fsync(file.fileno())
            dropped += size - damage.offset
        self._sync_directory()
        log.warning(
            "spool: cut a torn tail of %d bytes at %s (unacknowledged writes of a process that stopped "
            "mid-append)",
            dropped,
            damage.describe(),
        )
        return dropped

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
            raise PermanentIngestError(
                f"a batch of {length} bytes can never fit in the spool (spool.max_size is {max_size} bytes)"
            )
        crc = payload_crc(payload)
        with self._lock:
            self._check_writable()
            if self._size_bytes() + size > max_size:
                self._counters.refused_full += 1
                raise SpoolFullError(
                    f"the spool holds {self._size_bytes()} bytes not yet in the lake (spool.max_size is "
                    f"{max_size}); retry once the lake catches up",
                    retry_after=FULL_RETRY_AFTER,
                )
            seq = self._last_seq + 1
            segment, fd = self._segment_for(size, seq)
            if self._failure is not None:  # the roll's sync of the old segment failed
                self._check_writable()
            try:
                _write_all(fd, encode_record_header(seq, length, crc), payload)
            except OSError as exc:
                self._counters.refused_io += 1
                self._cut_back(segment, fd)
                raise SpoolWriteError(
                    f"writing to the spool failed ({_describe_os_error(exc)}); nothing was written",
                    retry_after=IO_RETRY_AFTER,
                ) from exc
            segment.end += size
            segment.last_seq = seq
            self._last_seq = seq
            self._record_ends.append(
                (self._record_ends[-1] if self._record_ends else self._base_bytes) + size
            )
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

    def _segment_for(self, size: int, seq: int) -> tuple[_Segment, int]:
        """The segment and descriptor to write record ``seq`` to, rolling to a new one if needed."""
        if self._segments and self._active_fd is not None:
            current = self._segments[-1]
            has_records = current.last_seq >= current.first_seq
            if not has_records or current.end + size <= self._config.segment_size:
                return current, self._active_fd
        path = self._directory / segment_name(seq)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        except OSError as exc:
            self._counters.refused_io += 1
            raise SpoolWriteError(
                f"cannot create spool segment {path} ({_describe_os_error(exc)})", retry_after=IO_RETRY_AFTER
            ) from exc
        try:
            _write_all(fd, encode_segment_header(seq), b"")
        except OSError as exc:
            self._counters.refused_io += 1
            os.close(fd)
            path.unlink(missing_ok=True)
            raise SpoolWriteError(
                f"cannot start spool segment {path} ({_describe_os_error(exc)})", retry_after=IO_RETRY_AFTER
            ) from exc
        old_fd = self._active_fd
        if old_fd is not None:
            self._retire(old_fd, sync_now=True)
        segment = _Segment(path, seq, seq - 1, SEGMENT_HEADER.size)
        self._segments.append(segment)
        self._active_fd = fd
        if self._committer is not None:
            self._committer.set_active(fd, created=True)
        return segment, fd

    def _retire(self, fd: int, *, sync_now: bool) -> None:
        """Stop appending to ``fd``. With fsync on, the committer syncs and closes it."""
        if self._active_fd == fd:
            self._active_fd = None
        if self._committer is None:
            os.close(fd)
            return
        if sync_now:
            # On a roll, the old segment is synced before the new one gets a record, so that the
            # unacknowledged records stay a suffix of the log on disk too (scan.py relies on it).
            try:
                self._timed_sync(fd)
            except OSError as exc:
                self._fail(exc)
        self._committer.retire(fd)

    def _timed_sync(self, fd: int) -> None:
        """fdatasync ``fd`` on this thread, counted (called with the lock held)."""
        started = time.perf_counter()
        try:
            sync_file(fd)
        finally:
            self._counters.fsyncs += 1
            self._counters.fsync_seconds_total += time.perf_counter() - started

    def _cut_back(self, segment: _Segment, fd: int) -> None:
        """Drop the partial record a failed write left after ``segment.end``."""
        try:
            os.ftruncate(fd, segment.end)
        except OSError as exc:
            log.error("spool: cannot cut back %s after a failed write: %s", segment.path, exc)
            self._fail(exc)

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
                if self._active_fd is not None:
                    self._retire(self._active_fd, sync_now=False)
                doomed, self._segments = self._segments, []
            self._write_checkpoint(seq)
            with self._lock:
                self._checkpointed = self._last_seq = seq
            for segment in doomed:
                try:
                    delete_gradually(segment.path)
                except OSError as exc:  # start() deletes it as stale next time
                    log.warning("spool: cannot delete checkpointed segment %s: %s", segment.path, exc)

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
                freed = seq - self._checkpointed
                self._base_bytes = self._record_ends[freed - 1]
                del self._record_ends[:freed]
                self._checkpointed = seq
                # Segments whose records are all confirmed. An empty newest segment is kept: the
                # next append goes there, and its name (the next seq) must not be deleted below.
                doomed = [s for s in self._segments if s.first_seq <= s.last_seq <= seq]
                self._segments = [s for s in self._segments if s not in doomed]
                if not self._segments and self._active_fd is not None and self._state == "running":
                    self._retire(self._active_fd, sync_now=False)  # (shutdown closes it otherwise)
            # Deleting is slow on some filesystems (durable.delete_gradually), so it happens outside
            # the lock: the names are all <= seq, below any segment an append can create from now on.
            for segment in doomed:
                try:
                    delete_gradually(segment.path)
                except OSError as exc:  # start() deletes it as stale next time
                    log.warning("spool: cannot delete checkpointed segment %s: %s", segment.path, exc)

    def _write_checkpoint(self, seq: int) -> None:
        started = time.perf_counter()
        try:
            write_checkpoint_file(self._directory, seq)
        except OSError as exc:
            raise SpoolError(f"cannot write the spool checkpoint in {self._directory}: {exc}") from exc
        with self._lock:
            self._counters.fsyncs += 2  # the file and its directory
            self._counters.fsync_seconds_total += time.perf_counter() - started

    def _sync_directory(self) -> None:
        if self._dir_fd is not None:
            os.fsync(self._dir_fd)

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
                for s in self._segments
                if s.last_seq > checkpoint
            ]
        return self._read(plan, checkpoint)

    def _read(self, plan: list[tuple[Path, int, int]], checkpoint: int) -> Iterator[SpoolRecord]:
        for path, first_seq, last_seq in plan:
            try:
                file = path.open("rb", buffering=2**20)
            except FileNotFoundError:
                if self._checkpointed >= last_seq:
                    continue  # checkpointed and deleted while we were replaying
                raise
            with file:
                file.seek(SEGMENT_HEADER.size)
                offset = SEGMENT_HEADER.size
                for seq in range(first_seq, last_seq + 1):
                    header = decode_record_header(file.read(RECORD_HEADER.size))
                    if header is None or header.seq != seq:
                        raise _changed_on_disk(path, offset, seq, "record header")
                    if seq <= checkpoint:
                        file.seek(header.length, os.SEEK_CUR)
                    else:
                        payload = file.read(header.length)
                        if len(payload) != header.length or payload_crc(payload) != header.payload_crc:
                            raise _changed_on_disk(path, offset, seq, "payload checksum")
                        yield SpoolRecord(seq, payload)
                    offset += RECORD_HEADER.size + header.length

    # -- introspection -------------------------------------------------------------------------------

    def _size_bytes(self) -> int:
        return self._record_ends[-1] - self._base_bytes if self._record_ends else 0

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
            return self._size_bytes()

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
                size_bytes=self._size_bytes(),
                segments=len(self._segments),
                checkpointed_seq=self._checkpointed,
                last_seq=self._last_seq,
            )

    def __repr__(self) -> str:
        return (
            f"Spool({str(self._directory)!r}, state={self._state}, checkpointed_seq={self._checkpointed}, "
            f"last_seq={self._last_seq})"
        )


def _write_all(fd: int, header: bytes, payload: Payload) -> None:
    """Write header and payload with as few syscalls as the kernel allows (no concatenation)."""
    pending = [memoryview(header), memoryview(payload).cast("B")]
    pending = [view for view in pending if view.nbytes]
    while pending:
        written = os.writev(fd, pending)
        if written <= 0:
            raise OSError(f"write returned {written}")
        while written and pending:
            if written >= pending[0].nbytes:
                written -= pending[0].nbytes
                pending.pop(0)
            else:
                pending[0] = pending[0][written:]
                written = 0


def _describe_os_error(exc: OSError) -> str:
    import errno  # noqa: PLC0415

    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exhausted",
        errno.EFBIG: "the file size limit is reached",
        errno.EIO: "I/O error",
    }
    reason = reasons.get(exc.errno or 0, exc.strerror or str(exc))
    return f"{reason}: {exc}"


def _changed_on_disk(path: Path, offset: int, seq: int, what: str) -> SpoolCorruptionError:
    return SpoolCorruptionError(
        f"spool record seq {seq} in {path} at byte offset {offset} changed on disk since start() validated "
        f"it ({what})",
        path=path,
        offset=offset,
        seq=seq,
    )
