"""Budget windows: calendar periods in a time zone, and rolling durations.

Spend belongs to a window by the call's event time (``ts``); a window opens and closes by the
wall clock. Nothing is ever reset: a window's total is a function of which calls fall inside
it, so "rolling over" is simply computing a different window for a later time. There is no job
that zeroes a counter, and so nothing that can fire late, early or twice.

* **Calendar** windows (``hour``, ``day``, ``week`` (ISO, from Monday), ``month``,
  ``quarter``) are periods of local time in an IANA time zone. Their boundaries are local
  midnights (or hours), converted to UTC with the zone's rules, so a ``day`` across a daylight
  saving change lasts 23 or 25 hours and a ``month`` starts at local midnight of the 1st.
* **Rolling** windows (``1m``, ``1h``, ``24h``, any duration from 1 s) cover the most recent
  stretch of time. They are kept as buckets: ``bucket = max(1 s, duration / 60)`` rounded down
  to whole seconds, and the window is the last ``ceil(duration / bucket)`` buckets including
  the current one. The total therefore counts between ``duration - bucket`` and ``duration`` of
  history (a precision of 1/60 of the window), in exchange for bounded memory per instance.

All times are integer nanoseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from otelcost.configtypes import parse_duration

__all__ = [
    "CALENDAR_UNITS",
    "CalendarWindow",
    "RollingWindow",
    "Window",
    "load_zone",
    "parse_window",
]

CalendarUnit = Literal["hour", "day", "week", "month", "quarter"]
CALENDAR_UNITS: Final[tuple[CalendarUnit, ...]] = ("hour", "day", "week", "month", "quarter")

NS_PER_SECOND: Final = 1_000_000_000
ROLLING_BUCKETS: Final = 60
"""A rolling window is kept in about this many buckets."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _to_ns(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * 1000


def _from_ns(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def load_zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ValueError naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name such as Europe/Berlin)") from exc


@dataclass(frozen=True, slots=True)
class CalendarWindow:
    """A calendar period (``unit``) of local time in ``zone``."""

    unit: CalendarUnit
    zone: ZoneInfo

    kind: Literal["calendar"] = "calendar"

    @property
    def label(self) -> str:
        return self.unit

    def bounds(self, at_ns: int) -> tuple[int, int]:
        """``(start, end)`` of the window containing the instant ``at_ns``; start <= at < end."""
        local = _from_ns(at_ns).astimezone(self.zone)
        if self.unit == "hour":
            # Local hours can repeat (fold) when clocks go back: keep the fold, and step one
            # absolute hour, so both the first and the repeated 01:00 are windows of their own.
            start = local.replace(minute=0, second=0, microsecond=0)
            start_ns = _to_ns(start)
            return start_ns, start_ns + 3600 * NS_PER_SECOND
        day = local.date()
        if self.unit == "day":
            first, following = day, day + timedelta(days=1)
        elif self.unit == "week":
            first = day - timedelta(days=day.weekday())
            following = first + timedelta(days=7)
        else:
            months = 1 if self.unit == "month" else 3
            month0 = (day.month - 1) // months * months  # 0-based first month of the period
            first = day.replace(month=month0 + 1, day=1)
            year, month0 = divmod(month0 + months, 12)
            following = first.replace(year=day.year + year, month=month0 + 1, day=1)
        return self._midnight(first), self._midnight(following)

    def _midnight(self, day: date) -> int:
        # A midnight that does not exist (a zone that springs forward at 00:00) resolves, per
        # PEP 495 with fold=0, to the first instant of that local day.
        return _to_ns(datetime(day.year, day.month, day.day, tzinfo=self.zone))


@dataclass(frozen=True, slots=True)
class RollingWindow:
    """The most recent ``duration``, kept in ``buckets`` buckets of ``bucket_ns``."""

    duration_ns: int
    bucket_ns: int
    buckets: int
    spec: str

    kind: Literal["rolling"] = "rolling"

    @classmethod
    def of(cls, duration: timedelta, spec: str) -> RollingWindow:
        seconds = duration.total_seconds()
        if seconds < 1 or seconds != int(seconds):
            raise ValueError(f"a rolling window must be a whole number of seconds, at least 1s, got {spec!r}")
        whole = int(seconds)
        bucket = max(1, whole // ROLLING_BUCKETS)
        return cls(whole * NS_PER_SECOND, bucket * NS_PER_SECOND, math.ceil(whole / bucket), spec)

    @property
    def label(self) -> str:
        return f"rolling {self.spec}"

    def bucket_of(self, at_ns: int) -> int:
        return at_ns // self.bucket_ns

    def first_bucket(self, now_ns: int) -> int:
        """The oldest bucket still inside the window at ``now_ns``."""
        return self.bucket_of(now_ns) - self.buckets + 1

    def bucket_leaves_at(self, bucket: int) -> int:
        """When ``bucket`` drops out of the window."""
        return (bucket + self.buckets) * self.bucket_ns


Window = CalendarWindow | RollingWindow


def parse_window(spec: str, zone: ZoneInfo) -> Window:
    """``month`` (etc.) -> CalendarWindow in ``zone``; a duration (``1m``, ``24h``) -> RollingWindow."""
    text = spec.strip()
    if text in CALENDAR_UNITS:
        return CalendarWindow(text, zone)
    try:
        duration = parse_duration(text)
    except ValueError:
        raise ValueError(
            "expected hour, day, week, month, quarter or a rolling duration such as 1m, 1h, 24h; "
            f"got {spec!r}"
        ) from None
    assert isinstance(duration, timedelta)
    return RollingWindow.of(duration, text)
