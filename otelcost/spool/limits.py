"""What the spool bounds, and by what.

* disk: ``max_size`` of un-checkpointed records (appends beyond it are refused with the retryable
  :class:`SpoolFullError`), plus at most the part of one segment that is already checkpointed;
* files: ``max_size / segment_size + 1`` segments;
* memory: no payload is kept after its write; the spool keeps 8 bytes per un-checkpointed
  record (:class:`PendingRecords`, for exact ``size_bytes`` accounting) and one waiter per
  unsynced append (``committer.py``).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

from otelcost.errors import PermanentIngestError
from otelcost.spool.errors import FULL_RETRY_AFTER, SpoolFullError

__all__ = ["PendingRecords", "never_fits"]


class PendingRecords:
    """The on-disk sizes of the records after the checkpoint. Called with the spool's lock held."""

    __slots__ = ("_base", "_ends")

    def __init__(self, sizes: Iterable[int] = ()) -> None:
        # _ends[i] = bytes of records checkpointed+1 .. checkpointed+1+i, counted from _base;
        # seqs are dense, so the seq is the index.
        self._ends: array[int] = array("q")
        self._base = 0
        total = 0
        for size in sizes:
            total += size
            self._ends.append(total)

    def total(self) -> int:
        """Bytes (headers included) of the records after the checkpoint."""
        return self._ends[-1] - self._base if self._ends else 0

    def add(self, size: int) -> None:
        """A record of ``size`` bytes was appended."""
        self._ends.append((self._ends[-1] if self._ends else self._base) + size)

    def release(self, count: int) -> None:
        """The oldest ``count`` records were checkpointed."""
        self._base = self._ends[count - 1]
        del self._ends[:count]

    def full(self, max_size: int) -> SpoolFullError:
        """The refusal of an append that would take the spool past ``max_size``."""
        return SpoolFullError(
            f"the spool holds {self.total()} bytes not yet in the lake (spool.max_size is "
            f"{max_size}); retry once the lake catches up",
            retry_after=FULL_RETRY_AFTER,
        )


def never_fits(length: int, max_size: int) -> PermanentIngestError:
    """The refusal of a payload larger than the spool could ever hold."""
    return PermanentIngestError(
        f"a batch of {length} bytes can never fit in the spool (spool.max_size is {max_size} bytes)"
    )
