"""The forecasting method behind the ``forecast`` report: daily spend -> the days ahead, with an
interval calibrated on the series' own history.

**The model.** A day's spend is a trend times a day-of-week factor::

    spend(t) = max(0, level + slope * t) * factor[weekday(t)]

* ``factor`` is the classical ratio-to-moving-average: each day divided by the centred 7-day
  mean around it (which a linear trend does not move), the median of those ratios per weekday,
  scaled so the seven factors average 1. A weekday a scope never spends on gets 0. With fewer
  than :data:`MIN_SEASONAL_DAYS` days every factor is 1.
* ``level`` and ``slope`` are the Theil-Sen line through the de-seasonalised days (each day
  divided by its factor): the slope is the median of the slopes between every pair of days,
  the level the median of what is left. Medians make one-off spikes (an incident, a backfill)
  move the line very little, where least squares would follow them. With fewer than
  :data:`MIN_TREND_DAYS` days the slope is 0.

**The interval** is not a formula assuming normal errors: it is how wrong the same method has
been on this same series. From every earlier day with at least :data:`MIN_BACKTEST_FIT_DAYS`
days before it (a rolling origin), the model is fit on the days before it and its forecast of
the next ``h`` days' total is compared with what was spent: ``ratio = actual / forecast``. For a
horizon of ``h`` days the interval is the forecast times the low and high empirical quantiles of
those ratios, at levels widened for the finite number of origins the way split-conformal
prediction does (``ceil((n + 1) * q) / n``). A horizon longer than any back-tested one with at
least :data:`MIN_ORIGINS` origins is *extrapolated*: the relative error of the longest
calibrated horizon grows in proportion to the horizon (wider, on purpose), and the result says
so in its ``basis``. Without that much history there is no interval at all, rather than one
that only looks precise.

Everything here is float arithmetic on estimates; the report adds the exact spend to date.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "F64",
    "MIN_BACKTEST_FIT_DAYS",
    "MIN_ORIGINS",
    "MIN_SEASONAL_DAYS",
    "MIN_TREND_DAYS",
    "Backtest",
    "DailyModel",
    "backtest",
    "fit_daily",
]

F64 = npt.NDArray[np.float64]

MIN_SEASONAL_DAYS: Final = 21
"""Days needed before weekday factors are estimated: each weekday then has at least two ratios."""
MIN_TREND_DAYS: Final = 7
"""Days needed before a slope is estimated."""
MIN_BACKTEST_FIT_DAYS: Final = 28
"""Days a back-test origin needs before it; four weeks give both factors and a slope."""
MIN_ORIGINS: Final = 10
"""Back-tested forecasts a horizon needs before its quantiles are used."""
_MIN_FACTOR: Final = 0.05
"""Below this a weekday is treated as a day off: it says nothing about the trend."""


@dataclass(frozen=True, slots=True)
class DailyModel:
    """A fitted trend and day-of-week factors; day 0 is the first day fitted."""

    level: float
    slope: float
    factors: tuple[float, ...]
    """Seven multiplicative factors, Monday first, averaging 1 (or all 1)."""
    first_weekday: int
    """Weekday of day 0, Monday = 0."""
    days: int
    """Days fitted; :meth:`predict` starts at day ``days``."""

    def predict(self, steps: int) -> F64:
        """Expected spend of the ``steps`` days after the fitted ones."""
        t = np.arange(self.days, self.days + steps, dtype=np.float64)
        weekdays = (self.first_weekday + np.arange(self.days, self.days + steps)) % 7
        base = np.maximum(self.level + self.slope * t, 0.0)
        return np.asarray(base * np.asarray(self.factors)[weekdays], dtype=np.float64)


def _weekday_factors(y: F64, weekdays: npt.NDArray[np.int64]) -> F64:
    n = len(y)
    factors = np.ones(7)
    if n < MIN_SEASONAL_DAYS:
        return factors
    moving = np.convolve(y, np.full(7, 1 / 7), mode="valid")  # centred on days 3 .. n-4
    centre, days = y[3 : n - 3], weekdays[3 : n - 3]
    usable = moving > 0
    ratios, days = centre[usable] / moving[usable], days[usable]
    for weekday in range(7):
        chosen = ratios[days == weekday]
        if chosen.size >= 2:
            factors[weekday] = float(np.median(chosen))
    mean = factors.mean()
    return factors / mean if mean > 0 else np.ones(7)


def fit_daily(y: F64, first_weekday: int) -> DailyModel:
    """Fit :class:`DailyModel` to the daily spend ``y`` (day 0 a ``first_weekday``, Monday 0)."""
    n = len(y)
    if n == 0:
        return DailyModel(0.0, 0.0, (1.0,) * 7, first_weekday, 0)
    weekdays = (first_weekday + np.arange(n)) % 7
    factors = _weekday_factors(y, weekdays)
    day_factor = factors[weekdays]
    working = day_factor >= _MIN_FACTOR
    t = np.arange(n, dtype=np.float64)[working]
    z = y[working] / day_factor[working]
    if z.size == 0:
        return DailyModel(0.0, 0.0, tuple(float(f) for f in factors), first_weekday, n)
    slope = 0.0
    if z.size >= MIN_TREND_DAYS:
        i, j = np.triu_indices(z.size, 1)
        slope = float(np.median((z[j] - z[i]) / (t[j] - t[i])))
    level = float(np.median(z - slope * t))
    return DailyModel(level, slope, tuple(float(f) for f in factors), first_weekday, n)


@dataclass(frozen=True, slots=True)
class Backtest:
    """Ratios ``actual / forecast`` of the h-day totals forecast from earlier days of a series."""

    ratios: F64
    """Shape (origins, horizon): row = an origin, column h-1 = the total of its next h days;
    NaN where the days were not yet known (or the forecast was 0)."""

    def origins(self, horizon: int) -> int:
        """How many back-tested forecasts of an ``horizon``-day total there are."""
        if horizon < 1 or horizon > self.ratios.shape[1]:
            return 0
        return int(np.count_nonzero(~np.isnan(self.ratios[:, horizon - 1])))

    def bounds(self, horizon: int, coverage: float) -> tuple[float, float, str] | None:
        """``(low, high, basis)`` multipliers of an ``horizon``-day forecast total covering
        ``coverage`` of outcomes, or None without enough history; ``basis`` says how they were
        found (module docstring)."""
        calibrated = self._calibrated(horizon, coverage)
        if calibrated is not None:
            low, high = calibrated
            return low, high, f"backtest of {self.origins(horizon)} forecasts"
        longest = next(
            (h for h in range(min(horizon, self.ratios.shape[1]), 0, -1) if self.origins(h) >= MIN_ORIGINS),
            None,
        )
        if longest is None:
            return None
        low, high = self._calibrated(longest, coverage) or (1.0, 1.0)
        stretch = horizon / longest
        return (
            max(0.0, 1 - (1 - low) * stretch),
            1 + (high - 1) * stretch,
            f"extrapolated from a {longest}-day backtest of {self.origins(longest)} forecasts",
        )

    def _calibrated(self, horizon: int, coverage: float) -> tuple[float, float] | None:
        n = self.origins(horizon)
        if n < MIN_ORIGINS:
            return None
        column = self.ratios[:, horizon - 1]
        values = np.sort(column[~np.isnan(column)])
        tail = (1 - coverage) / 2
        # Split-conformal ranks: the k-th smallest of n covers a new outcome with probability
        # k / (n + 1), so plain empirical quantiles of few origins would be too narrow.
        high_rank = min(n, math.ceil((n + 1) * (1 - tail)))
        low_rank = max(1, math.floor((n + 1) * tail))
        return float(values[low_rank - 1]), float(values[high_rank - 1])


def backtest(y: F64, first_weekday: int, horizon: int, history_days: int) -> Backtest:
    """Refit the model at every origin of ``y`` with enough days before it (each fit on at most
    ``history_days`` days, as the forecast itself is) and compare its next ``horizon`` days'
    totals with the actual ones."""
    n = len(y)
    min_fit = min(history_days, MIN_BACKTEST_FIT_DAYS)
    origins = range(min_fit, n)
    ratios = np.full((len(origins), max(horizon, 0)), np.nan)
    if horizon <= 0:
        return Backtest(ratios)
    cumulative = np.concatenate([[0.0], np.cumsum(y)])
    for row, origin in enumerate(origins):
        start = max(0, origin - history_days)
        model = fit_daily(y[start:origin], (first_weekday + start) % 7)
        steps = min(horizon, n - origin)
        forecast = np.cumsum(model.predict(steps))
        actual = cumulative[origin + 1 : origin + steps + 1] - cumulative[origin]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios[row, :steps] = np.where(forecast > 0, actual / forecast, np.nan)
    return Backtest(ratios)
