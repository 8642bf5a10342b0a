"""forecast: where the month and the quarter will end, for each team, feature and budget, and
how good such forecasts have been.

``--period`` picks the month (or quarter) projected, default the current one. The projection
is made *as of* now, or as of the period's end for a period that is over (then nothing is left
to forecast and the back-test below is about that month). Sections:

``projection``
    One row per scope and period (the month, and the quarter it is in): ``scope_kind`` is
    ``total``, a ``--by`` dimension (default ``team`` then ``feature``, each one kind; the
    ``--top`` biggest scopes of each by recent spend) or ``budget``. ``actual_to_date`` is the
    exact spend of the period up to ``as_of``; ``forecast_remaining`` the estimate of the rest;
    ``projected`` their sum, with ``low``/``high`` covering ``interval`` of outcomes;
    ``run_rate`` the naive straight line (spend to date scaled to the whole period), to compare.
``budgets``
    One row per instance of each month or quarter budget (``'*'`` scope dimensions give one
    instance per value): ``spent`` in the open window, ``limit``, the projection in the budget's
    own metric, ``runs_out_on`` (the day the projected cumulative spend reaches the limit; the
    actual day when it already has; NULL when it does not within the window),
    ``runs_out_earliest`` (the same for the high end of the interval) and ``status``:
    ``exceeded``, ``will_exceed``, ``at_risk`` (only the high end reaches the limit) or
    ``on_track``.
``backtest``
    The forecast this report would have made as of the 15th (00:00 UTC) of the month before
    (or of the period itself when it is over), per total and scope of the first ``--by``
    dimension, next to the actual month total: ``error = actual - forecast``, ``error_ratio =
    error / actual``, and whether the actual fell ``inside`` the interval.

The method (otelcost/reports/forecast_model.py): a Theil-Sen trend times day-of-week factors fit
on the last ``reports.forecast.history_days`` complete days of each scope's daily spend; the
interval from the ratios of actual to forecast of the same method refit at earlier days
(``reports.forecast.backtest_days`` more days), never from a normal-error formula. Days are UTC
days (budgets: days of the budget's ``timezone``; one without is taken in UTC). Today counts as
spent so far plus whatever of the day's forecast is not spent yet.

Money: ``actual_to_date``, ``spent``, ``limit`` and the back-test actuals are exact sums from the
lake; forecast amounts are estimates rounded to 1e-6 USD, in the same DECIMAL(38, 12) columns.
Team and feature rows are in ``reports.forecast.cost`` (default ``effective_cost_usd``); filters
narrow them and the back-test, never a budget (its spend is what its limit is checked against).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from otelcost.budgets.config import MONEY_METRICS, BudgetConfig
from otelcost.budgets.scope import Scope
from otelcost.budgets.windows import CalendarWindow, load_zone
from otelcost.errors import ReportError
from otelcost.policy.decisions import format_scope
from otelcost.reports.base import ReportContext, ReportRequest, ReportResult, register
from otelcost.reports.config import ForecastConfig
from otelcost.reports.dimensions import DIMENSIONS, calls_where
from otelcost.reports.forecast_model import F64, MIN_ORIGINS, Backtest, backtest, fit_daily
from otelcost.reports.period import Period, parse_period
from otelcost.schema import MONEY_TYPE

__all__ = [
    "BACKTEST_DAY",
    "BACKTEST_SCHEMA",
    "BUDGETS_SCHEMA",
    "DEFAULT_BY",
    "ESTIMATE_QUANTUM",
    "PROJECTION_SCHEMA",
    "Projection",
    "Span",
    "budget_sql",
    "forecast",
    "project",
    "runs_out",
    "scopes_sql",
]

DEFAULT_BY: Final = ("team", "feature")
BACKTEST_DAY: Final = 15
"""The back-test forecasts a month as of 00:00 UTC on this day: half of it known, half not."""
ESTIMATE_QUANTUM: Final = Decimal("0.000001")
"""Forecast amounts are estimates; finer digits than a millionth of a dollar would be noise."""

_UTC: Final = ZoneInfo("UTC")
_TIMESTAMP: Final = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True, slots=True)
class Span:
    """A month or quarter being projected: its label, its days ``[first_day, end_day)`` and the
    instants they cover (local midnights for a budget in a time zone)."""

    kind: str
    label: str
    first_day: date
    end_day: date
    start: datetime
    end: datetime

    @classmethod
    def of(cls, period: Period) -> Span:
        return cls(
            period.unit, period.label, period.start.date(), period.end.date(), period.start, period.end
        )


@dataclass(frozen=True, slots=True)
class Projection:
    """One scope's projection of one span; money Decimal (actuals exact, estimates to 1e-6)."""

    span: Span
    actual_to_date: Decimal
    forecast_remaining: Decimal
    projected: Decimal
    low: Decimal | None
    high: Decimal | None
    days_remaining: int
    fit_days: int
    backtest_forecasts: int
    basis: str
    path: tuple[tuple[date, Decimal, Decimal | None], ...]
    """Each remaining day with the cumulative projected spend of the span by its end, and the
    cumulative high end of the interval (None without an interval)."""
    spent_by_day: tuple[tuple[date, Decimal], ...]
    """Each day of the span so far with the exact cumulative spend by its end (today: by now)."""


