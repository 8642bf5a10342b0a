"""From "these records are in the lake" to the spool checkpoint: the highest contiguous seq.

The lake writer reports spool records as durable in the order it flushes them, which is not
seq order: the event loop consumes batches in the order their fsyncs resolve, a half-failed
flush keeps part of a record for later, and a replayed record whose rows were all in the lake
already is done without a flush. The checkpoint means "every record up to N is durable
downstream", so it may only cover the contiguous prefix of durable seqs. A seq that is never
reported (its append failed after the write, or the lake had stopped) holds the checkpoint
back, which is the safe direction: its record is replayed at the next start.
"""

from __future__ import annotations

import threading

__all__ = ["CheckpointTracker"]


class CheckpointTracker:
    """The contiguous prefix of durable seqs, above a starting checkpoint. Thread-safe."""

    def __init__(self, checkpointed: int = 0) -> None:
        self._lock = threading.Lock()
        self._prefix = checkpointed
        self._done: set[int] = set()  # durable seqs above the prefix (gaps below them)

    @property
    def prefix(self) -> int:
        """Every seq up to this one is durable."""
        return self._prefix

    @property
    def waiting(self) -> int:
        """Durable seqs held back by a gap below them."""
        return len(self._done)

    def mark(self, seqs: list[int]) -> int | None:
        """Record ``seqs`` as durable; return the new prefix when it moved, else None."""
        with self._lock:
            before = self._prefix
            self._done.update(seq for seq in seqs if seq > before)
            prefix = before
            while prefix + 1 in self._done:
                prefix += 1
                self._done.discard(prefix)
            self._prefix = prefix
            return prefix if prefix != before else None
