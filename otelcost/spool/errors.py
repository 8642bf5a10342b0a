"""The spool's exceptions, placed in the otelcost tree (``otelcost/errors.py``)::

    TransientIngestError
    ├── SpoolFullError        max_size of un-checkpointed records reached: retry once the lake catches up
    └── SpoolWriteError       the disk refused a write (full, quota, I/O error): retry, maybe elsewhere
    OtelcostError
    └── SpoolError            the spool directory cannot be opened (locked, unreadable, bad checkpoint)
        └── SpoolCorruptionError   a record that may have been acknowledged fails its checksum

The first two are refusals *before* the acknowledgement, so the receivers answer them as retryable
(gRPC UNAVAILABLE / HTTP 503 with ``retry_after``). The last two stop ``Spool.start()``: starting
anyway could drop acknowledged data, so a person decides (``otelcost spool repair``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from otelcost.errors import OtelcostError, TransientIngestError

__all__ = [
    "FULL_RETRY_AFTER",
    "IO_RETRY_AFTER",
    "SpoolCorruptionError",
    "SpoolError",
    "SpoolFullError",
    "SpoolWriteError",
]

FULL_RETRY_AFTER: Final = 2.0
"""Seconds a refused sender should wait: about one lake flush, after which a checkpoint frees space."""
IO_RETRY_AFTER: Final = 5.0


class SpoolFullError(TransientIngestError):
    """The spool holds ``max_size`` bytes that the lake has not yet confirmed; nothing was written."""


class SpoolWriteError(TransientIngestError):
    """Writing or syncing a record failed; the segment was cut back to its last complete record."""


class SpoolError(OtelcostError):
    """The spool directory cannot be used; the message says which file and why."""


class SpoolCorruptionError(SpoolError):
    """A record in the middle of the log fails its checksum, so it may be acknowledged data.

    ``path`` and ``offset`` locate the first bad byte; ``seq`` is the sequence number the record at
    that offset should have carried.
    """

    def __init__(self, message: str, *, path: Path, offset: int, seq: int) -> None:
        super().__init__(message)
        self.path = path
        self.offset = offset
        self.seq = seq
