"""Counters of the worker processes, carried to the serve process as JSON and summed there.

The receivers and the normalizer run in the workers, so their counters (``/metrics``:
``otelcost_receiver_*``, ``otelcost_calls_by_convention`` ...) live there too. Each worker sends
its cumulative counters about once a second and when it stops; the serve process keeps the latest
copy per worker and sums them at scrape time. When a worker dies its last copy is kept in a
"retired" total, so counters never go backwards; gauges (``trace_memory_spans``) are not.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from otelcost.normalize import NormalizerCounters
from otelcost.receiver.stats import ReceiverStats

__all__ = ["WorkerStats"]

_GAUGES = frozenset({"trace_memory_spans", "pending_calls"})


@dataclasses.dataclass
class WorkerStats:
    receivers: dict[str, ReceiverStats] = dataclasses.field(default_factory=dict)
    normalizer: NormalizerCounters = dataclasses.field(default_factory=NormalizerCounters)

    def to_json(self) -> dict[str, Any]:
        return {
            "receivers": {
                protocol: {"requests": dict(stats.requests), "spans": stats.spans}
                for protocol, stats in self.receivers.items()
            },
            "normalizer": {
                field.name: _plain(getattr(self.normalizer, field.name))
                for field in dataclasses.fields(NormalizerCounters)
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkerStats:
        receivers = {
            protocol: ReceiverStats(Counter(stats["requests"]), int(stats["spans"]))
            for protocol, stats in data["receivers"].items()
        }
        normalizer = NormalizerCounters(
            **{
                field.name: _counter_or_int(data["normalizer"].get(field.name, 0))
                for field in dataclasses.fields(NormalizerCounters)
            }
        )
        return cls(receivers, normalizer)

    def add(self, other: WorkerStats, *, gauges: bool = True) -> None:
        """Add ``other`` into this one (``gauges=False``: leave the gauges alone)."""
        for protocol, stats in other.receivers.items():
            mine = self.receivers.setdefault(protocol, ReceiverStats())
            mine.requests.update(stats.requests)
            mine.spans += stats.spans
        for field in dataclasses.fields(NormalizerCounters):
            if field.name in _GAUGES and not gauges:
                continue
            value = getattr(other.normalizer, field.name)
            if isinstance(value, Counter):
                getattr(self.normalizer, field.name).update(value)
            else:
                setattr(self.normalizer, field.name, getattr(self.normalizer, field.name) + value)


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, Counter) else value


def _counter_or_int(value: Any) -> Any:
    return Counter(value) if isinstance(value, dict) else int(value)