def _estimate(value: float) -> Decimal:
    return Decimal(max(value, 0.0)).quantize(ESTIMATE_QUANTUM)


def _days(first: date, end: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((end - first).days)]


def project(
    daily: Mapping[date, Decimal],
    today: date,
    spans: Sequence[Span],
    *,
    load_start: date,
    history_days: int,
    coverage: float,
) -> list[Projection]:
    """Project ``spans`` (each containing ``today``, or over) from the exact ``daily`` spend.

    ``daily`` holds the days from ``load_start`` on; ``today``'s entry, if any, is the spend so far
    today. The model is fit on the last ``history_days`` complete days from the scope's first
    day with spend; the interval comes from back-testing on all of them.
    """
    history = _days(load_start, today)
    y = np.array([float(daily.get(day, 0)) for day in history], dtype=np.float64)
    nonzero = np.flatnonzero(y)
    first = int(nonzero[0]) if nonzero.size else len(y)
    y, first_day = y[first:], load_start + timedelta(days=first)
    fitted = y[-history_days:]
    fit_start = first_day + timedelta(days=len(y) - len(fitted))
    model = fit_daily(fitted, fit_start.weekday())
    horizons = {span: max(0, (span.end_day - today).days) for span in spans}
    longest = max(horizons.values(), default=0)
    path = model.predict(longest)
    tested = backtest(y, first_day.weekday(), longest, history_days) if longest else None
    return [
        _projection(
            daily,
            today,
            span,
            horizon=horizons[span],
            path=path,
            tested=tested,
            fit_days=len(fitted),
            coverage=coverage,
        )
        for span in spans
    ]


