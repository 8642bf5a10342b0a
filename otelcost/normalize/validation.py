"""What a recognized call needs to become a row: valid ids and plausible timestamps.

A call that fails is rejected (OTLP partial success) with one of the :class:`Rejected` reasons
below; token counts are checked earlier, while the adapters read them
(:mod:`otelcost.normalize.recognition`).
"""

from __future__ import annotations

from typing import Any, Final

from otelcost.normalize.recognition import Rejected, rejected

__all__ = ["MAX_FUTURE_SKEW_NS", "MIN_START_NS", "ZERO_SPAN_ID", "ZERO_TRACE_ID", "check_call"]

MAX_FUTURE_SKEW_NS: Final = 24 * 3600 * 10**9
"""A span starting more than a day after it was received is rejected (``future_timestamp``):
clock skew is seconds, a day ahead is a broken clock, and a far-future row would sit in a
partition nobody looks at while budgets count it now."""

MIN_START_NS: Final = 946_684_800 * 10**9
"""Spans starting before 2000-01-01 are rejected (``invalid_timestamp``): an unset or
uninitialized clock, not a real call."""

ZERO_TRACE_ID: Final = bytes(16)
ZERO_SPAN_ID: Final = bytes(8)
"""All-zero ids are invalid (trace.proto: a valid id has at least one non-zero byte)."""

_INVALID_TRACE_ID: Final = rejected("invalid_trace_id")
_INVALID_SPAN_ID: Final = rejected("invalid_span_id")
_INVALID_PARENT_SPAN_ID: Final = rejected("invalid_parent_span_id")
_MISSING_TIMESTAMP: Final = rejected("missing_timestamp")
_INVALID_TIMESTAMP: Final = rejected("invalid_timestamp")
_FUTURE_TIMESTAMP: Final = rejected("future_timestamp")
_END_BEFORE_START: Final = rejected("end_before_start")


def check_call(span: Any, ids_valid: bool, now_ns: int) -> Rejected | None:
    """Why a recognized call cannot become a row, or None. ``span`` is a ``wire`` span;
    ``ids_valid`` is the id check the span reader already made for every span (it tells which
    spans the trace memory can remember), so here only a failure is told apart."""
    if not ids_valid:
        if len(span.trace_id) != 16 or span.trace_id == ZERO_TRACE_ID:
            return _INVALID_TRACE_ID
        if len(span.span_id) != 8 or span.span_id == ZERO_SPAN_ID:
            return _INVALID_SPAN_ID
        return _INVALID_PARENT_SPAN_ID
    start = span.start_time_unix_nano
    if start == 0:
        return _MISSING_TIMESTAMP
    if start < MIN_START_NS:
        return _INVALID_TIMESTAMP
    if start > now_ns + MAX_FUTURE_SKEW_NS:
        return _FUTURE_TIMESTAMP
    end = span.end_time_unix_nano
    if end and end < start:
        return _END_BEFORE_START
    return None
