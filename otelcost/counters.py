"""The pipeline's own counters: what it took in, and what the last start replayed.

Plain integers and ``Counter`` objects, updated under the pipeline's lock; ``metrics.py`` reads
copies at scrape time (``Pipeline.counters_snapshot``, ``Pipeline.replayed``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from otelcost.prepare import BatchSummary
from otelcost.schema import calls_only

__all__ = ["IntakeCounters", "ReplayCounters"]


@dataclass
class IntakeCounters:
    """Running totals of what the pipeline took in, read by the metrics endpoint.

    Updated under the pipeline's lock by the thread that runs ``commit``; the metrics collector
    reads a copy (``Pipeline.counters_snapshot``).
    """

    requests: int = 0
    spans: int = 0
    calls: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    pricing_status: Counter[str] = field(default_factory=Counter)
    attribution_status: Counter[str] = field(default_factory=Counter)
    refused_requests: int = 0
    duplicates: Counter[str] = field(default_factory=Counter)
    """Spans folded into another call (stored in duplicate_spans), by reason."""

    def add(self, summary: BatchSummary, priced: pa.Table) -> None:
        """Count one committed request: its summary and its priced rows (calls, and the spans
        folded into another call, which are not calls)."""
        self.requests += 1
        self.spans += summary.spans_seen
        self.dropped.update(summary.dropped)
        self.rejected.update(summary.rejected_reasons)
        calls = calls_only(priced) if priced.num_rows else priced
        self.calls += calls.num_rows
        if priced["duplicate_reason"].null_count != priced.num_rows:
            self.duplicates.update(_value_counts(priced["duplicate_reason"].drop_null()))
        if calls.num_rows:
            self.pricing_status.update(_value_counts(calls["pricing_status"]))
            self.attribution_status.update(_value_counts(calls["attribution_status"]))

    def copy(self) -> IntakeCounters:
        return IntakeCounters(
            self.requests,
            self.spans,
            self.calls,
            Counter(self.rejected),
            Counter(self.dropped),
            Counter(self.pricing_status),
            Counter(self.attribution_status),
            self.refused_requests,
            Counter(self.duplicates),
        )


@dataclass
class ReplayCounters:
    """What the last start replayed from the spool (read by the metrics endpoint)."""

    records: int = 0
    """Records whose rows (some or all) were appended to the sinks again."""
    rows: int = 0
    records_in_lake: int = 0
    """Records every row of which the sinks already held (a lake file named them): skipped."""
    rows_in_lake: int = 0
    seconds: float = 0.0


def _value_counts(column: pa.ChunkedArray) -> dict[str, int]:
    counts = pc.value_counts(column)
    return {
        str(value): int(count)
        for value, count in zip(
            counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
        )
    }
