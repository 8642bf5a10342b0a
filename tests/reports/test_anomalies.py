"""anomalies over two lakes built through the real pipeline: steady traffic, and the same traffic
with five planted patterns. Steady traffic must raise nothing; each plant must be found with the
right scope, kind, start and size (sizes computed here from the calls, not by the report).

The background is the steady company (October and November 2026) plus two workloads the
detectors need a norm for: ``research-agent`` runs (traces of three calls, one session each) and
sessions of ``assistant's chat`` (eight calls of ~1k input tokens; the quote in the name checks
the evidence queries' quoting). The plants, all in November:

* Wed 4: the payments team spends six times its day (five more copies of each call);
* Tue 10, 14:00: one research-agent trace makes 200 calls in three minutes;
* Thu 12: three chat sessions whose input grows from 1k to 20k tokens, call after call;
* Tue 17 to Thu 19: a staging regression suite, about a quarter of each day's spend;
* from Tue 24: ticket-triage moves from gpt-4o-mini to gpt-4o.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from statistics import median_low
from typing import Any

import pytest

from otelcost.lake.query import run_query
from otelcost.reports import ReportContext, ReportRequest, parse_period, run_report
from otelcost.reports.anomalies import detectors
from otelcost.reports.anomalies.evidence import sql_literal
from otelcost.reports.anomalies.report import KINDS, judged_weeks
from otelcost.reports.config import AnomaliesConfig, ReportsConfig
from otelcost.reports.dimensions import calls_where
from otelcost.reports.period import Period
from tests.reports.traffic import TENANTS, Call, build_lake, cost_of, day_start, steady_company

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
FIRST_DAY = date(2026, 10, 1)
DAYS = 61
SPIKE_DAY = date(2026, 11, 4)
LOOP_START = datetime(2026, 11, 10, 14, tzinfo=UTC)
GROWTH_DAY = date(2026, 11, 12)
STAGING_DAYS = (date(2026, 11, 17), date(2026, 11, 18), date(2026, 11, 19))
SWITCH_DAY = date(2026, 11, 24)
CHAT = "assistant's chat"
PICO = Decimal("0.000000000001")

# The test company spends cents a day, so the dollar floor is off; every other threshold is the
# default, which is what steady traffic must not trip.
CONFIG = AnomaliesConfig(min_daily_usd=Decimal(0))


def background() -> list[Call]:
    rng = random.Random(5)
    calls = steady_company(FIRST_DAY, DAYS)
    for offset in range(DAYS):
        day = FIRST_DAY + timedelta(days=offset)
        for run in range(12):
            start = day_start(day) + timedelta(hours=9, minutes=40 * run)
            calls += [
                Call(
                    ts=start + timedelta(seconds=5 * step),
                    service="research-svc",
                    team="research",
                    feature="deep-research",
                    input_tokens=round(500 * rng.uniform(0.9, 1.1)),
                    output_tokens=round(50 * rng.uniform(0.9, 1.1)),
                    session=f"rs-{day}-{run}",
                    workflow="research-agent",
                    trace=f"research-{day}-{run}",
                )
                for step in range(3)
            ]
        for number in range(8):
            start = day_start(day) + timedelta(hours=9, minutes=50 * number)
            calls += [
                chat_call(
                    start + timedelta(minutes=step),
                    f"chat-{day}-{number}",
                    round(1000 * rng.uniform(0.9, 1.1)),
                    round(200 * rng.uniform(0.9, 1.1)),
                )
                for step in range(8)
            ]
    return calls


def chat_call(ts: datetime, session: str, input_tokens: int, output_tokens: int = 200) -> Call:
    return Call(
        ts=ts,
        service="assistant-api",
        team="assistant",
        feature=CHAT,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        session=session,
    )


def planted() -> list[Call]:
    base = background()
    calls = [
        replace(c, model="gpt-4o") if c.feature == "ticket-triage" and c.ts.date() >= SWITCH_DAY else c
        for c in base
    ]
    calls += [
        replace(c, ts=c.ts + timedelta(seconds=copy))
        for c in base
        if c.team == "payments" and c.ts.date() == SPIKE_DAY
        for copy in range(1, 6)
    ]
    calls += [
        Call(
            ts=LOOP_START + timedelta(milliseconds=900 * step),
            service="research-svc",
            team="research",
            feature="deep-research",
            input_tokens=300,
            output_tokens=30,
            session="rs-loop",
            workflow="research-agent",
            trace="research-loop",
        )
        for step in range(200)
    ]
    for number in range(3):
        start = day_start(GROWTH_DAY) + timedelta(hours=10 + number)
        calls += [
            chat_call(start + timedelta(minutes=step), f"chat-grow-{number}", 1000 + 2111 * step)
            for step in range(10)
        ]
    for index, day in enumerate(STAGING_DAYS):
        calls += [
            Call(
                ts=day_start(day) + timedelta(hours=11, minutes=7 * k),
                service="eval-runner",
                team="qa",
                feature="regression-suite",
                model="claude-sonnet-4-5",
                input_tokens=6000,
                output_tokens=900,
                tenant=TENANTS[(index * 5 + k) % len(TENANTS)],
                environment="staging",
            )
            for k in range(5)
        ]
    return calls


@dataclass(frozen=True)
class Lake:
    calls: list[Call]
    lake_dir: Path

    def context(self, config: AnomaliesConfig = CONFIG) -> ReportContext:
        return ReportContext(self.lake_dir, config=ReportsConfig(anomalies=config), now=lambda: NOW)

    def report(self, config: AnomaliesConfig = CONFIG, **request: Any) -> dict[str, list[dict[str, Any]]]:
        result = run_report("anomalies", self.context(config), ReportRequest(period="2026-11", **request))
        return {name: table.to_pylist() for name, table in result.sections.items()}

    def spend(self, keep: Iterable[Call] | None = None, **match: object) -> dict[date, Decimal]:
        """Daily list cost of the calls whose fields equal ``match``."""
        out: dict[date, Decimal] = defaultdict(Decimal)
        for call in self.calls if keep is None else keep:
            if all(getattr(call, name) == value for name, value in match.items()):
                out[call.ts.date()] += cost_of(call)
        return out


@pytest.fixture(scope="module")
def steady(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    calls = background()
    yield Lake(calls, build_lake(tmp_path_factory.mktemp("steady"), calls).lake_dir)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    calls = planted()
    yield Lake(calls, build_lake(tmp_path_factory.mktemp("planted"), calls).lake_dir)


@pytest.fixture(scope="module")
def findings(lake: Lake) -> list[dict[str, Any]]:
    return lake.report()["findings"]


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def loop_trace_id(lake: Lake) -> str:
    rows = run_query(lake.lake_dir, "SELECT DISTINCT trace_id FROM llm_calls WHERE session_id = 'rs-loop'")
    (trace_id,) = rows.column("trace_id").to_pylist()
    return str(trace_id)


def baseline(daily: dict[date, Decimal], day: date, days: int = 28) -> Decimal:
    """The lower median of the same kind of day (weekday/weekend) among the ``days`` before."""
    weekend = day.isoweekday() >= 6
    window = [day - timedelta(days=n) for n in range(1, days + 1)]
    return median_low([daily.get(d, Decimal(0)) for d in window if (d.isoweekday() >= 6) == weekend])


def money_mean(total: Decimal, count: int) -> Decimal:
    """The report's exact mean: rounded down to the picodollar."""
    return Decimal(int(total / PICO) // count) * PICO


# -- steady traffic ---------------------------------------------------------------------------


def test_steady_traffic_raises_nothing(steady: Lake) -> None:
    sections = steady.report()
    assert sections["findings"] == []
    checked = {row["kind"]: row for row in sections["scopes_checked"]}
    assert list(checked) == list(KINDS)
    # every detector looked at something: the silence is a verdict, not an empty query
    assert checked["spike"]["scopes_checked"] == 31  # 6 teams, features, services; 4 models; 8 tenants + none
    assert checked["spike"]["units_checked"] == 31 * 30
    assert checked["week_over_week"]["units_checked"] == 31 * 5  # the weeks ending Nov 1, 8, 15, 22, 29
    assert (
        checked["runaway_loop"]["units_checked"] > 12 * 30 * 2
    )  # session (else trace) minutes: the research runs' alone, and more
    assert checked["model_switch"]["units_checked"] == 6 * 30
    assert checked["context_growth"]["units_checked"] == 8 * 30  # the chat sessions of eight calls
    assert checked["non_production"]["units_checked"] == 30
    assert all(row["candidates"] == row["findings"] == 0 for row in checked.values())


def test_the_same_steady_traffic_with_loose_thresholds_is_full_of_findings(steady: Lake) -> None:
    # The zero above is the thresholds' doing: loosened, the same noise is reported by every
    # detector it can reach (steady traffic has no model mix to shift and no staging to share).
    loose = AnomaliesConfig(
        min_daily_usd=Decimal(0),
        threshold=Decimal("0.01"),
        mad_floor=Decimal(0),
        min_ratio=Decimal("1.01"),
        week_over_week_ratio=Decimal("1.01"),
        runaway_factor=Decimal("1.01"),
        runaway_min_calls_per_minute=1,
        runaway_min_tokens_per_minute=1,
        context_growth_ratio=Decimal("1.01"),
    )
    kinds = {row["kind"] for row in steady.report(loose)["findings"]}
    assert kinds == {"spike", "week_over_week", "runaway_loop", "context_growth"}


def test_a_week_after_the_first_days_of_the_lake_is_not_compared_with_them(steady: Lake) -> None:
    # The lake starts on Thursday, October 1: the week of October 5 would be compared with four
    # days, and look 7/4 times as large. Only the weeks of October 12 and 19 have a whole week
    # before them (Sunday October 25's week is the last of October).
    ratio = Decimal("1.5")
    config = AnomaliesConfig(min_daily_usd=Decimal(0), week_over_week_ratio=ratio, threshold=Decimal("0.01"))
    context = ReportContext(steady.lake_dir, config=ReportsConfig(anomalies=config), now=lambda: NOW)
    result = run_report("anomalies", context, ReportRequest(period="2026-10"))
    (checked,) = [
        row for row in result.sections["scopes_checked"].to_pylist() if row["kind"] == "week_over_week"
    ]
    assert checked["units_checked"] == 31 * 2
    starts = {row["start"] for row in result.table.to_pylist() if row["kind"] == "week_over_week"}
    assert starts <= {midnight(date(2026, 10, 12)), midnight(date(2026, 10, 19))}
    # the same four days against the week of October 5 do make the ratio
    team = steady.spend(team="customer-care")
    first_days = sum(team[date(2026, 10, d)] for d in range(1, 5))
    week = sum(team[date(2026, 10, d)] for d in range(5, 12))
    assert week >= first_days * ratio


# -- the planted patterns ---------------------------------------------------------------------


def test_every_finding_is_a_planted_pattern(lake: Lake, findings: list[dict[str, Any]]) -> None:
    found = {(r["kind"], r["scope_kind"], r["scope_value"], r["start"]) for r in findings}
    assert found == {
        ("spike", "team", "payments", midnight(SPIKE_DAY)),
        ("runaway_loop", "trace_id", loop_trace_id(lake), LOOP_START),
        ("spike", "team", "research", midnight(LOOP_START.date())),  # the loop's spend is a spike too
        ("context_growth", "feature", CHAT, day_start(GROWTH_DAY) + timedelta(hours=10)),
        ("spike", "team", "assistant", midnight(GROWTH_DAY)),  # and so is the growth's
        ("non_production", "environment", "staging", midnight(STAGING_DAYS[0])),
        ("model_switch", "feature", "ticket-triage", midnight(SWITCH_DAY)),
        ("spike", "team", "customer-care", midnight(SWITCH_DAY)),
        ("week_over_week", "team", "customer-care", midnight(SWITCH_DAY - timedelta(days=1))),  # Monday
    }
    sizes = [r["size_usd"] for r in findings]
    assert sizes == sorted(sizes, reverse=True)


def test_a_team_spending_six_times_its_day_is_one_spike(lake: Lake, findings: list[dict[str, Any]]) -> None:
    that_day = [r for r in findings if r["start"].date() == SPIKE_DAY]
    (spike,) = that_day  # one incident, not one finding per scope; and not a week-over-week jump
    daily = lake.spend(team="payments")
    expected = baseline(daily, SPIKE_DAY)
    assert (spike["kind"], spike["scope_kind"], spike["scope_value"]) == ("spike", "team", "payments")
    assert spike["end"] == midnight(SPIKE_DAY + timedelta(days=1))
    assert spike["spend_usd"] == daily[SPIKE_DAY]
    assert spike["baseline_usd"] == expected
    assert spike["size_usd"] == daily[SPIKE_DAY] - expected
    assert spike["ratio"] == pytest.approx(float(daily[SPIKE_DAY] / expected))
    assert 5.5 < spike["ratio"] < 6.5
    # the same calls seen as the team's feature, service and model are named, not repeated
    assert {"feature=fraud-explain", "service=checkout", "model=gpt-4o-2024-08-06"} <= set(spike["also"])


def test_a_trace_calling_in_a_loop_is_a_runaway(lake: Lake, findings: list[dict[str, Any]]) -> None:
    (loop,) = [r for r in findings if r["kind"] == "runaway_loop"]
    calls = [c for c in lake.calls if c.trace == "research-loop"]
    assert loop["scope_value"] == loop_trace_id(lake)
    assert (loop["start"], loop["end"]) == (LOOP_START, LOOP_START + timedelta(minutes=3))
    assert loop["also"] == ["session_id=rs-loop"]  # its session is the same incident
    assert loop["size_usd"] == sum((cost_of(c) for c in calls), Decimal(0))  # every minute ran away
    assert loop["ratio"] == pytest.approx(67 / 3)  # the busiest minute against the 3-call norm
    assert "research-agent" in loop["detail"]


def test_a_feature_moving_to_a_bigger_model_is_a_model_switch(
    lake: Lake, findings: list[dict[str, Any]]
) -> None:
    (switch,) = [r for r in findings if r["kind"] == "model_switch"]
    assert (switch["scope_value"], switch["start"], switch["end"]) == (
        "ticket-triage",
        midnight(SWITCH_DAY),
        midnight(date(2026, 12, 1)),
    )
    triage = [c for c in lake.calls if c.feature == "ticket-triage"]
    spend, calls = lake.spend(triage), defaultdict[date, int](int)
    for call in triage:
        calls[call.ts.date()] += 1
    per_call = {day: money_mean(spend[day], calls[day]) for day in spend}
    size = Decimal(0)
    for day in (SWITCH_DAY + timedelta(days=n) for n in range(7)):
        before = median_low([per_call[day - timedelta(days=n)] for n in range(1, 29)])
        size += spend[day] - calls[day] * before
    assert switch["size_usd"] == size
    assert "gpt-4o-mini -> gpt-4o-2024-08-06" in switch["detail"]
    assert "100% of its calls moved" in switch["detail"]


def test_sessions_whose_input_grows_are_context_growth(lake: Lake, findings: list[dict[str, Any]]) -> None:
    (growth,) = [r for r in findings if r["kind"] == "context_growth"]
    assert (growth["scope_kind"], growth["scope_value"]) == ("feature", CHAT)
    assert growth["also"] == ["session_id=chat-grow-0", "session_id=chat-grow-1", "session_id=chat-grow-2"]
    session = sorted((c for c in lake.calls if c.session == "chat-grow-0"), key=lambda c: c.ts)
    first, last = session[:4], session[7:]  # ntile(3) of ten calls: 4, 3, 3
    assert growth["ratio"] == pytest.approx(
        (sum(c.input_tokens for c in last) / 3) / (sum(c.input_tokens for c in first) / 4)
    )
    extra = sum((cost_of(c) for c in session), Decimal(0)) - 10 * money_mean(
        sum((cost_of(c) for c in first), Decimal(0)), 4
    )
    assert growth["size_usd"] == 3 * extra  # three identical sessions
    assert growth["end"] == day_start(GROWTH_DAY) + timedelta(hours=12, minutes=10)


def test_a_staging_environment_above_its_share_is_non_production(
    lake: Lake, findings: list[dict[str, Any]]
) -> None:
    (staging,) = [r for r in findings if r["kind"] == "non_production"]
    assert (staging["scope_value"], staging["start"], staging["end"]) == (
        "staging",
        midnight(STAGING_DAYS[0]),
        midnight(STAGING_DAYS[-1] + timedelta(days=1)),
    )
    on_those_days = [c for c in lake.calls if c.ts.date() in STAGING_DAYS]
    total = sum((cost_of(c) for c in on_those_days), Decimal(0))
    spent = sum((cost_of(c) for c in on_those_days if c.environment == "staging"), Decimal(0))
    assert staging["size_usd"] == spent == 15 * cost_of(on_those_days[-1])
    assert staging["ratio"] == pytest.approx(float(spent / total))


def test_every_evidence_query_runs_and_shows_the_finding(lake: Lake, findings: list[dict[str, Any]]) -> None:
    for finding in findings:
        rows = run_query(lake.lake_dir, finding["evidence"]).to_pylist()
        assert rows, finding["kind"]
        if finding["kind"] == "spike" and finding["scope_value"] == "payments":
            by_day = {row["date"]: row["cost_usd"] for row in rows}
            assert by_day[SPIKE_DAY] == finding["spend_usd"]
            assert min(by_day) == SPIKE_DAY - timedelta(days=28)  # the baseline is in view too
        if finding["kind"] == "context_growth":
            assert len(rows) == 30  # the quote in the feature's name survived the literal
        if finding["kind"] == "runaway_loop":
            assert [row["calls"] for row in rows] == [67, 67, 66]


def test_by_and_filters_narrow_what_is_watched(lake: Lake) -> None:
    rows = lake.report(by="feature", filters=["team=payments"])["findings"]
    assert [(r["kind"], r["scope_kind"], r["scope_value"], r["start"]) for r in rows] == [
        ("spike", "feature", "fraud-explain", midnight(SPIKE_DAY))
    ]
    assert "team = 'payments'" in rows[0]["evidence"]


def test_a_month_to_date_judges_the_week_to_date() -> None:
    month = parse_period("2026-11")
    assert [start.date() for start, _ in judged_weeks(month, cut=False)] == [
        date(2026, 10, 26),
        date(2026, 11, 2),
        date(2026, 11, 9),
        date(2026, 11, 16),
        date(2026, 11, 23),
    ]
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    weeks = judged_weeks(month.cut(now), cut=True)
    assert weeks[-1] == (midnight(date(2026, 11, 23)), now)


def test_literals_are_quoted_for_pasting() -> None:
    assert sql_literal("o'brien") == "'o''brien'"
    assert sql_literal("'; DROP TABLE x; --") == "'''; DROP TABLE x; --'"
    assert sql_literal(date(2026, 11, 4)) == "DATE '2026-11-04'"
    assert sql_literal(None) == "NULL"


def test_min_baseline_days_cannot_exceed_the_baseline() -> None:
    with pytest.raises(ValueError, match="min_baseline_days"):
        AnomaliesConfig(baseline_days=7, min_baseline_days=8)


# -- the passes that decide what to look at closely never change the answer --------------------


def _read_from(first_day: date) -> tuple[str, dict[str, object]]:
    """WHERE and params of the calls from ``first_day`` to the end of November."""
    return calls_where(Period(midnight(first_day), midnight(date(2026, 12, 1)), "read"))


@pytest.mark.parametrize("ratio", ["3", "1.01"])
def test_the_daily_bounds_clear_only_sessions_that_cannot_grow(lake: Lake, ratio: str) -> None:
    # The exact test over every judged session, against the sessions the bounds let through:
    # every growing session must be among them, and at the default ratio most sessions of the
    # month (the chats keep a steady input) must be cleared, or the bounds would do nothing.
    where, params = _read_from(date(2026, 11, 1))
    bound = dict(params)
    params |= {
        "judge_first": date(2026, 11, 1),
        "judge_last": date(2026, 11, 30),
        "min_calls": CONFIG.context_growth_min_calls,
        "ratio": float(ratio),
    }
    (bounds,) = run_query(lake.lake_dir, detectors.context_growth_bounds_sql(where), params).to_pylist()
    everyone = run_query(
        lake.lake_dir,
        f"SELECT DISTINCT session_id, feature FROM llm_calls WHERE {where} AND session_id IS NOT NULL",
        bound,
    ).to_pylist()
    exact = run_query(
        lake.lake_dir,
        detectors.context_growth_sql(where),
        params
        | {
            "min_usd": 0,
            "sessions": [row["session_id"] for row in everyone],
            "features": [row["feature"] for row in everyone],
        },
    ).to_pylist()
    growing = {session for row in exact if row["session_ids"] for session in row["session_ids"]}
    assert growing, "the planted sessions grow"
    assert growing <= set(bounds["sessions"])
    assert len(bounds["sessions"]) <= bounds["units_checked"]
    if ratio == "3":
        assert len(bounds["sessions"]) < bounds["units_checked"] / 2


def test_the_warm_minutes_lead_to_every_runaway(lake: Lake) -> None:
    # The exact runaway statement over every workflow finds what the report (which reads only
    # the workflows of warm minutes) finds.
    where, params = _read_from(date(2026, 11, 1) - timedelta(days=CONFIG.baseline_days))
    workflows = (
        run_query(
            lake.lake_dir,
            f"SELECT DISTINCT coalesce(workflow, service, '') AS w FROM llm_calls WHERE {where}",
            params,
        )
        .column("w")
        .to_pylist()
    )
    params |= {
        "judge_first": date(2026, 11, 1),
        "judge_last": date(2026, 11, 30),
        "baseline_days": CONFIG.baseline_days,
        "min_calls": CONFIG.runaway_min_calls_per_minute,
        "min_tokens": CONFIG.runaway_min_tokens_per_minute,
        "factor": CONFIG.runaway_factor,
        "min_usd": CONFIG.min_daily_usd,
        "workflows": workflows,
    }
    everything = run_query(lake.lake_dir, detectors.runaway_sql(where), params).to_pylist()
    expected = {(row["value"], row["first_minute"]) for row in everything if row["run_id"] is not None}
    assert expected, "the planted loop runs away"
    reported = lake.report()["findings"]
    runaways = {(row["scope_value"], row["start"]) for row in reported if row["kind"] == "runaway_loop"}
    also = {
        label.split("=", 1)[1] for row in reported if row["kind"] == "runaway_loop" for label in row["also"]
    }
    assert {value for value, _ in expected} <= {value for value, _ in runaways} | also
