"""The spool's on-disk format: segment files of checksummed records, and a checkpoint file.

A spool directory holds::

    00000000000000000001.seg    records 1 .. n   (named by the sequence number of its first record)
    00000000000000004711.seg    records 4711 ..  (the newest segment is the one being appended to)
    checkpoint                  the highest sequence number the lake has confirmed
    lock                        flock()ed by the process that owns the spool
    quarantine/                 bytes cut out by ``otelcost spool repair`` (never deleted by otelcost)

Every integer is little-endian. A segment starts with a 24-byte header::

    magic     8 bytes   b"OTCSPOOL"
    version   uint32    1
    first_seq uint64    must match the file name
    crc       uint32    CRC-32 of the 20 bytes before it

followed by records, each a 20-byte header and the payload::

    seq          uint64   1, 2, 3 ... with no gaps, across segments and restarts
    length       uint32   payload bytes
    payload_crc  uint32   CRC-32 of the payload
    header_crc   uint32   CRC-32 of the 16 header bytes before it
    payload      length bytes (Arrow IPC stream bytes, opaque to the spool)

The header has its own checksum so that a flipped bit in ``length`` cannot pass for a torn tail:
recovery trusts a length only when its header checks out. CRC-32 is zlib's (IEEE 802.3
polynomial, in the standard library, about 1.5 GB/s here); CRC-32C would need a third-party
package for the same guarantee against torn writes and random corruption. The version field
leaves room to change either.

The checkpoint file is 20 bytes, ``b"OTCSPCKP"``, the uint64 sequence number and a CRC-32 of the
16 bytes before it. It is replaced atomically (write a temporary file, fsync, rename, fsync the
directory), so it is always either the old or the new checkpoint.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from typing import Final

__all__ = [
    "CHECKPOINT_NAME",
    "CHECKPOINT_SIZE",
    "CHECKPOINT_TMP_NAME",
    "LOCK_NAME",
    "MAX_PAYLOAD",
    "QUARANTINE_DIR",
    "RECORD_HEADER",
    "SEGMENT_HEADER",
    "RecordHeader",
    "decode_checkpoint",
    "decode_record_header",
    "decode_segment_header",
    "encode_checkpoint",
    "encode_record_header",
    "encode_segment_header",
    "parse_segment_name",
    "payload_crc",
    "segment_name",
    "seq_bytes",
]

SEGMENT_MAGIC: Final = b"OTCSPOOL"
CHECKPOINT_MAGIC: Final = b"OTCSPCKP"
FORMAT_VERSION: Final = 1

SEGMENT_HEADER: Final = struct.Struct("<8sIQI")
RECORD_HEADER: Final = struct.Struct("<QIII")
_CHECKPOINT: Final = struct.Struct("<8sQI")
CHECKPOINT_SIZE: Final = _CHECKPOINT.size

MAX_PAYLOAD: Final = 2**32 - 1
"""``length`` is a uint32."""

CHECKPOINT_NAME: Final = "checkpoint"
CHECKPOINT_TMP_NAME: Final = "checkpoint.tmp"
LOCK_NAME: Final = "lock"
QUARANTINE_DIR: Final = "quarantine"

_SEGMENT_NAME_RE: Final = re.compile(r"^(\d{20})\.seg$")
_SEQ_BYTES: Final = struct.Struct("<Q")


def segment_name(first_seq: int) -> str:
    """``00000000000000000042.seg``: zero-padded so that names sort in log order."""
    return f"{first_seq:020d}.seg"


def parse_segment_name(name: str) -> int | None:
    """The first sequence number a segment file name declares, or None for any other file."""
    match = _SEGMENT_NAME_RE.match(name)
    return int(match[1]) if match else None


def _crc(data: bytes | bytearray | memoryview) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def payload_crc(payload: bytes | bytearray | memoryview) -> int:
    return _crc(payload)


def encode_segment_header(first_seq: int) -> bytes:
    body = SEGMENT_HEADER.pack(SEGMENT_MAGIC, FORMAT_VERSION, first_seq, 0)[:-4]
    return body + struct.pack("<I", _crc(body))


def decode_segment_header(data: bytes) -> int | None:
    """The header's first_seq, or None when the bytes are not a valid version-1 segment header."""
    if len(data) < SEGMENT_HEADER.size:
        return None
    magic, version, first_seq, crc = SEGMENT_HEADER.unpack_from(data)
    if magic != SEGMENT_MAGIC or version != FORMAT_VERSION or crc != _crc(data[: SEGMENT_HEADER.size - 4]):
        return None
    return int(first_seq)


@dataclass(frozen=True, slots=True)
class RecordHeader:
    seq: int
    length: int
    payload_crc: int


def encode_record_header(seq: int, length: int, crc_of_payload: int) -> bytes:
    body = struct.pack("<QII", seq, length, crc_of_payload)
    return body + struct.pack("<I", _crc(body))


def decode_record_header(data: bytes | memoryview, offset: int = 0) -> RecordHeader | None:
    """The header at ``offset``, or None when fewer than 20 bytes remain or its checksum fails."""
    if len(data) - offset < RECORD_HEADER.size:
        return None
    seq, length, crc_of_payload, header_crc = RECORD_HEADER.unpack_from(data, offset)
    if header_crc != _crc(data[offset : offset + RECORD_HEADER.size - 4]):
        return None
    return RecordHeader(seq, length, crc_of_payload)


def seq_bytes(seq: int) -> bytes:
    """How ``seq`` appears at the start of its record header (for scanning past damage)."""
    return _SEQ_BYTES.pack(seq)


def encode_checkpoint(seq: int) -> bytes:
    body = _CHECKPOINT.pack(CHECKPOINT_MAGIC, seq, 0)[:-4]
    return body + struct.pack("<I", _crc(body))


def decode_checkpoint(data: bytes) -> int | None:
    """The checkpointed sequence number, or None when the bytes are not a valid checkpoint."""
    if len(data) != CHECKPOINT_SIZE:
        return None
    magic, seq, crc = _CHECKPOINT.unpack(data)
    if magic != CHECKPOINT_MAGIC or crc != _crc(data[:-4]):
        return None
    return int(seq)
