"""What ``Spool.start()`` does before the first append: open, lock, validate and mend the directory.

The directory is created if missing and locked (``lockfile.py``), then validated by ``scan.py``.
Damage that may hold acknowledged records, or records missing between the checkpoint and the
oldest segment, refuse the start: a person decides (``otelcost spool repair``). A torn tail, the
unacknowledged writes of a process that stopped mid-append, is cut; segments wholly at or below
the checkpoint are deleted. What is left is handed to the spool as a :class:`RecoveredDirectory`.
"""

from __future__ import annotations

import logging
import os
from array import array
from dataclasses import dataclass
from pathlib import Path

from otelcost.fsync import fsync_path
from otelcost.spool.errors import SpoolCorruptionError, SpoolError
from otelcost.spool.format import CHECKPOINT_TMP_NAME, SEGMENT_HEADER
from otelcost.spool.lockfile import DirectoryLock
from otelcost.spool.scan import ScanResult, scan
from otelcost.spool.segments import Segment

__all__ = ["RecoveredDirectory", "RecoveryReport", "recover"]

log = logging.getLogger(__name__)


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
class RecoveredDirectory:
    """A locked, validated spool directory, ready for appends after ``last_seq``."""

    lock: DirectoryLock
    directory_fd: int
    segments: list[Segment]
    active_fd: int | None
    """Open for appending on the newest segment; None when there is none (the next append makes one)."""
    checkpoint: int
    last_seq: int
    record_sizes: array[int]
    """On-disk bytes of each record after the checkpoint, in order."""
    report: RecoveryReport

    def close(self) -> None:
        """Close the directory and drop the lock (the segment descriptors are the spool's)."""
        os.close(self.directory_fd)
        self.lock.release()


def recover(directory: Path) -> RecoveredDirectory:
    """Create and lock ``directory``, validate it, cut a torn tail and delete stale segments.

    Raises :class:`SpoolCorruptionError` when a record that may have been acknowledged is
    damaged, and :class:`SpoolError` when the directory is in use by another process, records
    are missing, or it cannot be read. Nothing stays open or locked when it raises.
    """
    created = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpoolError(f"cannot create the spool directory {directory}: {exc}") from exc
    if created:
        fsync_path(directory.parent)
    lock = DirectoryLock(directory)
    lock.acquire()
    directory_fd: int | None = None
    try:
        directory_fd = os.open(directory, os.O_RDONLY)
        return _recover(directory, lock, directory_fd)
    except BaseException:
        if directory_fd is not None:
            os.close(directory_fd)
        lock.release()
        raise


def _recover(directory: Path, lock: DirectoryLock, directory_fd: int) -> RecoveredDirectory:
    leftover = directory / CHECKPOINT_TMP_NAME
    leftover.unlink(missing_ok=True)  # a checkpoint write that never reached its rename
    result = scan(directory)
    if result.missing is not None:
        first, last = result.missing
        raise SpoolError(
            f"spool {directory}: records {first}..{last} are missing: the checkpoint is "
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
                f"`otelcost spool repair {directory}` to cut the log at that offset (the cut "
                "bytes go to quarantine/)",
                path=damage.path,
                offset=damage.offset,
                seq=damage.seq,
            )
        torn_bytes = _cut_torn_tail(result, directory_fd)
    stale = list(result.stale)
    segments = [Segment(s.path, s.first_seq, s.last_seq, s.end) for s in result.segments]
    # A newest segment with nothing after the checkpoint is not worth keeping: the next
    # append starts a fresh one named after its seq.
    if segments and segments[-1].last_seq <= result.checkpoint:
        stale.append(segments.pop().path)
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        os.fsync(directory_fd)
    active_fd = os.open(segments[-1].path, os.O_WRONLY | os.O_APPEND) if segments else None
    checkpoint, last_seq = result.checkpoint, result.last_seq
    report = RecoveryReport(
        checkpointed_seq=checkpoint,
        last_seq=last_seq,
        records_to_replay=last_seq - checkpoint,
        torn_bytes_dropped=torn_bytes,
        stale_segments_deleted=len(stale),
    )
    log.info(
        "spool %s: checkpoint %d, last seq %d, %d record(s) to replay%s",
        directory,
        checkpoint,
        last_seq,
        report.records_to_replay,
        f", cut a torn tail of {torn_bytes} bytes" if torn_bytes else "",
    )
    return RecoveredDirectory(
        lock=lock,
        directory_fd=directory_fd,
        segments=segments,
        active_fd=active_fd,
        checkpoint=checkpoint,
        last_seq=last_seq,
        record_sizes=result.record_sizes,
        report=report,
    )


def _cut_torn_tail(result: ScanResult, directory_fd: int) -> int:
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
    os.fsync(directory_fd)
    log.warning(
        "spool: cut a torn tail of %d bytes at %s (unacknowledged writes of a process that stopped "
        "mid-append)",
        dropped,
        damage.describe(),
    )
    return dropped
