"""Budget windows: which stretch of time a budget's spend is counted over, one class per kind.

Spend belongs to a window by the call's event time (``ts``); a window opens and closes by the
wall clock. Nothing is ever reset: a window's total is a function of which calls fall inside
it, so "rolling over" is simply computing a different window for a later time. There is no job
that zeroes a counter, and so nothing that can fire late, early or twice.

A window kind is one subclass of :class:`Window`; the engine asks it only through that
interface, so a new kind needs no change elsewhere. There are two ways spend ages out, and a
kind picks one by what its :meth:`Window.open_at` returns:

* a window that **closes** (``OpenWindow.end_ns`` set) keeps one total per instance, and drops
  every total at once when it ends: the next window starts empty. Calls stamped before the
  open window started belong to a closed window and are not counted (``late_calls``).
* a window that **slides** (``end_ns`` None) keeps spend in buckets (:meth:`Window.buckets_of`)
  that drop out one by one (:meth:`Window.bucket_leaves_at`) as the clock moves.

The two kinds here:

* **Calendar** windows (``hour``, ``day``, ``week`` (ISO, from Monday), ``month``,
  ``quarter``) close. They are periods of local time in an IANA time zone. Their boundaries are
  local midnights (or hours), converted to UTC with the zone's rules, so a ``day`` across a
  daylight saving change lasts 23 or 25 hours and a ``month`` starts at local midnight of the
  1st.
* **Rolling** windows (``1m``, ``1h``, ``24h``, any duration from 1 s) slide over the most
  recent stretch of time. Their buckets are ``bucket = max(1 s, duration / 60)`` rounded down
  to whole seconds, and the window is the last ``ceil(duration / bucket)`` buckets including
  the current one. The total therefore counts between ``duration - bucket`` and ``duration`` of
  history (a precision of 1/60 of the window), in exchange for bounded memory per instance.

All times are integer nanoseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from otelcost.configtypes import parse_duration

__all__ = [
    "CALENDAR_UNITS",
    "CalendarWindow",
    "OpenWindow",
    "RollingWindow",
    "Window",
    "load_zone",
    "parse_window",
]

CalendarUnit = Literal["hour", "day", "week", "month", "quarter"]
CALENDAR_UNITS: Final[tuple[CalendarUnit, ...]] = ("hour", "day", "week", "month", "quarter")

NS_PER_SECOND: Final = 1_000_000_000
ROLLING_BUCKETS: Final = 60
_LONGEST_CALENDAR: Final[dict[str, timedelta]] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=31),
    "quarter": timedelta(days=92),
}
"""A rolling window is kept in about this many buckets."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

I64 = npt.NDArray[np.int64]


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
class OpenWindow:
    """A budget's window as it stands at some instant (see :meth:`Window.open_at`)."""

    start_ns: int
    """The earliest event time counted."""
    end_ns: int | None
    """When the window closes and the next one starts empty; None for a window that slides."""
    valid_until_ns: int
    """Until when this holds: the engine asks the window again from then on."""
    first_bucket: int = 0
    """The oldest bucket still counted (windows that slide)."""


class Window(ABC):
    """A window kind: when spend starts and stops counting (see the module docstring).

    A window that closes implements :attr:`label`, :attr:`phrase`, :meth:`open_at` and
    :attr:`longest`; one that
    slides also overrides :meth:`buckets_of`, :meth:`bucket_sql`, :meth:`bucket_leaves_at` and
    usually :meth:`alert_window_id`. Implementations are immutable and compare by value (two
    equal windows count the same calls, so totals kept for one are valid for the other).
    """

    __slots__ = ()

    @property
    @abstractmethod
    def label(self) -> str:
        """The window in decisions, alerts and ``budgets status``: ``month``, ``rolling 1m``."""

    @property
    @abstractmethod
    def phrase(self) -> str:
        """The window in a decision's reason: ``this month``, ``in the last 1m``."""

    @abstractmethod
    def open_at(self, now_ns: int) -> OpenWindow:
        """The window open at the instant ``now_ns``."""

    def buckets_of(self, event_ns: I64) -> I64 | None:
        """The bucket of each event time counted (all inside the open window); None for a
        window that closes, which keeps one total per instance."""
        return None

    def bucket_sql(self, event_us: str) -> str | None:
        """:meth:`buckets_of` as a DuckDB expression over ``event_us`` (integer microseconds),
        for the rebuild from the lake; None when :meth:`buckets_of` is None."""
        return None

    @property
    @abstractmethod
    def longest(self) -> timedelta:
        """The longest stretch one open window can span (a 31-day month, a 92-day quarter):
        how far back the restart rebuild reads the lake, so ``lake.retention`` must keep more."""

    def bucket_leaves_at(self, bucket: int) -> int:
        """When ``bucket`` drops out of the window (windows that slide)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no buckets")

    def alert_window_id(self, window: OpenWindow, now_ns: int) -> int:
        """Which window a threshold crossing at ``now_ns`` belongs to: a threshold alerts once
        per window id. By default the open window's start."""
        return window.start_ns


@dataclass(frozen=True, slots=True)
class CalendarWindow(Window):
    """A calendar period (``unit``) of local time in ``zone``; closes at the period's end."""

    unit: CalendarUnit
    zone: ZoneInfo

    @property
    def label(self) -> str:
        return self.unit

    @property
    def phrase(self) -> str:
        return f"this {self.unit}"

    @property
    def longest(self) -> timedelta:
        # A local day or hour can be an hour longer when clocks go back.
        return _LONGEST_CALENDAR[self.unit] + timedelta(hours=1)

    def open_at(self, now_ns: int) -> OpenWindow:
        start, end = self.bounds(now_ns)
        return OpenWindow(start_ns=start, end_ns=end, valid_until_ns=end)

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
class RollingWindow(Window):
    """The most recent ``duration``, kept in ``buckets`` buckets of ``bucket_ns``; slides."""

    duration_ns: int
    bucket_ns: int
    buckets: int
    spec: str

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

    @property
    def phrase(self) -> str:
        return f"in the last {self.spec}"

    @property
    def longest(self) -> timedelta:
        return timedelta(microseconds=(self.bucket_ns * (self.buckets + 1)) // 1000)

    def open_at(self, now_ns: int) -> OpenWindow:
        first = self.first_bucket(now_ns)
        return OpenWindow(
            start_ns=first * self.bucket_ns,
            end_ns=None,
            valid_until_ns=(self.bucket_of(now_ns) + 1) * self.bucket_ns,
            first_bucket=first,
        )

    def bucket_of(self, at_ns: int) -> int:
        return at_ns // self.bucket_ns

    def buckets_of(self, event_ns: I64) -> I64:
        return event_ns // self.bucket_ns

    def bucket_sql(self, event_us: str) -> str:
        return f"({event_us}) // {self.bucket_ns // 1000}"  # buckets are whole seconds

    def first_bucket(self, now_ns: int) -> int:
        """The oldest bucket still inside the window at ``now_ns``."""
        return self.bucket_of(now_ns) - self.buckets + 1

    def bucket_leaves_at(self, bucket: int) -> int:
        return (bucket + self.buckets) * self.bucket_ns

    def alert_window_id(self, window: OpenWindow, now_ns: int) -> int:
        # Each successive stretch of the window's duration, so that a total oscillating around
        # a threshold alerts at most once per stretch instead of on every crossing.
        return now_ns // self.duration_ns * self.duration_ns


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
