"""The duration histogram stages record and /metrics exports."""

from __future__ import annotations

import pytest

from otelcost.histogram import DurationHistogram


def test_observations_land_in_cumulative_buckets_with_their_sum() -> None:
    histogram = DurationHistogram((0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(seconds)
    buckets, total = histogram.snapshot()
    # le is inclusive: 0.1 counts in the 0.1 bucket, as Prometheus defines it.
    assert buckets == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]
    assert total == pytest.approx(3.65)


def test_bounds_must_increase() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        DurationHistogram((1.0, 0.5))
