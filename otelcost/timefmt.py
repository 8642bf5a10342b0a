"""Instants on the wire: Unix nanoseconds <-> RFC 3339 UTC text.

The decisions endpoint, the admin API, webhook alerts and the budget reasons all print times the
same way (``2026-12-01T00:00:00Z``, microseconds only where there are any), so a gateway, a
webhook receiver and a person reading a reason see one format.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = ["format_time", "parse_time"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def format_time(ns: int | None) -> str | None:
    """Unix nanoseconds as RFC 3339 UTC (microsecond precision), e.g. ``2026-12-01T00:00:00Z``."""
    if ns is None:
        return None
    moment = _EPOCH + timedelta(microseconds=ns // 1000)
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def parse_time(text: str | None) -> int | None:
    """Inverse of :func:`format_time`; also accepts any offset, read as that instant."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
