"""The segment files of a running spool: which records each holds, and the one appends go to.

A segment is named after the seq of its first record (``format.py``) and the newest one takes
the appends until it passes ``segment_size``; then the log rolls to a new one. Descriptors that
the committer may sync are handed to it to close (``committer.py`` says why); with fsync off
they are closed at once. Every method of :class:`SegmentLog` is called with the spool's lock held.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from otelcost.spool.committer import GroupCommitter, sync_file
from otelcost.spool.durable import delete_gradually
from otelcost.spool.errors import IO_RETRY_AFTER, SpoolWriteError
from otelcost.spool.format import SEGMENT_HEADER, encode_segment_header, segment_name
from otelcost.spool.stats import SpoolCounters

__all__ = ["Payload", "Segment", "SegmentLog", "delete_segments", "describe_os_error", "write_all"]

log = logging.getLogger(__name__)

Payload = bytes | bytearray | memoryview


class Segment:
    __slots__ = ("end", "first_seq", "last_seq", "path")

    def __init__(self, path: Path, first_seq: int, last_seq: int, end: int) -> None:
        self.path = path
        self.first_seq = first_seq
        self.last_seq = last_seq
        """``first_seq - 1`` while the segment holds no record."""
        self.end = end
        """Offset just past the last complete record: where the next one goes."""


class SegmentLog:
    """The live segments, oldest first, and the descriptor of the newest one (``active_fd``)."""

    def __init__(
        self,
        directory: Path,
        *,
        segment_size: int,
        counters: SpoolCounters,
        on_failure: Callable[[Exception], None],
    ) -> None:
        self._directory = directory
        self._segment_size = segment_size
        self._counters = counters
        self._on_failure = on_failure
        self._committer: GroupCommitter | None = None
        self.segments: list[Segment] = []
        self.active_fd: int | None = None

    def open(self, segments: list[Segment], active_fd: int | None, committer: GroupCommitter | None) -> None:
        """Take over what recovery left: ``active_fd`` is open on the newest of ``segments``."""
        self.segments = segments
        self.active_fd = active_fd
        self._committer = committer

    def for_record(self, size: int, seq: int) -> tuple[Segment, int]:
        """The segment and descriptor to write record ``seq`` to, rolling to a new one if needed."""
        if self.segments and self.active_fd is not None:
            current = self.segments[-1]
            has_records = current.last_seq >= current.first_seq
            if not has_records or current.end + size <= self._segment_size:
                return current, self.active_fd
        path = self._directory / segment_name(seq)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        except OSError as exc:
            self._counters.refused_io += 1
            raise SpoolWriteError(
                f"cannot create spool segment {path} ({describe_os_error(exc)})", retry_after=IO_RETRY_AFTER
            ) from exc
        try:
            write_all(fd, encode_segment_header(seq), b"")
        except OSError as exc:
            self._counters.refused_io += 1
            os.close(fd)
            path.unlink(missing_ok=True)
            raise SpoolWriteError(
                f"cannot start spool segment {path} ({describe_os_error(exc)})", retry_after=IO_RETRY_AFTER
            ) from exc
        old_fd = self.active_fd
        if old_fd is not None:
            self.retire(old_fd, sync_now=True)
        segment = Segment(path, seq, seq - 1, SEGMENT_HEADER.size)
        self.segments.append(segment)
        self.active_fd = fd
        if self._committer is not None:
            self._committer.set_active(fd, created=True)
        return segment, fd

    def retire(self, fd: int, *, sync_now: bool) -> None:
        """Stop appending to ``fd``. With fsync on, the committer syncs and closes it."""
        if self.active_fd == fd:
            self.active_fd = None
        if self._committer is None:
            os.close(fd)
            return
        if sync_now:
            # On a roll, the old segment is synced before the new one gets a record, so that the
            # unacknowledged records stay a suffix of the log on disk too (scan.py relies on it).
            try:
                self.sync(fd)
            except OSError as exc:
                self._on_failure(exc)
        self._committer.retire(fd)

    def sync(self, fd: int) -> None:
        """fdatasync ``fd`` on this thread, counted."""
        started = time.perf_counter()
        try:
            sync_file(fd)
        finally:
            self._counters.fsyncs += 1
            self._counters.fsync_seconds_total += time.perf_counter() - started

    def cut_back(self, segment: Segment, fd: int) -> None:
        """Drop the partial record a failed write left after ``segment.end``."""
        try:
            os.ftruncate(fd, segment.end)
        except OSError as exc:
            log.error("spool: cannot cut back %s after a failed write: %s", segment.path, exc)
            self._on_failure(exc)

    def take_checkpointed(self, seq: int) -> list[Segment]:
        """Remove and return the segments whose records are all at or below ``seq``.

        An empty newest segment is kept: the next append goes there, and its name (the next seq)
        must not be deleted by the caller.
        """
        doomed = [s for s in self.segments if s.first_seq <= s.last_seq <= seq]
        self.segments = [s for s in self.segments if s not in doomed]
        return doomed

    def take_all(self) -> list[Segment]:
        """Remove and return every segment; the next record opens a segment named after its own seq."""
        if self.active_fd is not None:
            self.retire(self.active_fd, sync_now=False)
        doomed, self.segments = self.segments, []
        return doomed

    def close(self) -> None:
        """Sync and close the newest segment (on shutdown, once the committer has stopped)."""
        if self.active_fd is None:
            return
        try:
            self.sync(self.active_fd)
        except OSError as exc:
            log.error("syncing the spool on shutdown failed: %s", exc)
        os.close(self.active_fd)
        self.active_fd = None


def delete_segments(doomed: list[Segment]) -> None:
    """Delete checkpointed segments, slowly (``durable.delete_gradually``): call without the lock."""
    for segment in doomed:
        try:
            delete_gradually(segment.path)
        except OSError as exc:  # start() deletes it as stale next time
            log.warning("spool: cannot delete checkpointed segment %s: %s", segment.path, exc)


def write_all(fd: int, header: bytes, payload: Payload) -> None:
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


_OS_ERROR_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EFBIG: "the file size limit is reached",
    errno.EIO: "I/O error",
}


def describe_os_error(exc: OSError) -> str:
    reason = _OS_ERROR_REASONS.get(exc.errno or 0, exc.strerror or str(exc))
    return f"{reason}: {exc}"
