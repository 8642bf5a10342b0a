"""Reading records back from the segment files, one at a time, for ``Spool.replay()``.

``start()`` validated every record after the checkpoint; reading re-checks each header and
payload checksum, so a record that changed on disk since then is an error, never replayed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from otelcost.spool.errors import SpoolCorruptionError
from otelcost.spool.format import RECORD_HEADER, SEGMENT_HEADER, decode_record_header, payload_crc

__all__ = ["SegmentRange", "SpoolRecord", "read_records"]


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    seq: int
    payload: bytes


SegmentRange = tuple[Path, int, int]
"""A segment file and the seqs (first, last) to read from it."""


def read_records(
    plan: list[SegmentRange], checkpoint: int, checkpointed: Callable[[], int]
) -> Iterator[SpoolRecord]:
    """The records of ``plan`` after ``checkpoint``, in order.

    ``checkpointed()`` is the spool's checkpoint now: a segment that is gone was checkpointed
    and deleted while the caller was replaying, and is skipped.
    """
    for path, first_seq, last_seq in plan:
        try:
            file = path.open("rb", buffering=2**20)
        except FileNotFoundError:
            if checkpointed() >= last_seq:
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


def _changed_on_disk(path: Path, offset: int, seq: int, what: str) -> SpoolCorruptionError:
    return SpoolCorruptionError(
        f"spool record seq {seq} in {path} at byte offset {offset} changed on disk since start() validated "
        f"it ({what})",
        path=path,
        offset=offset,
        seq=seq,
    )
