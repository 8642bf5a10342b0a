"""Error answers of the API: one body shape, and the one table from domain errors to statuses.

Every error the API sends has the shape ``{"error": {"status": 404, "message": "..."}}``.
Handlers answer problems they find in the request itself (a malformed body, an unknown query
parameter, a missing token) with :func:`error_response`. Errors raised by the domain code they
call (budgets, policy) are left to propagate: the :func:`domain_errors` middleware answers them
with the status :data:`ERROR_STATUSES` gives their type. The domain raises its own errors
(``otelcost/errors.py``) and knows nothing of HTTP; this table is the only place where an
error type becomes a status.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler

from otelcost.errors import (
    BudgetAdminError,
    InvalidOverrideError,
    OtelcostError,
    ReportError,
    SharedStoreUnavailableError,
    UnknownBudgetError,
    UnknownOverrideError,
    UnknownReportError,
)

__all__ = ["ERROR_STATUSES", "domain_errors", "error_response", "error_status"]

log = logging.getLogger("otelcost.api")

ERROR_STATUSES: Final[tuple[tuple[type[Exception], int], ...]] = (
    (UnknownBudgetError, 404),
    (UnknownOverrideError, 404),
    (UnknownReportError, 404),
    (ReportError, 400),
    (InvalidOverrideError, 400),
    (SharedStoreUnavailableError, 503),
    (BudgetAdminError, 400),
    # The caller's misuse of a domain call (errors.py); pydantic's ValidationError is one.
    (ValueError, 400),
    (OtelcostError, 500),
)
"""Domain error type -> HTTP status; the first entry the error is an instance of wins, so a
subclass comes before its base. Errors of no type listed here are not ours to map: they reach
aiohttp, which logs them and answers 500."""

_MAPPED: Final = tuple(error_type for error_type, _ in ERROR_STATUSES)


def error_response(status: int, message: str, **extra: Any) -> web.Response:
    """The one error shape of the API: ``{"error": {"status": 400, "message": "..."}}``."""
    body = {"error": {"status": status, "message": message, **extra}}
    return web.json_response(body, status=status)


def error_status(error: BaseException) -> int | None:
    """The status :data:`ERROR_STATUSES` gives ``error``; None when it is not a domain error."""
    for error_type, status in ERROR_STATUSES:
        if isinstance(error, error_type):
            return status
    return None


@web.middleware
async def domain_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer a domain error raised by any route with its status and the one error shape."""
    try:
        return await handler(request)
    except _MAPPED as exc:
        status = error_status(exc)
        assert status is not None  # _MAPPED holds exactly the table's types
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, exc, exc_info=exc)
        return error_response(status, str(exc))