def _projection(
    daily: Mapping[date, Decimal],
    today: date,
    span: Span,
    *,
    horizon: int,
    path: F64,
    tested: Backtest | None,
    fit_days: int,
    coverage: float,
) -> Projection:
    known = _days(span.first_day, min(span.end_day, today + timedelta(days=1)))
    cumulative, spent_by_day = Decimal(0), []
    for day in known:
        cumulative += daily.get(day, Decimal(0))
        spent_by_day.append((day, cumulative))
    actual = cumulative
    if horizon == 0:
        return Projection(
            span=span,
            actual_to_date=actual,
            forecast_remaining=Decimal(0),
            projected=actual,
            low=actual,
            high=actual,
            days_remaining=0,
            fit_days=fit_days,
            backtest_forecasts=0,
            basis="period over",
            path=(),
            spent_by_day=tuple(spent_by_day),
        )
    today_spent = daily.get(today, Decimal(0))
    before_today = actual - today_spent
    ahead = path[:horizon]
    ahead_total = np.cumsum(ahead)
    # Today is already partly spent: the forecast adds only what of the day's forecast is not.
    today_rest = max(float(ahead[0]) - float(today_spent), 0.0)
    remaining = _estimate(today_rest + float(ahead_total[-1] - ahead[0]))
    projected = actual + remaining
    origins = tested.origins(horizon) if tested is not None else 0
    bounds = tested.bounds(horizon, coverage) if tested is not None else None
    low = high = None
    if bounds is not None:
        low_factor, high_factor, basis = bounds
        # The days ahead include what today already spent: they cannot total less than that.
        low = min(before_today + max(_estimate(float(ahead_total[-1]) * low_factor), today_spent), projected)
        high = max(
            before_today + max(_estimate(float(ahead_total[-1]) * high_factor), today_spent), projected
        )
    elif fit_days == 0:
        basis = "no complete day of history"
    else:
        basis = f"no interval: {origins} back-tested forecasts of {horizon} days, {MIN_ORIGINS} needed"
    steps = []
    for k in range(horizon):
        # Computed like ``projected``, so the last day's figures are the row's projected and high.
        point = actual + _estimate(today_rest + float(ahead_total[k] - ahead[0]))
        top: Decimal | None = None
        if tested is not None and (day_bounds := tested.bounds(k + 1, coverage)) is not None:
            top = before_today + max(today_spent, _estimate(float(ahead_total[k]) * day_bounds[1]))
            top = max(top, point)
        steps.append((today + timedelta(days=k), point, top))
    return Projection(
        span=span,
        actual_to_date=actual,
        forecast_remaining=remaining,
        projected=projected,
        low=low,
        high=high,
        days_remaining=horizon,
        fit_days=fit_days,
        backtest_forecasts=origins,
        basis=basis,
        path=tuple(steps),
        spent_by_day=tuple(spent_by_day),
    )


def runs_out(projection: Projection, limit: Decimal) -> tuple[date | None, date | None]:
    """``(runs_out_on, runs_out_earliest)``: the first day the cumulative spend of the span
    reaches ``limit``, projected and at the high end; the actual day when it already has."""
    for day, spent in projection.spent_by_day:
        if spent >= limit:
            return day, day
    on = next((day for day, point, _ in projection.path if point >= limit), None)
    earliest = next((day for day, _, top in projection.path if top is not None and top >= limit), None)
    return on, earliest


# -- reading the lake ---------------------------------------------------------------------------------


def scopes_sql(dimensions: Sequence[str], cost: str, where: str) -> str:
    """Exact daily spend of the total and of every value of each dimension, in one scan.

    ``dimensions`` are canonical names (their SQL comes from DIMENSIONS), ``cost`` a cost column.
    """
    picked = "".join(f", {DIMENSIONS[d]} AS s{i}" for i, d in enumerate(dimensions))
    flags = "".join(f", grouping(s{i}) AS g{i}" for i in range(len(dimensions)))
    keys = "".join(f", s{i}" for i in range(len(dimensions)))
    sets = ", ".join(["(day)", *(f"(day, s{i})" for i in range(len(dimensions)))])
    return f"""
WITH calls AS (
    SELECT date AS day{picked}, {cost} AS cost
    FROM llm_calls
    WHERE {where}
)
SELECT day{keys}{flags}, sum(cost)::DECIMAL(38, 12) AS cost
FROM calls
GROUP BY GROUPING SETS ({sets})
"""


ScopeKey = tuple[str, str | None]
"""(scope_kind, scope): ``("total", None)``, ``("team", "payments")``, ``("team", None)`` ..."""


