"""unit-economics over the lake of known traffic: distributions, tails, margins, outcomes."""

from __future__ import annotations

import math
from collections import defaultdict
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import pytest

from otelcost.errors import ReportError
from otelcost.reports import ReportRequest, run_report
from tests.reports.conftest import Company
from tests.reports.traffic import Call, cost_of

PICO = Decimal("0.000000000001")


def nearest_rank(values: list[Decimal], q: float) -> Decimal:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def per_unit(calls: list[Call], key: str) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for call in calls:
        value = getattr(call, key)
        if value is not None:
            totals[value] += cost_of(call)
    return totals


def test_distribution_of_cost_per_user_session_and_tenant(company: Company) -> None:
    result = run_report("unit-economics", company.context, ReportRequest(period="2026-11"))
    rows = {row["unit"]: row for row in result.sections["distribution"].to_pylist()}
    november = company.in_month(11)
    for unit, key in (("user", "user"), ("session", "session"), ("tenant", "tenant")):
        costs = list(per_unit(november, key).values())
        row = rows[unit]
        assert row["units"] == len(costs), unit
        assert row["total_cost_usd"] == sum(costs, Decimal(0))
        assert row["mean_cost_usd"] == (sum(costs, Decimal(0)) / len(costs)).quantize(
            PICO, rounding=ROUND_FLOOR
        )
        assert row["p50_cost_usd"] == nearest_rank(costs, 0.5), unit
        assert row["p95_cost_usd"] == nearest_rank(costs, 0.95), unit
        assert row["p99_cost_usd"] == nearest_rank(costs, 0.99), unit
        assert row["max_cost_usd"] == max(costs)
    # every call is a run of its own except the triage agent's, which are three calls each
    assert rows["run"]["units"] == len(november) - 40 * 2


def test_top_tail_and_runs_of_a_workflow(company: Company) -> None:
    result = run_report("unit-economics", company.context, ReportRequest(period="2026-11", top=3))
    top_users = [r for r in result.sections["top"].to_pylist() if r["unit"] == "user"]
    costs = per_unit(company.in_month(11), "user")
    expected = sorted(costs.items(), key=lambda item: (-item[1], item[0]))[:3]
    assert [(r["id"], r["cost_usd"]) for r in top_users] == expected

    workflows = {r["workflow"]: r for r in result.sections["workflows"].to_pylist()}
    triage = [c for c in company.in_month(11) if c.workflow == "triage-agent"]
    run_cost = sum((cost_of(c) for c in triage[:3]), Decimal(0))  # every run has the same tokens
    assert workflows["triage-agent"]["runs"] == 40
    assert workflows["triage-agent"]["calls"] == 120
    assert workflows["triage-agent"]["p50_cost_per_run_usd"] == run_cost
    assert workflows["triage-agent"]["total_cost_usd"] == 40 * run_cost


def test_cost_per_outcome_from_the_span_attribute(company: Company) -> None:
    rows = run_report("unit-economics", company.context, ReportRequest(period="2026-11")).sections["outcomes"]
    feature_cost = sum((cost_of(c) for c in company.in_month(11) if c.feature == "auto-triage"), Decimal(0))
    assert rows.to_pylist() == [
        {
            "feature": "auto-triage",
            "outcome": "resolved_ticket",
            "outcomes": 20,  # 20 of the 40 runs resolved a ticket; a run counts once, not per call
            "cost_usd": feature_cost,
            "cost_per_outcome_usd": (feature_cost / 20).quantize(PICO, rounding=ROUND_FLOOR),
        }
    ]


def test_outcomes_file_and_revenue_file(company: Company, tmp_path: Path) -> None:
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text(
        "feature,day,outcomes\nticket-triage,2026-11-02,30\nticket-triage,2026-11-30,12\nticket-triage,2026-12-01,99\n"
    )
    revenue = tmp_path / "revenue.csv"
    revenue.write_text(
        "tenant_id,period,revenue_usd\ntenant-00,2026-11,2.00\ntenant-01,2026-11,900\ntenant-02,2026-10,5\n"
    )
    request = ReportRequest(
        period="2026-11", outcomes_file=outcomes, revenue_file=revenue, max_cost_share="0.25"
    )
    result = run_report("unit-economics", company.context, request)

    triage_cost = sum((cost_of(c) for c in company.in_month(11) if c.feature == "ticket-triage"), Decimal(0))
    (row,) = result.sections["outcomes"].to_pylist()
    assert (row["feature"], row["outcomes"], row["cost_usd"]) == ("ticket-triage", 42, triage_cost)
    assert row["cost_per_outcome_usd"] == (triage_cost / 42).quantize(PICO, rounding=ROUND_FLOOR)

    tenants = {r["tenant_id"]: r for r in result.sections["tenants"].to_pylist()}
    cost = per_unit(company.in_month(11), "tenant")
    assert tenants["tenant-00"]["gross_margin_usd"] == Decimal("2.00") - cost["tenant-00"]
    assert tenants["tenant-00"]["over_share"] is True  # several dollars of AI cost on 2 dollars of revenue
    assert tenants["tenant-01"]["over_share"] is False
    assert tenants["tenant-02"]["revenue_usd"] is None  # its revenue row is for October
    assert tenants["tenant-02"]["over_share"] is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tenant,revenue\nt,1\n", "missing column"),
        ("tenant_id,period,revenue_usd\nt,2026-11,lots\n", r"revenue\.csv:2: expected an amount"),
        ("tenant_id,period,revenue_usd\nt,Nov,1\n", r"revenue\.csv:2: expected a period"),
    ],
)
def test_bad_revenue_files_name_the_line(company: Company, tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "revenue.csv"
    path.write_text(text)
    with pytest.raises(ReportError, match=message):
        run_report("unit-economics", company.context, ReportRequest(period="2026-11", revenue_file=path))


def test_asking_for_sections_computes_only_those(company: Company) -> None:
    result = run_report(
        "unit-economics", company.context, ReportRequest(period="2026-11", sections="tenants")
    )
    assert list(result.sections) == ["tenants"]
    with pytest.raises(ReportError, match="no section 'colour'"):
        run_report("showback", company.context, ReportRequest(period="2026-11", sections=["spend", "colour"]))
