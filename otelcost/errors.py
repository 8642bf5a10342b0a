"""Exceptions raised by otelcost.

Our exception hierarchy::

    OtelcostError                 base of every error otelcost raises on purpose
    ├── ConfigError               invalid configuration; raised before anything starts
    ├── IngestError               an export request could not be taken in
    │   ├── PermanentIngestError  the same input will always fail (bad data): do not retry
    │   └── TransientIngestError  overload or a passing fault: the sender should retry later
    ├── PricingError              a price catalog is invalid or a lookup cannot be made
    └── LakeError                 the Parquet lake cannot be written or read
        └── LakeLockTimeoutError  another job held the lake lock too long; nothing changed

Whether a retry helps is part of the type, so the receivers map errors to protocol status codes
from the type alone (``otelcost/receiver/errors.py``). Foreign exceptions (pyarrow, duckdb,
grpc) are wrapped at the boundary with ``raise ... from exc``; callers never need to import a
third-party exception type to handle ours. Misuse of an API by the caller raises the built-in
``TypeError`` / ``ValueError`` / ``RuntimeError`` instead.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "IngestError",
    "LakeError",
    "LakeLockTimeoutError",
    "OtelcostError",
    "PermanentIngestError",
    "PricingError",
    "TransientIngestError",
]


class OtelcostError(Exception):
    """Base class of every error otelcost raises on purpose."""


class ConfigError(OtelcostError):
    """The configuration is invalid. The message names the dotted key (``lake.flush_interval``)."""


class IngestError(OtelcostError):
    """An export request could not be taken in."""


class PermanentIngestError(IngestError):
    """The request is malformed: sending the same bytes again will fail the same way."""


class TransientIngestError(IngestError):
    """The pipeline cannot take the request now; the sender should retry after ``retry_after``."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PricingError(OtelcostError):
    """A price catalog is invalid; the message names the file and the entry."""


class LakeError(OtelcostError):
    """The lake could not be written or read."""


class LakeLockTimeoutError(LakeError):
    """The lake lock was not free in time (a reprice or compaction holds it); nothing changed."""
