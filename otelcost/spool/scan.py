"""Read a spool directory without changing it: checkpoint, segments, and the first damaged byte.

:func:`scan` is what ``Spool.start()`` runs before it touches anything, and what ``otelcost spool
info`` and ``otelcost spool repair`` show. It checks every record the lake has not yet confirmed
(header checksum, sequence number, payload checksum) and only the headers of records it has.

When a record fails, the question is whether it can be an acknowledged record. An append is
acknowledged only after an fsync that covers it *and every record before it*, so the unacknowledged
records are always a suffix of the log. Damage with nothing valid after it is therefore a torn
tail: the last writes of a process that died (or of a machine that lost power) before they were
synced, which recovery may cut. Damage followed by any intact record lies inside the synced
prefix, so it may hold acknowledged spans: recovery refuses to start and names the file and the
offset. Finding "anything valid after" must not trust the damaged length field, so it looks for
intact record headers at every byte offset after the damage (vectorised with numpy; this runs
only on the damage path).
"""

from __future__ import annotations

import os
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from otelcost.spool.errors import SpoolError
from otelcost.spool.format import (
    CHECKPOINT_NAME,
    RECORD_HEADER,
    SEGMENT_HEADER,
    decode_checkpoint,
    decode_record_header,
    decode_segment_header,
    parse_segment_name,
    payload_crc,
)

__all__ = ["Damage", "ScanResult", "ScannedSegment", "read_checkpoint", "scan"]


@dataclass(frozen=True, slots=True)
class ScannedSegment:
    path: Path
    first_seq: int
    last_seq: int
    """``first_seq - 1`` when the segment holds no record yet."""
    end: int
    """Offset just past the last intact record: where the next append goes."""
    file_size: int


@dataclass(frozen=True, slots=True)
class Damage:
    """The first byte of the log that is not an intact record in sequence."""

    path: Path
    offset: int
    seq: int
    """The sequence number the record at ``offset`` should carry."""
    reason: str
    intact_after: int
    """Intact records found after the damage (in this and later segments): 0 means a torn tail."""
    later_segments: tuple[Path, ...]
    """Segment files after the damaged one."""

    @property
    def torn_tail(self) -> bool:
        return self.intact_after == 0

    def describe(self) -> str:
        return f"{self.path} at byte offset {self.offset} (record seq {self.seq}): {self.reason}"


@dataclass(slots=True)
class ScanResult:
    directory: Path
    checkpoint: int
    segments: list[ScannedSegment] = field(default_factory=list)
    """Segments that hold records after the checkpoint (and the newest one), in log order."""
    stale: list[Path] = field(default_factory=list)
    """Segments whose records are all at or below the checkpoint: left over, safe to delete."""
    record_sizes: array[int] = field(default_factory=lambda: array("q"))
    """On-disk bytes (header + payload) of each record after the checkpoint, in order."""
    damage: Damage | None = None
    missing: tuple[int, int] | None = None
    """Records (first, last) between the checkpoint and the oldest segment that no file holds."""

    @property
    def last_seq(self) -> int:
        """The highest sequence number in use: of the last intact record, or the checkpoint."""
        last = self.segments[-1].last_seq if self.segments else 0
        return max(last, self.checkpoint)


def read_checkpoint(directory: Path) -> int:
    """The checkpointed sequence number, 0 when there is no checkpoint file yet."""
    path = directory / CHECKPOINT_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise SpoolError(f"cannot read the spool checkpoint {path}: {exc.strerror}") from exc
    seq = decode_checkpoint(data)
    if seq is None:
        raise SpoolError(
            f"the spool checkpoint {path} is damaged ({len(data)} bytes, bad magic or checksum); "
            "`otelcost spool repair` resets it to the oldest record, which replays (never loses) data"
        )
    return seq


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """Segment files by first sequence number; other files in the directory are left alone."""
    found = []
    for entry in os.scandir(directory):
        first_seq = parse_segment_name(entry.name)
        if first_seq is not None and entry.is_file():
            found.append((first_seq, Path(entry.path)))
    return sorted(found)


