"""Which spool records a Parquet file holds: the set of seqs, and its place in the footer.

Every file the live writer publishes carries, in its Parquet key-value metadata under
``otelcost.spool_seqs``, the sequence numbers of the spool records whose rows it contains, as
ranges (``"1-40,42,45-90"``). ``publish.py`` writes it, ``recovery.py`` reads it back to tell a
replay which (record, day) pairs the lake already holds.

Several writers (``otelcost serve`` processes with their own spools) can share one lake root, so
the seqs are kept per writer id (:class:`WriterSeqs`): the unnamed writer's under the old key, the
named writers' in one JSON object under ``otelcost.spool_seqs_by_writer``. A file the live writer
publishes names one writer; a file merged by compaction or reprice can name several.

A set, not just the highest seq: records are flushed in the order the event loop delivered them
after their fsyncs, a flush can publish some days and fail others, and a record refused by the
lake after its append is in no file at all, so "max seq in the file" does not tell which lower
seqs are present. Consecutive seqs collapse into one range, so the text stays short."""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "SPOOL_SEQS_KEY",
    "UNNAMED_WRITER",
    "WRITER_SEQS_KEY",
    "SeqSet",
    "WriterSeqs",
    "read_file_seqs",
    "read_file_writer_seqs",
    "with_seqs",
]

SPOOL_SEQS_KEY: Final = b"otelcost.spool_seqs"
"""The seqs of the unnamed writer (the only key before writer ids): ``"1-40,42"``."""
WRITER_SEQS_KEY: Final = b"otelcost.spool_seqs_by_writer"
"""The seqs of named writers, one JSON object: ``{"<writer id>": "1-40,42", ...}``."""
UNNAMED_WRITER: Final = ""


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


class WriterSeqs:
    """Spool seqs per writer: which records of which writer's spool a file (or a day) holds.

    Each ``otelcost serve`` that writes a lake numbers its own spool from 1, so with several
    writers on one lake root (``lake.root``) seq 17 of writer A and seq 17 of writer B are
    different records. The unnamed writer ``""`` (:data:`UNNAMED_WRITER`) is the one writer of
    a lake in its own ``<data_dir>/lake``, and the owner of every file written before writer
    ids existed. Empty sets are dropped, so two values are equal when they name the same seqs.
    """

    __slots__ = ("_by_writer",)

    def __init__(self, by_writer: Mapping[str, SeqSet] | None = None) -> None:
        self._by_writer = {w: s for w, s in sorted((by_writer or {}).items()) if s}

    @classmethod
    def single(cls, writer: str, seqs: SeqSet) -> WriterSeqs:
        return cls({writer: seqs})

    def of(self, writer: str) -> SeqSet:
        """The seqs of ``writer``'s spool (empty when it has none here)."""
        return self._by_writer.get(writer, SeqSet())

    def writers(self) -> list[str]:
        return list(self._by_writer)

    def union(self, *others: WriterSeqs) -> WriterSeqs:
        merged: dict[str, SeqSet] = dict(self._by_writer)
        for other in others:
            for writer, seqs in other._by_writer.items():
                merged[writer] = merged[writer].union(seqs) if writer in merged else seqs
        return WriterSeqs(merged)

    def __bool__(self) -> bool:
        return bool(self._by_writer)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WriterSeqs) and self._by_writer == other._by_writer

    def __hash__(self) -> int:
        return hash(tuple(self._by_writer.items()))

    def __repr__(self) -> str:
        return f"WriterSeqs({ {w: s.encode() for w, s in self._by_writer.items()}!r})"

    def metadata(self) -> dict[bytes, bytes]:
        """The footer entries: the unnamed writer under the old key (so a file of a single
        writer reads the same to an older otelcost), the named ones as one JSON object."""
        entries: dict[bytes, bytes] = {}
        named = {w: s.encode() for w, s in self._by_writer.items() if w != UNNAMED_WRITER}
        if UNNAMED_WRITER in self._by_writer:
            entries[SPOOL_SEQS_KEY] = self._by_writer[UNNAMED_WRITER].encode().encode()
        if named:
            entries[WRITER_SEQS_KEY] = json.dumps(named, sort_keys=True, separators=(",", ":")).encode()
        return entries

    @classmethod
    def from_metadata(cls, metadata: Mapping[bytes, bytes]) -> WriterSeqs:
        """The inverse of :meth:`metadata`; ValueError for a malformed entry."""
        by_writer: dict[str, SeqSet] = {}
        unnamed = metadata.get(SPOOL_SEQS_KEY)
        if unnamed:
            by_writer[UNNAMED_WRITER] = SeqSet.parse(unnamed.decode())
        named = metadata.get(WRITER_SEQS_KEY)
        if named:
            decoded = json.loads(named)
            if not isinstance(decoded, dict) or not all(
                isinstance(w, str) and w and isinstance(t, str) for w, t in decoded.items()
            ):
                raise ValueError(f"malformed {WRITER_SEQS_KEY.decode()}: {named[:80]!r}")
            by_writer.update((w, SeqSet.parse(t)) for w, t in decoded.items())
        return cls(by_writer)


def read_file_writer_seqs(path: Path) -> WriterSeqs:
    """The spool seqs of every writer recorded in one Parquet file's footer.

    Reads only the footer. A file whose footer cannot be read raises the pyarrow/OS error (a
    malformed entry: ValueError): the caller must not guess whether a replayed record is in it.
    """
    return WriterSeqs.from_metadata(pq.read_metadata(path).metadata or {})


def read_file_seqs(path: Path, writer: str = UNNAMED_WRITER) -> SeqSet:
    """The seqs of ``writer``'s spool recorded in one file's footer (empty for none)."""
    return read_file_writer_seqs(path).of(writer)


def with_seqs(table: pa.Table, seqs: WriterSeqs) -> pa.Table:
    """``table`` with ``seqs`` in its schema metadata, which pyarrow writes to the file footer."""
    if not seqs:
        return table
    metadata = dict(table.schema.metadata or {})
    metadata.update(seqs.metadata())
    return table.replace_schema_metadata(metadata)
