"""forecast over a lake of known traffic: a growing team, a steady one, budgets, the back-test.

The lake holds August to November 2026, sent through the real pipeline; the report is run as of
16 November 12:00 UTC, so the rest of November is in the lake but not visible to it, and what it
projects can be checked against what was then spent (``cost_of``, hand arithmetic).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from otelcost.budgets.config import BudgetConfig
from otelcost.cli import main
from otelcost.config import Config, report_context
from otelcost.errors import ReportError
from otelcost.reports import ReportContext, ReportRequest, ReportResult, run_report
from otelcost.reports.config import ForecastConfig
from otelcost.reports.forecast_model import backtest, fit_daily
from tests.reports.traffic import Call, build_lake, cost_of, day_start

FIRST_DAY = date(2026, 8, 1)
DAYS = 122  # to 30 November
NOW = datetime(2026, 11, 16, 12, tzinfo=UTC)  # a Monday, mid-month, mid-day


def traffic() -> list[Call]:
    """``growth``: gpt-4o calls growing by a quarter call a day, weekends at 40 %; ``steady``:
    gpt-4o-mini, 20 calls a weekday and 10 a weekend day; both +-10 % a day, 08:00-18:00."""
    rng = random.Random(7)
    calls: list[Call] = []
    for offset in range(DAYS):
        day = FIRST_DAY + timedelta(days=offset)
        weekend = day.isoweekday() >= 6
        plan = (
            ("growth-app", "growth", "assistant", "gpt-4o", (8 + 0.25 * offset) * (0.4 if weekend else 1)),
            ("search", "steady", "search", "gpt-4o-mini", 10 if weekend else 20),
        )
        for service, team, feature, model, per_day in plan:
            for _ in range(round(per_day * rng.uniform(0.9, 1.1))):
                moment = day_start(day) + timedelta(seconds=rng.randint(8 * 3600, 18 * 3600 - 1))
                calls.append(
                    Call(moment, service, team, feature, model, input_tokens=2_000, output_tokens=300)
                )
    return calls


@dataclass(frozen=True)
class Lake:
    calls: list[Call]
    config: Config

    def context(self, *budgets: BudgetConfig, now: datetime = NOW, **forecast: object) -> ReportContext:
        base = report_context(self.config)
        reports = base.config.model_copy(update={"forecast": ForecastConfig.model_validate(forecast)})
        return replace(base, now=lambda: now, budgets=budgets, config=reports)

    def spend(self, team: str | None, start: datetime, end: datetime) -> Decimal:
        chosen = (c for c in self.calls if (team is None or c.team == team) and start <= c.ts < end)
        return sum((cost_of(c) for c in chosen), Decimal(0))

    def cumulative_by_day(self, team: str, first: date, last: date) -> dict[date, Decimal]:
        out, total = {}, Decimal(0)
        for n in range((last - first).days + 1):
            day = first + timedelta(days=n)
            total += self.spend(team, day_start(day), day_start(day + timedelta(days=1)))
            out[day] = total
        return out


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    calls = traffic()
    data_dir: Path = tmp_path_factory.mktemp("forecast")
    return Lake(calls, build_lake(data_dir, calls))


@pytest.fixture(scope="module")
def november(lake: Lake) -> ReportResult:
    return run_report("forecast", lake.context(), ReportRequest())


def rows_of(result: ReportResult, section: str, **match: object) -> list[dict[str, object]]:
    return [r for r in result.sections[section].to_pylist() if all(r[k] == v for k, v in match.items())]


def one(result: ReportResult, section: str, **match: object) -> dict[str, object]:
    (row,) = rows_of(result, section, **match)
    return row


NOV, DEC = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
OCT = datetime(2026, 10, 1, tzinfo=UTC)


def money(row: dict[str, object], name: str) -> Decimal:
    value = row[name]
    assert isinstance(value, Decimal), (name, value)
    return value


def test_growing_team_month_end_is_inside_the_interval_and_beats_the_run_rate(
    lake: Lake, november: ReportResult
) -> None:
    row = one(november, "projection", scope_kind="team", scope="growth", period="month")
    actual_total = lake.spend("growth", NOV, DEC)
    assert row["period_label"] == "2026-11" and row["as_of"] == NOW and row["days_remaining"] == 15
    assert row["actual_to_date"] == lake.spend("growth", NOV, NOW)  # exact, to the picodollar
    projected, low, high = money(row, "projected"), money(row, "low"), money(row, "high")
    assert projected == money(row, "actual_to_date") + money(row, "forecast_remaining")
    assert low <= actual_total <= high, (low, actual_total, high)
    assert abs(projected - actual_total) / actual_total < Decimal("0.04")
    # A straight line from the month so far misses the growth; the trend does not.
    run_rate = money(row, "run_rate")
    assert run_rate < projected and abs(projected - actual_total) < abs(run_rate - actual_total)
    assert row["interval"] == 0.8 and str(row["interval_basis"]).startswith("backtest of ")
    assert row["fit_days"] == 56 and int(row["backtest_forecasts"]) >= 50  # type: ignore[call-overload]
    assert november.sections["projection"].schema.field("projected").type.scale == 12


def test_steady_team_projects_close_to_its_run_rate(lake: Lake, november: ReportResult) -> None:
    row = one(november, "projection", scope_kind="team", scope="steady", period="month")
    actual_total = lake.spend("steady", NOV, DEC)
    projected, run_rate = money(row, "projected"), money(row, "run_rate")
    # Not equal: the run rate counts the half of today not yet worked, and the rest of November
    # has one weekend day fewer than its first half.
    assert abs(projected - run_rate) / run_rate < Decimal("0.05")
    assert abs(projected - actual_total) / actual_total < Decimal("0.02")
    assert money(row, "low") <= actual_total <= money(row, "high")


def test_total_features_and_quarter_rows_add_up(lake: Lake, november: ReportResult) -> None:
    total = one(november, "projection", scope_kind="total", period="month")
    assert total["actual_to_date"] == lake.spend(None, NOV, NOW)
    features = {r["scope"] for r in rows_of(november, "projection", scope_kind="feature")}
    assert features == {"assistant", "search"}
    quarter = one(november, "projection", scope_kind="team", scope="growth", period="quarter")
    assert quarter["period_label"] == "2026-Q4" and quarter["days_remaining"] == 46
    assert quarter["actual_to_date"] == lake.spend("growth", OCT, NOW)
    month = one(november, "projection", scope_kind="team", scope="growth", period="month")
    # The quarter's rest is the month's rest plus a December that keeps growing.
    december = money(quarter, "forecast_remaining") - money(month, "forecast_remaining")
    assert december > lake.spend("growth", NOV, DEC)
    assert money(quarter, "low") <= money(quarter, "projected") <= money(quarter, "high")


def test_budget_runs_out_on_the_day_the_spend_reaches_its_limit(lake: Lake) -> None:
    cumulative = lake.cumulative_by_day("growth", date(2026, 11, 1), date(2026, 11, 30))
    crossing = date(2026, 11, 25)  # a Wednesday
    limit = (cumulative[crossing - timedelta(days=1)] + cumulative[crossing]) / 2  # reached that day
    steady_q4 = lake.cumulative_by_day("steady", date(2026, 10, 1), date(2026, 11, 15))
    budgets = (
        BudgetConfig(
            name="team-monthly", scope={"team": "*"}, window="month", limit=limit.quantize(Decimal("1e-12"))
        ),
        BudgetConfig(
            name="steady-q4", scope={"team": "steady"}, window="quarter", limit=steady_q4[date(2026, 10, 20)]
        ),
        BudgetConfig(
            name="far-east",
            scope={"team": "steady"},
            window="month",
            limit=Decimal(1),
            timezone="Pacific/Kiritimati",
        ),
        BudgetConfig(name="daily", window="day", limit=Decimal(1)),
        BudgetConfig(name="requests", window="month", metric="requests", limit=Decimal(100)),
    )
    result = run_report("forecast", lake.context(*budgets), ReportRequest())

    growth = one(result, "budgets", budget="team-monthly", scope="team=growth")
    assert growth["spent"] == lake.spend("growth", NOV, NOW) and growth["window_label"] == "2026-11"
    assert growth["status"] == "will_exceed"
    runs_out = growth["runs_out_on"]
    assert isinstance(runs_out, date) and abs((runs_out - crossing).days) <= 1, runs_out
    earliest = growth["runs_out_earliest"]
    assert isinstance(earliest, date) and earliest <= runs_out

    steady = one(result, "budgets", budget="team-monthly", scope="team=steady")
    assert steady["runs_out_on"] is None and steady["status"] == "on_track"

    # Already over: the actual day the exact cumulative spend reached the limit.
    tight = one(result, "budgets", budget="steady-q4")
    assert (tight["status"], tight["runs_out_on"], tight["window_label"]) == (
        "exceeded",
        date(2026, 10, 20),
        "2026-Q4",
    )
    assert tight["spent"] == lake.spend("steady", OCT, NOW)

    # A month of local days in UTC+14 started at 10:00 UTC on 31 October.
    far_east = one(result, "budgets", budget="far-east")
    assert far_east["spent"] == lake.spend("steady", datetime(2026, 10, 31, 10, tzinfo=UTC), NOW)
    assert far_east["spent"] != lake.spend("steady", NOV, NOW)

    assert any("daily: a 'day' window is not projected" in n for n in result.notes)
    assert any("requests: a requests budget is not projected" in n for n in result.notes)
    budget_rows = rows_of(result, "projection", scope_kind="budget")
    assert {r["scope"] for r in budget_rows} == {
        "team-monthly team=growth",
        "team-monthly team=steady",
        "steady-q4 team=steady",
        "far-east team=steady",
    }


def test_backtest_compares_the_forecast_of_the_15th_with_the_month_total(
    lake: Lake, november: ReportResult
) -> None:
    rows = november.sections["backtest"].to_pylist()
    assert {(r["scope_kind"], r["scope"]) for r in rows} == {
        ("total", None),
        ("team", "growth"),
        ("team", "steady"),
    }
    as_of = datetime(2026, 10, 15, tzinfo=UTC)
    for row in rows:
        team = row["scope"] if row["scope_kind"] == "team" else None
        assert isinstance(team, str | None)
        assert (row["month"], row["as_of"]) == ("2026-10", as_of)
        assert row["actual_to_as_of"] == lake.spend(team, OCT, as_of)
        assert row["actual"] == lake.spend(team, OCT, NOV)
        assert row["error"] == money(row, "actual") - money(row, "forecast")
        assert row["inside"] == (money(row, "low") <= money(row, "actual") <= money(row, "high"))
        assert abs(float(row["error_ratio"])) < 0.05
    assert any(n.startswith("back-test of 2026-10 (forecast as of 2026-10-15)") for n in november.notes)


def test_a_past_month_is_its_actual_and_is_back_tested_itself(lake: Lake) -> None:
    result = run_report("forecast", lake.context(), ReportRequest(period="2026-10"))
    month = one(result, "projection", scope_kind="team", scope="growth", period="month")
    october = lake.spend("growth", OCT, NOV)
    assert (month["actual_to_date"], month["projected"], month["forecast_remaining"]) == (october, october, 0)
    assert (month["days_remaining"], month["interval_basis"]) == (0, "period over")
    quarter = one(result, "projection", scope_kind="team", scope="growth", period="quarter")
    assert quarter["as_of"] == NOV and quarter["days_remaining"] == 61
    assert str(quarter["interval_basis"]).startswith("extrapolated from a ")  # longer than any back-test
    backtested = one(result, "backtest", scope_kind="team", scope="growth")
    assert backtested["month"] == "2026-10" and backtested["actual"] == october


def test_periods_the_forecast_cannot_project(lake: Lake) -> None:
    for request in (
        ReportRequest(period="2026-W46"),
        ReportRequest(since="30d"),
        ReportRequest(period="2026"),
    ):
        with pytest.raises(ReportError, match="projects a month or a quarter"):
            run_report("forecast", lake.context(), request)
    with pytest.raises(ReportError, match="has not started"):
        run_report("forecast", lake.context(), ReportRequest(period="2026-12"))


def test_filters_top_and_configured_interval(lake: Lake) -> None:
    request = ReportRequest(filters={"feature": "search"}, by="team", top=1)
    result = run_report("forecast", lake.context(interval="0.5"), request)
    kinds = {(r["scope_kind"], r["scope"]) for r in result.sections["projection"].to_pylist()}
    assert kinds == {("total", None), ("team", "steady")}
    total = one(result, "projection", scope_kind="total", period="month")
    assert total["actual_to_date"] == lake.spend("steady", NOV, NOW) and total["interval"] == 0.5
    wide = one(
        run_report("forecast", lake.context(), request), "projection", scope_kind="total", period="month"
    )
    assert money(wide, "high") - money(wide, "low") > money(total, "high") - money(total, "low")
    with pytest.raises(ValueError, match="less than 1"):
        ForecastConfig(interval=Decimal(1))


def test_cli_json(lake: Lake) -> None:
    runner = CliRunner()
    args = [
        "report",
        "forecast",
        "--data-dir",
        str(lake.config.data_dir),
        "--period",
        "2026-10",
        "-f",
        "json",
    ]
    document = json.loads(runner.invoke(main, args, catch_exceptions=False).stdout)
    assert set(document["sections"]) == {"projection", "budgets", "backtest"}
    growth = [r for r in document["sections"]["backtest"] if r["scope"] == "growth"]
    assert Decimal(growth[0]["actual"]) == lake.spend("growth", OCT, NOV)


# -- the model, without the lake --------------------------------------------------------------------


def series(days: int, level: Callable[[np.ndarray], np.ndarray], noise: float, seed: int) -> np.ndarray:
    t = np.arange(days)
    factors = np.array([1, 1, 1, 1, 1, 0.5, 0.5]) / (6 / 7)
    rng = np.random.default_rng(seed)
    return np.asarray(level(t) * factors[t % 7] * rng.uniform(1 - noise, 1 + noise, days))


def test_model_recovers_trend_and_weekday_factors() -> None:
    y = series(56, lambda t: 10 + 0.5 * t, 0.0, 0)
    model = fit_daily(y, 0)
    # Not to the last digit: a 7-day mean of a trend times uneven weekday factors is not quite
    # the trend (classical decomposition's known bias), a few parts in 1,000 here.
    assert model.slope == pytest.approx(0.5, rel=1e-3) and model.level == pytest.approx(10, rel=1e-3)
    assert model.factors[5] == pytest.approx(0.5 / (6 / 7), rel=1e-2)
    expected = series(70, lambda t: 10 + 0.5 * t, 0.0, 0)[56:]
    assert model.predict(14) == pytest.approx(expected, rel=1e-2)
    # One day 20 times its usual spend barely moves a median-based line.
    spiked = y.copy()
    spiked[40] *= 20
    assert fit_daily(spiked, 0).slope == pytest.approx(0.5, rel=0.05)


def coverage(trials: int, horizon: int, level: Callable[[np.ndarray], np.ndarray]) -> float:
    inside = 0
    history = 106
    for seed in range(trials):
        y = series(history + horizon, level, 0.15, seed)
        model = fit_daily(y[history - 56 : history], (history - 56) % 7)
        point = float(model.predict(horizon).sum())
        bounds = backtest(y[:history], 0, horizon, 56).bounds(horizon, 0.8)
        assert bounds is not None
        inside += bounds[0] * point <= y[history:].sum() <= bounds[1] * point
    return inside / trials


@pytest.mark.parametrize("level", [lambda t: 10 + 0.1 * t, lambda t: 10 + 0 * t], ids=["trend", "flat"])
def test_interval_is_calibrated_on_simulated_series(level: Callable[[np.ndarray], np.ndarray]) -> None:
    # 80 % intervals should hold the actual about 80 % of the time: neither a formula's false
    # precision nor a uselessly wide band.
    assert 0.68 <= coverage(80, 15, level) <= 0.93


def test_no_interval_without_history() -> None:
    short = series(20, lambda t: 10 + 0 * t, 0.1, 1)
    assert backtest(short, 0, 10, 56).bounds(10, 0.8) is None
    empty: Iterable[float] = []
    assert fit_daily(np.array(list(empty)), 0).predict(3).tolist() == [0.0, 0.0, 0.0]
