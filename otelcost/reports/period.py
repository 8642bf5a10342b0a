"""The stretch of time a report covers, and the one it is compared with.

A report reads the calls whose ``ts`` is in ``[start, end)`` (UTC). Periods are named the way
finance names them::

    2026-11        a calendar month          2026-Q4     a calendar quarter
    2026-11-05     a day                     2026-W45    an ISO week (from Monday)
    2026           a calendar year

or given as ``since``/``until`` (a date, a timestamp, or ``since`` a duration ago: ``30d``).

A period that has not ended yet is cut at *now* (``Period.cut``): month-to-date is compared with
the same number of days at the start of the previous month, not with the whole previous month,
so "change" means change, not "the month is not over yet".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

__all__ = ["Period", "parse_period", "parse_since", "resolve_period"]

_AGO_RE: Final = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_AGO_UNITS: Final = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, *, now: datetime | None = None) -> datetime:
    """``7d`` / ``24h`` / ``30m`` / ``2w`` ago, or an ISO date or timestamp (UTC if no zone).

    Raises ValueError naming the accepted forms.
    """
    match = _AGO_RE.match(value)
    if match:
        now = now or datetime.now(UTC)
        return now - timedelta(**{_AGO_UNITS[match[2]]: int(match[1])})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"expected a duration such as 7d or 24h, or a date such as 2026-01-31, got {value!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_MONTH_RE: Final = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER_RE: Final = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_WEEK_RE: Final = re.compile(r"^(\d{4})-[Ww](\d{2})$")
_YEAR_RE: Final = re.compile(r"^(\d{4})$")
_DAY_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end)`` in UTC, with the label it was asked by and its calendar unit.

    ``unit`` is ``day``, ``week``, ``month``, ``quarter``, ``year``, or ``span`` (since/until).
    """

    start: datetime
    end: datetime
    label: str
    unit: str = "span"

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(
                f"the period ends ({self.end.isoformat()}) before it starts ({self.start.isoformat()})"
            )

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def days(self) -> list[date]:
        """Every calendar day (UTC) the period touches."""
        first = self.start.date()
        last = (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    def previous(self) -> Period:
        """The period before this one: the previous calendar unit (for a month: the previous
        month), else the same length just before ``start``."""
        months = {"month": 1, "quarter": 3, "year": 12}.get(self.unit)
        if months is not None:
            start = _midnight(_add_months(self.start.date(), -months))
            return Period(start, self.start, f"before {self.label}", self.unit)
        return Period(self.start - self.length, self.start, f"before {self.label}", self.unit)

    def cut(self, now: datetime) -> Period:
        """This period ending at ``now`` when it has not ended yet (unchanged otherwise)."""
        if now >= self.end or now <= self.start:
            return self
        return Period(self.start, now, f"{self.label} to date", self.unit)

    def compared(self, now: datetime) -> tuple[Period, Period]:
        """(this period cut at ``now``, the period to compare it with, of the same elapsed length)."""
        current = self.cut(now)
        before = self.previous()
        if current.end < self.end:
            before = Period(
                before.start, min(before.end, before.start + current.length), before.label, self.unit
            )
        return current, before


def parse_period(text: str) -> Period:
    """``2026-11``, ``2026-Q4``, ``2026-W45``, ``2026-11-05`` or ``2026`` as a Period; ValueError
    naming the accepted forms otherwise."""
    value = text.strip()
    try:
        if match := _MONTH_RE.match(value):
            first = date(int(match[1]), int(match[2]), 1)
            return Period(_midnight(first), _midnight(_add_months(first, 1)), value, "month")
        if match := _QUARTER_RE.match(value):
            first = date(int(match[1]), (int(match[2]) - 1) * 3 + 1, 1)
            return Period(_midnight(first), _midnight(_add_months(first, 3)), value.upper(), "quarter")
        if match := _WEEK_RE.match(value):
            monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
            return Period(_midnight(monday), _midnight(monday + timedelta(days=7)), value.upper(), "week")
        if match := _YEAR_RE.match(value):
            first = date(int(match[1]), 1, 1)
            return Period(_midnight(first), _midnight(_add_months(first, 12)), value, "year")
        if _DAY_RE.match(value):
            day = date.fromisoformat(value)
            return Period(_midnight(day), _midnight(day + timedelta(days=1)), value, "day")
    except ValueError:
        pass
    raise ValueError(
        f"expected a period such as 2026-11 (month), 2026-Q4, 2026-W45, 2026-11-05 or 2026, got {text!r}"
    )


def _parse_bound(name: str, value: str, now: datetime) -> datetime:
    """``since``/``until`` parsed, an error naming which of the two it is."""
    try:
        return parse_since(value, now=now)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from exc


def resolve_period(
    period: str | None = None,
    since: str | None = None,
    until: str | None = None,
    *,
    now: datetime | None = None,
) -> Period:
    """The period of a report request: ``period``, or ``since``/``until``, or the current month.

    ``since`` takes a date, a timestamp or a duration ago (``30d``); ``until`` a date or a
    timestamp (exclusive; default now). ``period`` with either of them is a ValueError.
    """
    now = now or datetime.now(UTC)
    if period is not None:
        if since is not None or until is not None:
            raise ValueError("give either a period or since/until, not both")
        return parse_period(period)
    if since is None and until is None:
        first = now.date().replace(day=1)
        return Period(_midnight(first), _midnight(_add_months(first, 1)), first.strftime("%Y-%m"), "month")
    end = _parse_bound("until", until, now) if until is not None else now
    start = _parse_bound("since", since, now) if since is not None else end - timedelta(days=30)
    label = f"{start.isoformat()} to {end.isoformat()}"
    return Period(start, end, label)
