"""Calendar windows in a time zone (DST included), quarters, weeks, and rolling buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from otelcost.budgets.windows import CalendarWindow, RollingWindow, load_zone, parse_window

NS = 1_000_000_000
HOUR = 3600 * NS


def ns(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * NS


def utc(value: int) -> str:
    return datetime.fromtimestamp(value / NS, UTC).isoformat()


def window(unit: str, zone: str = "UTC") -> CalendarWindow:
    parsed = parse_window(unit, load_zone(zone))
    assert isinstance(parsed, CalendarWindow)
    return parsed


@pytest.mark.parametrize(
    ("unit", "at", "start", "end"),
    [
        ("hour", "2026-03-14T10:59:59", "2026-03-14T10:00:00+00:00", "2026-03-14T11:00:00+00:00"),
        ("day", "2026-03-14T00:00:00", "2026-03-14T00:00:00+00:00", "2026-03-15T00:00:00+00:00"),
        ("week", "2026-03-15T23:59:59", "2026-03-09T00:00:00+00:00", "2026-03-16T00:00:00+00:00"),
        ("week", "2026-03-16T00:00:00", "2026-03-16T00:00:00+00:00", "2026-03-23T00:00:00+00:00"),
        ("month", "2026-02-28T12:00:00", "2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00"),
        ("month", "2026-12-31T23:59:59", "2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"),
        ("quarter", "2026-03-31T23:59:59", "2026-01-01T00:00:00+00:00", "2026-04-01T00:00:00+00:00"),
        ("quarter", "2026-04-01T00:00:00", "2026-04-01T00:00:00+00:00", "2026-07-01T00:00:00+00:00"),
        ("quarter", "2026-11-15T08:00:00", "2026-10-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"),
    ],
)
def test_calendar_bounds_in_utc(unit: str, at: str, start: str, end: str) -> None:
    low, high = window(unit).bounds(ns(at))
    assert (utc(low), utc(high)) == (start, end)


def test_a_day_across_spring_forward_lasts_23_hours() -> None:
    # Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST.
    low, high = window("day", "Europe/Berlin").bounds(ns("2026-03-29T12:00:00+02:00"))
    assert utc(low) == "2026-03-28T23:00:00+00:00"  # local midnight, CET
    assert utc(high) == "2026-03-29T22:00:00+00:00"  # next local midnight, CEST
    assert high - low == 23 * HOUR


def test_a_day_across_fall_back_lasts_25_hours() -> None:
    low, high = window("day", "Europe/Berlin").bounds(ns("2026-10-25T12:00:00+01:00"))
    assert high - low == 25 * HOUR
    assert utc(low) == "2026-10-24T22:00:00+00:00"


def test_the_repeated_local_hour_is_two_windows() -> None:
    hour = window("hour", "Europe/Berlin")
    first = hour.bounds(ns("2026-10-25T00:30:00+00:00"))  # 02:30 CEST
    second = hour.bounds(ns("2026-10-25T01:30:00+00:00"))  # 02:30 CET, same wall clock
    assert first != second
    assert first[1] == second[0]
    assert all(high - low == HOUR for low, high in (first, second))


def test_hour_windows_follow_half_hour_offsets() -> None:
    low, high = window("hour", "Asia/Kolkata").bounds(ns("2026-03-14T10:45:00+00:00"))
    assert utc(low) == "2026-03-14T10:30:00+00:00"
    assert high - low == HOUR


def test_month_and_quarter_start_at_local_midnight() -> None:
    low, high = window("month", "Europe/Berlin").bounds(ns("2026-03-31T21:59:59+00:00"))
    assert (utc(low), utc(high)) == ("2026-02-28T23:00:00+00:00", "2026-03-31T22:00:00+00:00")
    low, high = window("quarter", "America/New_York").bounds(ns("2026-04-01T03:59:59+00:00"))
    # 23:59:59 on March 31 in New York is still Q1 there.
    assert (utc(low), utc(high)) == ("2026-01-01T05:00:00+00:00", "2026-04-01T04:00:00+00:00")


def test_week_starts_on_monday_in_the_zone() -> None:
    low, high = window("week", "Asia/Tokyo").bounds(ns("2026-03-15T16:00:00+00:00"))  # Mon 01:00 JST
    assert utc(low) == "2026-03-15T15:00:00+00:00"
    assert high - low == 7 * 24 * HOUR


def test_consecutive_windows_tile_time_without_gaps() -> None:
    for unit in ("hour", "day", "week", "month", "quarter"):
        w = window(unit, "Europe/Berlin")
        at = ns("2026-01-01T00:00:00+00:00")
        for _ in range(30):
            low, high = w.bounds(at)
            assert low <= at < high
            assert w.bounds(high)[0] == high
            at = high + 1


def test_rolling_windows_are_bucketed() -> None:
    minute = parse_window("1m", load_zone("UTC"))
    assert isinstance(minute, RollingWindow)
    assert (minute.bucket_ns, minute.buckets, minute.label) == (NS, 60, "rolling 1m")
    day = parse_window("24h", load_zone("UTC"))
    assert isinstance(day, RollingWindow)
    assert (day.bucket_ns, day.buckets) == (1440 * NS, 60)
    odd = parse_window("90s", load_zone("UTC"))
    assert isinstance(odd, RollingWindow)
    assert (odd.bucket_ns, odd.buckets) == (NS, 90)
    now = ns("2026-03-14T10:00:00")
    assert minute.first_bucket(now) == now // NS - 59
    assert minute.bucket_leaves_at(minute.first_bucket(now)) == now + NS


@pytest.mark.parametrize("spec", ["fortnight", "500ms", "1.5s", "", "monthly"])
def test_bad_windows_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match=r"window|rolling|duration|whole"):
        parse_window(spec, load_zone("UTC"))


def test_unknown_zone_is_named() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        load_zone("Mars/Olympus")


def test_rolling_buckets_cover_the_duration() -> None:
    for spec, seconds in (("1m", 60), ("5m", 300), ("1h", 3600), ("7d", 7 * 86400), ("61s", 61)):
        w = parse_window(spec, load_zone("UTC"))
        assert isinstance(w, RollingWindow)
        covered = w.buckets * w.bucket_ns
        assert seconds * NS <= covered < seconds * NS + w.bucket_ns
        assert timedelta(seconds=w.bucket_ns / NS) >= timedelta(seconds=1)
