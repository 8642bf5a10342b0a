"""What one batch changes in the budget totals, as many processes exchange it (``shared.py``).

Pure functions, no I/O: a :class:`Delta` is one instance's change in one window period; a
budget *shape* says which totals are interchangeable (``Rule.same_totals``); a batch's *content
id* recognizes a retried request whichever process it reaches; a snapshot's *label* makes equal
totals publish an equal ETag in every process.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pyarrow as pa

from otelcost.budgets.rules import Group, Rule
from otelcost.budgets.totals import BudgetTotals
from otelcost.policy.decisions import Snapshot

__all__ = [
    "UNIT_SPLIT",
    "Delta",
    "PendingChange",
    "batch_content_id",
    "delta_of",
    "group_in_window",
    "periods_of",
    "snapshot_digest",
]

_CONTENT_COLUMNS: Final = ("trace_id", "span_id", "attribution_change")
UNIT_SPLIT: Final = 10**6
"""A total of units is kept in Redis as ``high * UNIT_SPLIT + low`` (two 64-bit integers)."""


@dataclass(frozen=True, slots=True)
class Delta:
    """One instance's change of totals in one window period (a bucket, for windows that slide)."""

    budget: str
    shape: str
    period: str  # "w<start_ns>" or "b<bucket>"
    key: tuple[str, ...]
    units: int
    calls: int
    unpriced: int
    as_of_ns: int

    def to_json(self, keep_s: int) -> str:
        """The delta as the apply script and the change stream take it (``redisstore.py``), as
        JSON text: a list of strings only, units split in two (Redis integers are 64-bit; a
        picodollar total of one instance may pass 9.2 million USD). Written by hand because a
        batch has hundreds of deltas: budget names, shapes and periods need no escaping
        (``BudgetConfig`` allows letters, digits, ``_.-``), the instance key is escaped once
        per distinct key."""
        high, low = divmod(self.units, UNIT_SPLIT)
        return (
            f'["{self.budget}","{self.shape}","{self.period}",{_key_text(self.key)},'
            f'"{high}","{low}","{self.calls}","{self.unpriced}","{self.as_of_ns}","{max(1, keep_s)}"]'
        )

    @classmethod
    def from_json(cls, item: Sequence[Any]) -> Delta:
        budget, shape, period, key, high, low, calls, unpriced, as_of = item[:9]
        return cls(
            str(budget),
            str(shape),
            str(period),
            tuple(json.loads(key)),
            int(high) * UNIT_SPLIT + int(low),
            int(calls),
            int(unpriced),
            int(as_of),
        )


@functools.lru_cache(maxsize=65_536)
def _key_text(key: tuple[str, ...]) -> str:
    """An instance key as a JSON string holding its JSON array (what the totals' fields hold)."""
    return json.dumps(json.dumps(list(key), separators=(",", ":")))


def batch_content_id(batch: pa.Table, dimensions: Sequence[str]) -> str:
    """A digest of which calls a batch holds and how they are attributed (not when they were
    received, which a retry changes). The values are hashed, not the Arrow buffers: a batch
    sliced out of a larger table has buffers that hold more than its rows."""
    digest = hashlib.blake2b(digest_size=16)
    for name in (*_CONTENT_COLUMNS, *dimensions):
        if name in batch.column_names:
            values = batch[name].to_pylist()
            digest.update(f"{name}\x1e".encode())
            digest.update("\x1f".join("\x00" if v is None else str(v) for v in values).encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class PendingChange:
    """A batch's deltas not yet in Redis, with what makes adding them once-only."""

    deltas: tuple[Delta, ...]
    writer: str | None
    seq: int | None
    content_id: str | None


def delta_of(rule: Rule, window_start_ns: int, group: Group) -> Delta:
    """The delta of one :data:`~otelcost.budgets.rules.Group` counted in the window starting at
    ``window_start_ns`` (its bucket, for a window that slides)."""
    key, bucket, units, calls, unpriced, as_of = group
    period = f"w{window_start_ns}" if bucket is None else f"b{bucket}"
    return Delta(rule.name, rule.shape, period, tuple(key), units, calls, unpriced, as_of)


def group_in_window(delta: Delta, totals: BudgetTotals | None) -> Group | None:
    """``delta`` as a group of ``totals``' open window; None for another budget shape or window
    (one that closed; one that opened is read whole by a resync at its start)."""
    if totals is None or totals.rule.shape != delta.shape:
        return None
    window = totals.window
    if delta.period.startswith("w"):
        if window.end_ns is None or int(delta.period[1:]) != window.start_ns:
            return None
        bucket = None
    else:
        bucket = int(delta.period[1:])
        if window.end_ns is not None or bucket < window.first_bucket:
            return None
    return (delta.key, bucket, delta.units, delta.calls, delta.unpriced, delta.as_of_ns)


def periods_of(totals: BudgetTotals, now_ns: int) -> list[str]:
    """The periods whose totals make up ``totals``' open window at ``now_ns``."""
    window = totals.window
    if window.end_ns is not None:
        return [f"w{window.start_ns}"]
    current = totals.rule.window.buckets_of(np.array([now_ns], dtype=np.int64))
    last = int(current[0]) if current is not None else window.first_bucket
    return [f"b{bucket}" for bucket in range(window.first_bucket, last + 1)]


def snapshot_digest(snapshot: Snapshot) -> str:
    """What a snapshot decides, as 8 hex digits: not when it was computed, which differs between
    processes holding the same totals."""
    digest = hashlib.blake2b(digest_size=4)
    for d in snapshot.decisions:
        fields = (
            d.budget,
            sorted(d.scope.items()),
            d.action.value,
            d.spent,
            d.limit,
            d.threshold,
            d.window_end_ns,
            d.retry_at_ns,
            d.override_id,
            d.source,
        )
        digest.update(repr(fields).encode())
    for e in snapshot.exemptions:
        digest.update(repr((e.override_id, sorted(e.scope.items()), e.budget, e.until_ns)).encode())
    digest.update(b"stale" if snapshot.stale else b"")
    return digest.hexdigest()
