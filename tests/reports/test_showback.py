"""showback over the lake of known traffic: every number against hand arithmetic (cost_of)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from otelcost.cli import main
from otelcost.reports import ReportRequest, run_report
from otelcost.reports.period import Period, parse_period, resolve_period
from otelcost.reports.showback import showback_sql
from tests.reports.conftest import Company
from tests.reports.traffic import Call, cost_of


def by_team(calls: list[Call]) -> dict[str | None, tuple[int, Decimal]]:
    counts: dict[str | None, int] = defaultdict(int)
    costs: dict[str | None, Decimal] = defaultdict(Decimal)
    for call in calls:
        counts[call.team] += 1
        costs[call.team] += cost_of(call)
    return {team: (counts[team], costs[team]) for team in counts}


def test_spend_by_team_is_the_hand_sum_with_change_against_the_month_before(company: Company) -> None:
    result = run_report("showback", company.context, ReportRequest(period="2026-11"))
    rows = {row["team"]: row for row in result.table.to_pylist()}
    november, october = by_team(company.in_month(11)), by_team(company.in_month(10))

    assert set(rows) == set(november) | set(october)
    for team, row in rows.items():
        calls, cost = november.get(team, (0, Decimal(0)))
        before = october.get(team, (0, Decimal(0)))[1]
        assert (row["calls"], row["cost_usd"], row["previous_cost_usd"]) == (calls, cost, before), team
        assert row["change_usd"] == cost - before
        assert row["effective_cost_usd"] == cost  # no discounts configured
    assert rows["legacy"]["cost_usd"] == 0 and rows["legacy"]["change_ratio"] == -1.0
    assert rows["o'brien"]["previous_cost_usd"] == 0 and rows["o'brien"]["change_ratio"] is None
    assert sum(row["share"] for row in rows.values()) == pytest.approx(1.0, abs=1e-5)
    costs = [row["cost_usd"] for row in result.table.to_pylist()]
    assert costs == sorted(costs, reverse=True)
    assert result.table.schema.field("cost_usd").type.scale == 12


def test_group_by_two_dimensions_and_filter(company: Company) -> None:
    request = ReportRequest(period="2026-11", by="team,feature", filters=["environment=staging"])
    rows = run_report("showback", company.context, request).table.to_pylist()
    staging = [c for c in company.in_month(11) if c.environment == "staging"]
    assert [(r["team"], r["feature"], r["calls"], r["cost_usd"]) for r in rows] == [
        ("o'brien", "blarney", len(staging), sum((cost_of(c) for c in staging), Decimal(0)))
    ]


def test_filter_values_are_bound_not_interpolated(company: Company) -> None:
    for hostile in ("x' OR '1'='1", "'; DROP VIEW llm_calls; --", "o'brien"):
        rows = run_report(
            "showback", company.context, ReportRequest(period="2026-11", filters={"team": hostile})
        ).table.to_pylist()
        expected = [c for c in company.in_month(11) if c.team == hostile]
        assert sum(r["calls"] for r in rows) == len(expected), hostile


def test_unknown_dimension_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown dimension 'colour'"):
        ReportRequest(by="team,colour")
    with pytest.raises(ValueError, match="unknown dimension"):
        ReportRequest(filters={"team; DROP": "x"})


def test_month_to_date_is_compared_with_the_same_days_of_the_month_before() -> None:
    now = datetime(2026, 11, 10, 12, tzinfo=UTC)
    current, before = parse_period("2026-11").compared(now)
    assert (current.start, current.end) == (datetime(2026, 11, 1, tzinfo=UTC), now)
    assert (before.start, before.end) == (
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2026, 10, 10, 12, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026-02", datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-Q4", datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ("2026-W01", datetime(2025, 12, 29, tzinfo=UTC), datetime(2026, 1, 5, tzinfo=UTC)),
        ("2026-11-05", datetime(2026, 11, 5, tzinfo=UTC), datetime(2026, 11, 6, tzinfo=UTC)),
        ("2026", datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_periods(text: str, start: datetime, end: datetime) -> None:
    period = parse_period(text)
    assert (period.start, period.end) == (start, end)


def test_previous_periods_and_bad_periods() -> None:
    assert parse_period("2026-03").previous().start == datetime(2026, 2, 1, tzinfo=UTC)
    assert parse_period("2026-Q1").previous().start == datetime(2025, 10, 1, tzinfo=UTC)
    span = resolve_period(since="2026-11-01", until="2026-11-08")
    assert span.previous() == Period(datetime(2026, 10, 25, tzinfo=UTC), span.start, span.previous().label)
    for bad in ("2026-13", "November", "2026-Q5", ""):
        with pytest.raises(ValueError, match="expected a period"):
            parse_period(bad)
    with pytest.raises(ValueError, match="not both"):
        resolve_period("2026-11", since="7d")
    with pytest.raises(ValueError, match="before it starts"):
        resolve_period(since="2026-11-08", until="2026-11-01")


def test_cli_formats(company: Company) -> None:
    base = ["report", "showback", "--data-dir", str(company.config.data_dir), "--period", "2026-11"]
    runner = CliRunner()
    document = json.loads(runner.invoke(main, [*base, "-f", "json"], catch_exceptions=False).stdout)
    assert document["report"] == "showback" and document["period"]["label"] == "2026-11"
    rows = {row["team"]: row for row in document["sections"]["spend"]}
    november = by_team(company.in_month(11))
    assert Decimal(rows["payments"]["cost_usd"]) == november["payments"][1]
    assert isinstance(rows["payments"]["cost_usd"], str)  # money as strings, as /v1/decisions does

    csv_out = runner.invoke(main, [*base, "-f", "csv", "--by", "team,feature"]).stdout
    assert csv_out.splitlines()[0].startswith("team,feature,calls,")
    table = runner.invoke(main, [*base, "--by", "tenant"])
    assert table.exit_code == 0 and "tenant_id" in table.stdout and "tenant-00" in table.stdout
    html = runner.invoke(main, [*base, "-f", "html"]).stdout
    assert html.startswith("<!DOCTYPE html>") and "o&#x27;brien" in html

    bad = runner.invoke(main, [*base, "--by", "colour"])
    assert bad.exit_code == 2 and "unknown dimension 'colour'" in bad.output
    bad_period = runner.invoke(
        main, ["report", "showback", "--data-dir", str(company.config.data_dir), "--period", "11/2026"]
    )
    assert bad_period.exit_code == 2 and "expected a period" in bad_period.output


def test_docs_show_the_sql_showback_runs() -> None:
    current = "date BETWEEN $first_day AND $last_day AND ts >= $start AND ts < $end"
    previous = "date BETWEEN $prev_first_day AND $prev_last_day AND ts >= $prev_start AND ts < $prev_end"
    page = (Path(__file__).parents[2] / "docs" / "reports.md").read_text(encoding="utf-8")
    assert showback_sql(("team",), current, previous).strip("\n") in page
