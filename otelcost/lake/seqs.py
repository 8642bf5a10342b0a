"""Which spool records a Parquet file holds: the set of seqs, and its place in the footer.

Every file the live writer publishes carries, in its Parquet key-value metadata under
``otelcost.spool_seqs``, the sequence numbers of the spool records whose rows it contains, as
ranges (``"1-40,42,45-90"``). ``publish.py`` writes it, ``recovery.py`` reads it back to tell a
replay which (record, day) pairs the lake already holds.

A set, not just the highest seq: records are flushed in the order the event loop delivered them
after their fsyncs, a flush can publish some days and fail others, and a record refused by the
lake after its append is in no file at all, so "max seq in the file" does not tell which lower
seqs are present. Consecutive seqs collapse into one range, so the text stays short."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["SPOOL_SEQS_KEY", "SeqSet", "read_file_seqs"]

SPOOL_SEQS_KEY: Final = b"otelcost.spool_seqs"


class SeqSet:
    """An immutable set of positive integers kept as sorted, disjoint, non-adjacent ranges."""

    __slots__ = ("_highs", "_lows")

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        merged: list[tuple[int, int]] = []
        for low, high in sorted(ranges):
            if low > high:
                raise ValueError(f"empty range {low}-{high}")
            if merged and low <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], high))
            else:
                merged.append((low, high))
        self._lows = [low for low, _ in merged]
        self._highs = [high for _, high in merged]

    @classmethod
    def of(cls, seqs: Iterable[int]) -> SeqSet:
        return cls((seq, seq) for seq in seqs)

    @classmethod
    def parse(cls, text: str) -> SeqSet:
        """The inverse of :meth:`encode`; ValueError for anything else."""
        ranges = []
        for part in filter(None, text.split(",")):
            low, _, high = part.partition("-")
            ranges.append((int(low), int(high or low)))
        return cls(ranges)

    def encode(self) -> str:
        return ",".join(
            str(low) if low == high else f"{low}-{high}"
            for low, high in zip(self._lows, self._highs, strict=True)
        )

    def union(self, *others: SeqSet) -> SeqSet:
        return SeqSet(r for s in (self, *others) for r in s.ranges())

    def ranges(self) -> Iterator[tuple[int, int]]:
        return zip(self._lows, self._highs, strict=True)

    def __contains__(self, seq: object) -> bool:
        if not isinstance(seq, int):
            return False
        index = bisect.bisect_right(self._lows, seq) - 1
        return index >= 0 and seq <= self._highs[index]

    def __bool__(self) -> bool:
        return bool(self._lows)

    def __len__(self) -> int:
        return sum(high - low + 1 for low, high in self.ranges())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SeqSet) and list(self.ranges()) == list(other.ranges())

    def __hash__(self) -> int:
        return hash(tuple(self.ranges()))

    def __repr__(self) -> str:
        return f"SeqSet({self.encode()!r})"

    @property
    def max(self) -> int | None:
        return self._highs[-1] if self._highs else None


def metadata_of(seqs: SeqSet) -> Mapping[bytes, bytes]:
    """The key-value metadata to write into a file holding ``seqs`` (none when empty)."""
    return {SPOOL_SEQS_KEY: seqs.encode().encode()} if seqs else {}


def read_file_seqs(path: Path) -> SeqSet:
    """The spool seqs recorded in one Parquet file's footer (empty for files without them).

    Reads only the footer. A file whose footer cannot be read raises the pyarrow/OS error: the
    caller must not guess whether a replayed record is in it.
    """
    metadata = pq.read_metadata(path).metadata or {}
    text = metadata.get(SPOOL_SEQS_KEY)
    return SeqSet.parse(text.decode()) if text else SeqSet()


def with_seqs(table: pa.Table, seqs: SeqSet) -> pa.Table:
    """``table`` with ``seqs`` in its schema metadata, which pyarrow writes to the file footer."""
    if not seqs:
        return table
    metadata = dict(table.schema.metadata or {})
    metadata.update(metadata_of(seqs))
    return table.replace_schema_metadata(metadata)