def scan(directory: Path, *, checkpoint: int | None = None) -> ScanResult:
    """Validate the spool in ``directory``; stop at the first damaged byte and describe it.

    Raises :class:`SpoolError` only when a file cannot be read at all; damage and missing records
    are described in the result, for the caller to refuse (``Spool.start``) or cut (``repair``).
    """
    if checkpoint is None:
        checkpoint = read_checkpoint(directory)
    result = ScanResult(directory=directory, checkpoint=checkpoint)
    files = list_segments(directory)
    # A segment is stale when the next one starts at or below checkpoint + 1: then every record
    # in it is at or below the checkpoint, and its content no longer matters.
    first_live = 0
    while first_live + 1 < len(files) and files[first_live + 1][0] <= checkpoint + 1:
        first_live += 1
    result.stale = [path for _, path in files[:first_live]]
    live = files[first_live:]
    if live and live[0][0] > checkpoint + 1:
        result.missing = (checkpoint + 1, live[0][0] - 1)
    expected = live[0][0] if live else checkpoint + 1
    buffer = bytearray()
    for index, (first_seq, path) in enumerate(live):
        later = tuple(p for _, p in live[index + 1 :])
        if first_seq != expected:
            reason = f"records {expected}..{first_seq - 1} are missing (was a segment file deleted?)"
            intact = sum(_count_intact_records(p, 0, expected) for p in (path, *later))
            result.damage = Damage(path, 0, expected, reason, intact, later)
            break
        segment, damage = _scan_segment(path, first_seq, checkpoint, result.record_sizes, buffer)
        if segment is not None:
            result.segments.append(segment)
            expected = segment.last_seq + 1
        if damage is not None:
            offset, seq, reason = damage
            intact = _count_intact_records(path, offset, seq) + sum(
                _count_intact_records(p, 0, seq) for p in later
            )
            result.damage = Damage(path, offset, seq, reason, intact, later)
            break
    # Segments wholly at or below the checkpoint are stale, except the newest one when it is the
    # only place the next append could go (it is then reused or replaced by the spool).
    while len(result.segments) > 1 and result.segments[0].last_seq <= checkpoint:
        result.stale.append(result.segments.pop(0).path)
    return result


def _scan_segment(
    path: Path, first_seq: int, checkpoint: int, record_sizes: array[int], buffer: bytearray
) -> tuple[ScannedSegment | None, tuple[int, int, str] | None]:
    """Walk one segment; return what is intact and, if any, (offset, seq, reason) of the damage."""
    try:
        file = path.open("rb")
    except OSError as exc:
        raise SpoolError(f"cannot open spool segment {path}: {exc.strerror}") from exc
    with file:
        file_size = os.fstat(file.fileno()).st_size
        header_seq = decode_segment_header(file.read(SEGMENT_HEADER.size))
        if header_seq is None:
            return None, (0, first_seq, "missing or invalid segment header")
        if header_seq != first_seq:
            return None, (0, first_seq, f"segment header says it starts at seq {header_seq}")
        offset = SEGMENT_HEADER.size
        seq = first_seq
        damage = None
        while offset < file_size:
            header = decode_record_header(file.read(RECORD_HEADER.size))
            if header is None:
                incomplete = file_size - offset < RECORD_HEADER.size
                damage = (offset, seq, "incomplete record header" if incomplete else "record header checksum")
                break
            if header.seq != seq:
                damage = (offset, seq, f"record carries seq {header.seq}")
                break
            end = offset + RECORD_HEADER.size + header.length
            if end > file_size:
                damage = (offset, seq, f"record of {header.length} bytes runs past the end of the file")
                break
            if seq > checkpoint:
                if len(buffer) < header.length:
                    buffer.extend(bytes(header.length - len(buffer)))
                with memoryview(buffer) as whole, whole[: header.length] as view:
                    intact = file.readinto(view) == header.length and payload_crc(view) == header.payload_crc
                if not intact:
                    damage = (offset, seq, "payload checksum")
                    break
                record_sizes.append(RECORD_HEADER.size + header.length)
            else:
                file.seek(header.length, os.SEEK_CUR)
            offset = end
            seq += 1
    return ScannedSegment(path, first_seq, seq - 1, offset, file_size), damage


def _count_intact_records(path: Path, start: int, min_seq: int) -> int:
    """How many intact record headers with a plausible seq lie in ``path`` from ``start`` on.

    A header is plausible when its seq is positive and at most ``min_seq`` plus one per 20 bytes
    of file, and its header checksum and payload checksum hold (any such record counts, even one
    out of sequence: it is data that must not be cut silently). Every byte offset is tried: the
    length field that would tell where the next record starts is exactly what may be damaged.
    """
    data = path.read_bytes()
    if len(data) <= start:
        return 0
    max_seq = min_seq + len(data) // RECORD_HEADER.size + 1
    found = 0
    for alignment in range(8):
        first = start + alignment
        count = (len(data) - first) // 8
        if count <= 0:
            continue
        seqs = np.frombuffer(data, dtype="<u8", count=count, offset=first)
        for position in np.flatnonzero((seqs >= 1) & (seqs <= max_seq)).tolist():
            offset = first + 8 * position
            if offset == start and start > 0:
                continue  # the damaged record itself
            header = decode_record_header(data, offset)
            if header is None:
                continue
            payload_start = offset + RECORD_HEADER.size
            payload = memoryview(data)[payload_start : payload_start + header.length]
            if len(payload) == header.length and payload_crc(payload) == header.payload_crc:
                found += 1
    return found