def _scope_series(
    context: ReportContext,
    dimensions: Sequence[str],
    cost: str,
    period: Period,
    filters: Sequence[tuple[str, str]],
) -> dict[ScopeKey, dict[date, Decimal]]:
    where, params = calls_where(period, filters)
    table = context.query(scopes_sql(dimensions, cost, where), params)
    series: dict[ScopeKey, dict[date, Decimal]] = defaultdict(dict)
    for row in table.to_pylist():
        kind: ScopeKey = ("total", None)
        for index, dimension in enumerate(dimensions):
            if row[f"g{index}"] == 0:
                kind = (dimension, row[f"s{index}"])
        series[kind][row["day"]] = row["cost"]
    return series


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def budget_sql(scope: Scope, metric: str, local_days: bool) -> tuple[str, dict[str, object]]:
    """Exact daily spend of each instance of a budget scope (``metric`` a money metric), the
    params of its fixed terms; ``$start``/``$end`` and ``$first_day``/``$last_day`` bound it."""
    keys = "".join(f", {_ident(dim)} AS k{i}" for i, dim in enumerate(scope.wildcards))
    conditions = [f"{_ident(dim)} IS NOT NULL" for dim in scope.wildcards]
    params: dict[str, object] = {}
    for f, (dim, values) in enumerate(scope.fixed):
        names = [f"f{f}_{v}" for v in range(len(values))]
        params |= dict(zip(names, values, strict=True))
        conditions.append(f"{_ident(dim)} IN ({', '.join('$' + n for n in names)})")
    day = "CAST(timezone($zone, ts) AS DATE)" if local_days else "date"
    where = " AND ".join(["date BETWEEN $first_day AND $last_day", "ts >= $start", "ts < $end", *conditions])
    group = "".join(f", k{i}" for i in range(len(scope.wildcards)))
    sql = f"""
SELECT {day} AS day{keys}, sum({metric})::DECIMAL(38, 12) AS amount
FROM llm_calls
WHERE {where}
GROUP BY {day}{group}
"""
    return sql, params


# -- the report ---------------------------------------------------------------------------------------


def _quarter_of(day: date) -> Period:
    return parse_period(f"{day.year}-Q{(day.month - 1) // 3 + 1}")


def _month_of(day: date) -> Period:
    return parse_period(f"{day.year}-{day.month:02d}")


def _midnight(day: date, zone: ZoneInfo = _UTC) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _run_rate(projection: Projection, as_of: datetime) -> Decimal | None:
    span = projection.span
    elapsed = (min(as_of, span.end) - span.start).total_seconds()
    if elapsed <= 0:
        return None
    whole = (span.end - span.start).total_seconds()
    return (projection.actual_to_date * Decimal(whole) / Decimal(elapsed)).quantize(ESTIMATE_QUANTUM)


PROJECTION_SCHEMA: Final = pa.schema(
    [
        ("scope_kind", pa.string()),
        ("scope", pa.string()),
        ("period", pa.string()),
        ("period_label", pa.string()),
        ("as_of", _TIMESTAMP),
        ("days_remaining", pa.int64()),
        ("actual_to_date", MONEY_TYPE),
        ("forecast_remaining", MONEY_TYPE),
        ("projected", MONEY_TYPE),
        ("low", MONEY_TYPE),
        ("high", MONEY_TYPE),
        ("interval", pa.float64()),
        ("run_rate", MONEY_TYPE),
        ("fit_days", pa.int64()),
        ("backtest_forecasts", pa.int64()),
        ("interval_basis", pa.string()),
    ]
)

BUDGETS_SCHEMA: Final = pa.schema(
    [
        ("budget", pa.string()),
        ("scope", pa.string()),
        ("window", pa.string()),
        ("window_label", pa.string()),
        ("metric", pa.string()),
        ("limit", MONEY_TYPE),
        ("spent", MONEY_TYPE),
        ("projected", MONEY_TYPE),
        ("low", MONEY_TYPE),
        ("high", MONEY_TYPE),
        ("projected_share", pa.float64()),
        ("runs_out_on", pa.date32()),
        ("runs_out_earliest", pa.date32()),
        ("status", pa.string()),
        ("interval_basis", pa.string()),
    ]
)

