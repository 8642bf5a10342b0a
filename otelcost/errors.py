"""Exceptions raised by otelcost.

Every exception otelcost raises on purpose, and where it is defined (the base classes are here;
a subclass lives beside the code that raises it)::

    OtelcostError                    base of every error otelcost raises on purpose
    ├── ConfigError                  invalid configuration; raised before anything starts
    ├── BindError                    a receiver cannot listen on its address  (receiver/errors.py)
    ├── IngestError                  an export request could not be taken in
    │   ├── PermanentIngestError     the same input will always fail (bad data): do not retry
    │   │   ├── MalformedRequestError       the body does not decode   (receiver/errors.py)
    │   │   ├── RequestTooLargeError        over the size limit, compressed or not
    │   │   ├── UnsupportedMediaTypeError   neither protobuf nor JSON
    │   │   ├── MethodNotAllowedError       not a POST
    │   │   └── NotFoundError               not an OTLP path
    │   └── TransientIngestError     overload or a passing fault: the sender should retry later
    │       ├── SpoolFullError              the spool is at spool.max_size (spool/errors.py)
    │       ├── SpoolWriteError             writing or syncing a record failed; not acknowledged
    │       └── ServeProcessGoneError       a receiver worker lost its serve process
    │                                       (workers/worker.py)
    ├── PricingError                 a price catalog is invalid or a lookup cannot be made
    ├── LakeError                    the Parquet lake cannot be written or read
    │   ├── LakeLockTimeoutError     another job held the lake lock too long; nothing changed
    │   └── PartialWriteError        a flush published some partitions, not all (lake/publish.py)
    ├── SpoolError                   the spool directory cannot be used       (spool/errors.py)
    │   └── SpoolCorruptionError     a record mid-log fails its checksum (maybe acked data)
    ├── BudgetAdminError             a change to budgets or overrides that cannot be made
    │   ├── UnknownBudgetError       the named budget does not exist
    │   ├── UnknownOverrideError     the named override does not exist
    │   ├── InvalidOverrideError     the override asked for is not valid (bad field, past end)
    │   └── SharedStoreUnavailableError  the change must reach the shared budget store (Redis)
    │                                and cannot now: nothing was changed (HTTP 503)
    ├── ReservationRefusedError      a gateway's call may not go ahead: denied, or its estimate
    │                                does not fit a budget's headroom (policy/reservations.py)
    ├── AuthError                    a caller may not do what it asked      (auth/keys.py raises)
    │   ├── AuthenticationError      no key where one is needed, or a key no one holds:
    │   │                            HTTP 401 / gRPC UNAUTHENTICATED, never retried
    │   └── PermissionDeniedError    a known key without the role (or tenant) for the call:
    │                                HTTP 403 / gRPC PERMISSION_DENIED
    ├── ReportError                  a report cannot be made from what it was given
    │   ├── UnknownReportError       no report has the name asked for
    │   └── StatementError           a chargeback statement cannot be closed or read
    └── ReconcileError               an invoice cannot be reconciled (provider, period)
        └── InvoiceFormatError       an invoice row does not parse: file, line, column
                                     (reconcile/errors.py)

Not in the tree, on purpose: ``ValueError`` subclasses that parsers raise and their callers turn
into one of the above (``normalize/values.InvalidCountError`` becomes a rejected span,
``pricing/rates.RateError`` a ``PricingError``), and ``workers/frames.FrameError``, which closes a
worker link and never leaves the process.

Whether a retry helps is part of the type, so the receivers map errors to protocol status codes
from the type alone (``otelcost/receiver/errors.py``), and the API listener maps the others the
same way (``otelcost/api/responses.py``). Foreign exceptions (pyarrow, duckdb,
grpc) are wrapped at the boundary with ``raise ... from exc``; callers never need to import a
third-party exception type to handle ours. Misuse of an API by the caller raises the built-in
``TypeError`` / ``ValueError`` / ``RuntimeError`` instead.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "AuthenticationError",
    "BudgetAdminError",
    "ConfigError",
    "IngestError",
    "InvalidOverrideError",
    "LakeError",
    "LakeLockTimeoutError",
    "OtelcostError",
    "PermanentIngestError",
    "PermissionDeniedError",
    "PricingError",
    "ReportError",
    "SharedStoreUnavailableError",
    "StatementError",
    "TransientIngestError",
    "UnknownBudgetError",
    "UnknownOverrideError",
    "UnknownReportError",
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


class BudgetAdminError(OtelcostError):
    """A budget or override change that cannot be made; nothing was changed.

    The API layer answers these with a client error (``otelcost/api/responses.py`` maps each
    subclass to its status); the CLI prints the message.
    """


class UnknownBudgetError(BudgetAdminError):
    """No budget has the name asked for."""


class UnknownOverrideError(BudgetAdminError):
    """No override has the id asked for."""


class InvalidOverrideError(BudgetAdminError):
    """The override is not valid: a field out of range, an end in the past, an unknown budget."""


class SharedStoreUnavailableError(BudgetAdminError):
    """An admin change that every process must see goes through the shared budget store
    (``budgeting.store: redis://``), which cannot be reached: nothing was changed; retry."""


class AuthError(OtelcostError):
    """A caller may not do what it asked. The message never holds the key it sent."""


class AuthenticationError(AuthError):
    """No key where one is needed, or a key that is not (or no longer) configured."""


class PermissionDeniedError(AuthError):
    """The key is known but lacks the role, or the tenant, for what it asked."""


class ReportError(OtelcostError):
    """A report cannot be made from its request (a bad input file, a period it cannot cover)."""


class UnknownReportError(ReportError):
    """No report has the name asked for."""


class StatementError(ReportError):
    """A chargeback statement cannot be closed or read (otelcost/reports/chargeback)."""
