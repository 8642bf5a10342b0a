"""A fixed-bucket duration histogram that stages record into and ``/metrics`` exports.

Stages keep their own counters as plain attributes (they know nothing of Prometheus); this is
the same idea for a distribution. ``otelcost/metrics.py`` turns one into a Prometheus
histogram (cumulative ``le`` buckets, ``_sum``, ``_count``).
"""

from __future__ import annotations

import bisect
import threading
from typing import Final

__all__ = ["DEFAULT_BOUNDS", "DurationHistogram"]

DEFAULT_BOUNDS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Upper bounds in seconds (Prometheus client defaults, plus 30 s for slow disks)."""


class DurationHistogram:
    """Counts of observed durations per bucket, and their sum. Thread-safe."""

    def __init__(self, bounds: tuple[float, ...] = DEFAULT_BOUNDS) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError("bucket bounds must be strictly increasing")
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # the last bucket is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        index = bisect.bisect_left(self.bounds, seconds)
        with self._lock:
            self._counts[index] += 1
            self._sum += seconds

    def snapshot(self) -> tuple[list[tuple[str, int]], float]:
        """Cumulative ``(le, count)`` pairs ending with ``+Inf``, and the sum of observations."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for bound, count in zip([*map(str, self.bounds), "+Inf"], counts, strict=True):
            running += count
            cumulative.append((bound, running))
        return cumulative, total
