"""The spool's counters, and the consistent snapshot of them that ``Spool.stats()`` returns.

The metric names are in docs/durability.md and the package README.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SpoolCounters", "SpoolStats"]


@dataclass
class SpoolCounters:
    """Running totals for metrics; written under the spool's lock, read without it."""

    appends: int = 0
    bytes_appended: int = 0
    fsyncs: int = 0
    fsync_seconds_total: float = 0.0
    commits: int = 0
    refused_full: int = 0
    refused_io: int = 0


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """A consistent snapshot for the metrics endpoint (docs/durability.md lists the metric names)."""

    appends: int
    bytes_appended: int
    fsyncs: int
    fsync_seconds_total: float
    commits: int
    refused_full: int
    refused_io: int
    depth: int
    size_bytes: int
    segments: int
    checkpointed_seq: int
    last_seq: int
