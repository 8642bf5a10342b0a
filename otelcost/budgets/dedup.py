"""The dedup index: the same (trace_id, span_id) never counts twice against a budget.

Duplicates reach the evaluator when a sender retries after a lost acknowledgement, and when
the spool replays requests after a crash. Both repeat a call shortly *after it was received*,
so the index remembers calls by receive time, for ``budgeting.dedup_horizon`` (default 15 min)
of it: a duplicate that arrives within the horizon of the original is dropped. (Remembering
every call of an open window instead would mean remembering a quarter's calls for a quarterly
budget.) After a restart, the evaluator seeds the index with the lake's calls received within
the horizon before the newest one, so a spool replay of rows that had already reached the lake
is recognised too (see docs/budgets.md, "Restart").

Each call is reduced to a 64-bit key, a mix (splitmix64) of its 128-bit trace id and 64-bit span
id, parsed from hex with numpy. Two different calls share a key with probability about
``n / 2**64`` per lookup (1e-12 with 10 million keys remembered): negligible, and the failure is
an undercount of one call. Keys live in generations of ``horizon / 15`` of receive time: the
current generation is a Python set (about 70 bytes per key), older ones are sorted numpy arrays
(8 bytes per key) searched with ``searchsorted``. Generations older than the horizon are
dropped; beyond ``budgeting.dedup_max_ids`` keys the oldest generations go early
(``evicted`` counts them). Memory at 5,000 calls/s and the defaults: about 25 MB for the
current generation and 36 MB for the rest.
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = ["DedupIndex", "span_keys"]

U64 = npt.NDArray[np.uint64]

_GENERATIONS: Final = 15
_HEX_LUT: Final = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX_LUT[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX_LUT[_c] = 10 + _i
_SHIFTS: Final = np.arange(60, -4, -4, dtype=np.uint64)  # nibble i of 16 -> bit 60 - 4i
_M1: Final = np.uint64(0xBF58476D1CE4E5B9)
_M2: Final = np.uint64(0x94D049BB133111EB)


def _mix(x: U64) -> U64:
    """splitmix64's finalizer: a bijection on uint64 that spreads every input bit."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _hex_words(column: pa.ChunkedArray | pa.Array, width: int) -> list[U64] | None:
    """``width``-digit hex strings as ``width // 16`` uint64 words (most significant first).

    Vectorised over the string data buffer; None when any value is not exactly ``width`` hex
    digits (the caller then falls back to hashing the text).
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts: list[npt.NDArray[np.uint8]] = []
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        if chunk.null_count or not pa.types.is_string(chunk.type):
            return None
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32)[
            chunk.offset : chunk.offset + len(chunk) + 1
        ]
        if not np.all(np.diff(offsets) == width):
            return None
        data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
        parts.append(data.reshape(-1, width))
    if not parts:
        return [np.zeros(0, dtype=np.uint64) for _ in range(width // 16)]
    nibbles = _HEX_LUT[np.concatenate(parts)]
    if np.any(nibbles == 255):
        return None
    wide = nibbles.astype(np.uint64)
    return [
        np.bitwise_or.reduce(wide[:, i : i + 16] << _SHIFTS, axis=1).astype(np.uint64)
        for i in range(0, width, 16)
    ]


def _hashed(trace_ids: list[str | None], span_ids: list[str | None]) -> U64:
    keys = np.empty(len(trace_ids), dtype=np.uint64)
    for row, (trace, span) in enumerate(zip(trace_ids, span_ids, strict=True)):
        digest = hashlib.blake2b(f"{trace}/{span}".encode(), digest_size=8).digest()
        keys[row] = int.from_bytes(digest, "little")
    return keys


def span_keys(trace_ids: pa.ChunkedArray | pa.Array, span_ids: pa.ChunkedArray | pa.Array) -> U64:
    """One 64-bit key per call from its trace and span ids (lower- or upper-case hex)."""
    trace = _hex_words(trace_ids, 32)
    span = _hex_words(span_ids, 16)
    if trace is None or span is None:
        return _hashed(trace_ids.to_pylist(), span_ids.to_pylist())
    high, low = trace
    return _mix(_mix(_mix(span[0]) ^ low) ^ high)


class DedupIndex:
    """Keys seen within ``horizon_ns`` of receive time, bounded to ``max_ids`` keys."""

    def __init__(self, *, horizon_ns: int, max_ids: int) -> None:
        self.horizon_ns = horizon_ns
        self.max_ids = max_ids
        self.generation_ns = max(1_000_000_000, horizon_ns // _GENERATIONS)
        self._sealed: deque[tuple[int, U64]] = deque()  # (generation, sorted keys), oldest first
        self._sealed_ids = 0
        self._current: set[int] = set()
        self._current_generation: int | None = None
        self.duplicates = 0
        self.evicted = 0

    def __len__(self) -> int:
        return self._sealed_ids + len(self._current)

    def _seen(self, keys: U64) -> npt.NDArray[np.bool_]:
        seen = np.zeros(len(keys), dtype=np.bool_)
        for _, sealed in self._sealed:
            position = np.searchsorted(sealed, keys)
            inside = position < len(sealed)
            hits = np.zeros(len(keys), dtype=np.bool_)
            hits[inside] = sealed[position[inside]] == keys[inside]
            seen |= hits
        if self._current:
            current = self._current
            seen |= np.fromiter((k in current for k in keys.tolist()), dtype=np.bool_, count=len(keys))
        return seen

    def _advance(self, received_ns: int) -> None:
        generation = received_ns // self.generation_ns
        if self._current_generation is None:
            self._current_generation = generation
        elif generation > self._current_generation:
            if self._current:
                self._seal(self._current_generation, np.fromiter(self._current, dtype=np.uint64))
            self._current = set()
            self._current_generation = generation
        oldest_kept = generation - self.horizon_ns // self.generation_ns - 1
        while self._sealed and self._sealed[0][0] < oldest_kept:
            self._sealed_ids -= len(self._sealed.popleft()[1])

    def _seal(self, generation: int, keys: U64) -> None:
        self._sealed.append((generation, np.unique(keys)))
        self._sealed_ids += len(self._sealed[-1][1])
        while len(self) > self.max_ids and self._sealed:
            dropped = self._sealed.popleft()[1]
            self._sealed_ids -= len(dropped)
            self.evicted += len(dropped)

    def admit(self, keys: U64, received_ns: int) -> npt.NDArray[np.bool_]:
        """Mark rows that are new (first of their key, not seen before) and remember them.

        ``received_ns`` is the batch's receive time (its newest ``received_at``); it moves the
        generations forward, never back.
        """
        self._advance(received_ns)
        first = np.zeros(len(keys), dtype=np.bool_)
        first[np.unique(keys, return_index=True)[1]] = True
        new = first & ~self._seen(keys)
        self.duplicates += int(len(keys) - np.count_nonzero(new))
        self._current.update(keys[new].tolist())
        if len(self) > self.max_ids and self._current_generation is not None:
            self._seal(self._current_generation, np.fromiter(self._current, dtype=np.uint64))
            self._current = set()
        return new

    def seed(self, keys: U64, received_ns: int) -> None:
        """Remember ``keys`` (calls already counted some other way, e.g. rebuilt from the lake)."""
        if len(keys):
            self._advance(received_ns)
            self._seal(received_ns // self.generation_ns - 1, keys)