BACKTEST_SCHEMA: Final = pa.schema(
    [
        ("scope_kind", pa.string()),
        ("scope", pa.string()),
        ("month", pa.string()),
        ("as_of", _TIMESTAMP),
        ("actual_to_as_of", MONEY_TYPE),
        ("forecast", MONEY_TYPE),
        ("low", MONEY_TYPE),
        ("high", MONEY_TYPE),
        ("actual", MONEY_TYPE),
        ("error", MONEY_TYPE),
        ("error_ratio", pa.float64()),
        ("inside", pa.bool_()),
        ("interval", pa.float64()),
        ("interval_basis", pa.string()),
    ]
)


def _table(rows: list[dict[str, object]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def _projection_row(
    kind: str, scope: str | None, projection: Projection, as_of: datetime, coverage: float
) -> dict[str, object]:
    return {
        "scope_kind": kind,
        "scope": scope,
        "period": projection.span.kind,
        "period_label": projection.span.label,
        "as_of": as_of,
        "days_remaining": projection.days_remaining,
        "actual_to_date": projection.actual_to_date,
        "forecast_remaining": projection.forecast_remaining,
        "projected": projection.projected,
        "low": projection.low,
        "high": projection.high,
        "interval": coverage,
        "run_rate": _run_rate(projection, as_of),
        "fit_days": projection.fit_days,
        "backtest_forecasts": projection.backtest_forecasts,
        "interval_basis": projection.basis,
    }


def _top(
    series: Mapping[ScopeKey, Mapping[date, Decimal]], kind: str, since: date, until: date, top: int
) -> tuple[list[ScopeKey], int]:
    """The ``top`` scopes of ``kind`` by spend in ``[since, until]``, and how many more there are."""
    keys = [key for key in series if key[0] == kind]
    spend = {key: sum((v for d, v in series[key].items() if since <= d <= until), Decimal(0)) for key in keys}
    keys.sort(key=lambda key: (-spend[key], key[1] is None, key[1] or ""))
    return keys[:top], max(0, len(keys) - top)


def _targets(period: Period, as_of: datetime) -> tuple[Period, Period]:
    """The month and the quarter projected: the requested one and the other containing as_of."""
    last_moment = (as_of - timedelta(microseconds=1)).date()
    if period.unit == "month":
        return period, _quarter_of(period.start.date())
    return _month_of(last_moment), period


@register(
    "forecast",
    "Month-end and quarter-end projection per team, feature and budget, with an interval and a back-test.",
)
def forecast(context: ReportContext, request: ReportRequest) -> ReportResult:
    """The ``projection``, ``budgets`` and ``backtest`` sections of ``request``'s month."""
    now = context.now()
    period = request.resolved_period(now)
    if period.unit not in ("month", "quarter"):
        raise ReportError(
            f"the forecast projects a month or a quarter (--period 2026-11 or 2026-Q4), not {period.label!r}"
        )
    if now <= period.start:
        raise ReportError(
            f"{period.label} has not started yet: the forecast projects a period under way or over"
        )
    config: ForecastConfig = context.config.forecast
    coverage = float(config.interval)
    as_of = min(now, period.end)
    month, quarter = _targets(period, as_of)
    by = request.by or DEFAULT_BY
    today = as_of.date()
    reach = config.history_days + config.backtest_days
    load_start = today - timedelta(days=reach)

    tested_month = month if as_of >= month.end else month.previous()
    tested_month = Period(tested_month.start, tested_month.end, tested_month.start.strftime("%Y-%m"), "month")
    tested_as_of = tested_month.start + timedelta(days=BACKTEST_DAY - 1)
    tested_today = tested_as_of.date()
    tested_load_start = tested_today - timedelta(days=reach)

    loaded = Period(_midnight(min(load_start, tested_load_start)), as_of, "forecast history")
    series = _scope_series(context, by, config.cost, loaded, request.filters)
    notes = [
        f"as of {as_of.isoformat()}: actual spend is exact; forecasts are estimates rounded to 1e-6 USD, "
        f"with {coverage:.0%} intervals from back-tested forecasts ({config.cost}; days in UTC)",
    ]

    spans = [Span.of(month), Span.of(quarter)]
    rows: list[dict[str, object]] = []
    recent = today - timedelta(days=config.history_days)
    chosen: list[ScopeKey] = [("total", None)]
    for kind in by:
        keys, omitted = _top(series, kind, recent, today, request.top)
        chosen += keys
        if omitted:
            notes.append(f"{omitted} more {kind} scopes are not shown (--top {request.top})")
    for key in chosen:
        daily = {day: amount for day, amount in series.get(key, {}).items() if day >= load_start}
        found = project(
            daily, today, spans, load_start=load_start, history_days=config.history_days, coverage=coverage
        )
        rows += [_projection_row(key[0], key[1], p, as_of, coverage) for p in found]

    budget_rows, budget_projection_rows = _budgets(context, config, as_of, notes)
    rows += budget_projection_rows
    if request.filters and budget_rows:
        notes.append("filters narrow the team, feature and back-test rows, not the budgets")

    backtest_rows = _backtest(
        series,
        by[0],
        tested_month,
        as_of=tested_as_of,
        load_start=tested_load_start,
        config=config,
        coverage=coverage,
        top=request.top,
    )
    inside = [row["inside"] for row in backtest_rows if row["inside"] is not None]
    if inside:
        notes.append(
            f"back-test of {tested_month.label} (forecast as of {tested_as_of.date().isoformat()}): "
            f"{sum(1 for v in inside if v)} of {len(inside)} actual totals inside the {coverage:.0%} interval"
        )
    sections = {
        "projection": _table(rows, PROJECTION_SCHEMA),
        "budgets": _table(budget_rows, BUDGETS_SCHEMA),
        "backtest": _table(backtest_rows, BACKTEST_SCHEMA),
    }
    return ReportResult("forecast", period, sections, tuple(notes))


def _backtest(
    series: Mapping[ScopeKey, Mapping[date, Decimal]],
    kind: str,
    month: Period,
    *,
    as_of: datetime,
    load_start: date,
    config: ForecastConfig,
    coverage: float,
    top: int,
) -> list[dict[str, object]]:
    today = as_of.date()
    span = Span.of(month)
    keys, _ = _top(series, kind, span.first_day, span.end_day - timedelta(days=1), top)
    rows: list[dict[str, object]] = []
    for key in [("total", None), *keys]:
        full = series.get(key, {})
        actual = sum((v for d, v in full.items() if span.first_day <= d < span.end_day), Decimal(0))
        known = {d: v for d, v in full.items() if load_start <= d < today}
        (projection,) = project(
            known, today, [span], load_start=load_start, history_days=config.history_days, coverage=coverage
        )
        forecast_total = projection.projected
        error = actual - forecast_total
        inside = None
        if projection.low is not None and projection.high is not None:
            inside = projection.low <= actual <= projection.high
        rows.append(
            {
                "scope_kind": key[0],
                "scope": key[1],
                "month": month.label,
                "as_of": as_of,
                "actual_to_as_of": projection.actual_to_date,
                "forecast": forecast_total,
                "low": projection.low,
                "high": projection.high,
                "actual": actual,
                "error": error,
                "error_ratio": None if actual == 0 else round(float(error / actual), 6),
                "inside": inside,
                "interval": coverage,
                "interval_basis": projection.basis,
            }
        )
    return rows


def _status(spent: Decimal, projection: Projection, limit: Decimal) -> str:
    if spent >= limit:
        return "exceeded"
    if projection.projected >= limit:
        return "will_exceed"
    if projection.high is not None and projection.high >= limit:
        return "at_risk"
    return "on_track"


def _budgets(
    context: ReportContext, config: ForecastConfig, as_of: datetime, notes: list[str]
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The budgets section, and the budgets' rows of the projection section."""
    rows: list[dict[str, object]] = []
    projection_rows: list[dict[str, object]] = []
    coverage = float(config.interval)
    for budget in context.budgets:
        window = budget.window.strip()
        if window not in ("month", "quarter"):
            notes.append(
                f"budget {budget.name}: a {window!r} window is not projected (month and quarter are)"
            )
            continue
        if budget.metric not in MONEY_METRICS:
            notes.append(
                f"budget {budget.name}: a {budget.metric} budget is not projected (cost budgets are)"
            )
            continue
        for instance, projection in _budget_instances(context, config, budget, window, as_of):
            spent = projection.actual_to_date
            on, earliest = runs_out(projection, budget.limit)
            label = f"{budget.name} {instance}"
            rows.append(
                {
                    "budget": budget.name,
                    "scope": instance,
                    "window": window,
                    "window_label": projection.span.label,
                    "metric": budget.metric,
                    "limit": budget.limit,
                    "spent": spent,
                    "projected": projection.projected,
                    "low": projection.low,
                    "high": projection.high,
                    "projected_share": round(float(projection.projected / budget.limit), 6),
                    "runs_out_on": on,
                    "runs_out_earliest": earliest,
                    "status": _status(spent, projection, budget.limit),
                    "interval_basis": projection.basis,
                }
            )
            projection_rows.append(_projection_row("budget", label, projection, as_of, coverage))
    return rows, projection_rows


def _budget_instances(
    context: ReportContext, config: ForecastConfig, budget: BudgetConfig, unit: str, as_of: datetime
) -> list[tuple[str, Projection]]:
    zone = load_zone(budget.timezone or "UTC")
    local_days = zone.key != "UTC"
    calendar = CalendarWindow("month" if unit == "month" else "quarter", zone)
    # The window open just before as_of: for a period that is over, the one that just closed.
    at = as_of - timedelta(microseconds=1)
    start_ns, end_ns = calendar.bounds(int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000)
    start = datetime.fromtimestamp(start_ns / 1e9, UTC).astimezone(zone)
    end = datetime.fromtimestamp(end_ns / 1e9, UTC).astimezone(zone)
    first_day, end_day = start.date(), end.date()
    label = (
        f"{first_day.year}-{first_day.month:02d}"
        if unit == "month"
        else (f"{first_day.year}-Q{(first_day.month - 1) // 3 + 1}")
    )
    span = Span(unit, label, first_day, end_day, start.astimezone(UTC), end.astimezone(UTC))
    today = as_of.astimezone(zone).date()
    reach = config.history_days + config.backtest_days
    load_start = min(today - timedelta(days=reach), first_day)
    scope = Scope.of(budget.scope)
    sql, params = budget_sql(scope, budget.metric, local_days)
    since = _midnight(load_start, zone)
    params |= {
        "start": since,
        "end": as_of,
        "first_day": since.date(),
        "last_day": as_of.date(),
    }
    if local_days:
        params["zone"] = zone.key
    table = context.query(sql, params)
    by_instance: dict[tuple[str, ...], dict[date, Decimal]] = defaultdict(dict)
    for row in table.to_pylist():
        key = tuple(str(row[f"k{i}"]) for i in range(len(scope.wildcards)))
        by_instance[key][row["day"]] = row["amount"]
    if not scope.wildcards:
        by_instance.setdefault((), {})
    recent = today - timedelta(days=config.history_days)
    out: list[tuple[str, Projection]] = []
    for key in sorted(by_instance):
        daily = by_instance[key]
        if scope.wildcards and not any(day >= min(recent, first_day) for day in daily):
            continue  # an instance that stopped spending long ago is not a budget at risk
        (projection,) = project(
            daily,
            today,
            [span],
            load_start=load_start,
            history_days=config.history_days,
            coverage=float(config.interval),
        )
        out.append((format_scope(scope.instance_scope(key)), projection))
    return out
