"""GET /v1/reports on a running server: the same document as the CLI and Python, real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from otelcost.config import report_context
from otelcost.reports import ReportRequest, run_report
from tests.reports.conftest import Company, api_over
from tests.reports.traffic import cost_of

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api(company: Company) -> Iterator[httpx.Client]:
    with api_over(company.config.data_dir) as client:
        yield client


def test_a_report_over_http_is_the_python_result(company: Company, api: httpx.Client) -> None:
    answer = api.get("/v1/reports/showback", params={"period": "2026-10", "by": "team,feature"})
    assert answer.status_code == 200, answer.text
    document = answer.json()
    context = report_context(company.config)
    expected = run_report("showback", context, ReportRequest(period="2026-10", by="team,feature")).to_json()
    assert document["sections"] == expected["sections"]
    legacy = [r for r in document["sections"]["spend"] if r["team"] == "legacy"]
    assert [Decimal(r["cost_usd"]) for r in legacy] == [
        sum((cost_of(c) for c in company.in_month(10) if c.team == "legacy"), Decimal(0))
    ]


def test_filters_are_repeatable_and_bound(api: httpx.Client) -> None:
    answer = api.get(
        "/v1/reports/showback",
        params=[("period", "2026-11"), ("filter", "team=o'brien"), ("filter", "environment=staging")],
    )
    assert answer.status_code == 200
    assert [r["team"] for r in answer.json()["sections"]["spend"]] == ["o'brien"]
    hostile = api.get("/v1/reports/showback", params={"period": "2026-11", "filter": "team=x' OR '1'='1"})
    assert hostile.status_code == 200 and hostile.json()["sections"]["spend"] == []


def test_the_index_and_errors(api: httpx.Client) -> None:
    names = [r["name"] for r in api.get("/v1/reports").json()["reports"]]
    assert {"showback", "unit-economics", "optimize", "unattributed"} <= set(names)

    missing = api.get("/v1/reports/no-such-report")
    assert missing.status_code == 404 and "showback" in missing.json()["error"]["message"]
    unknown = api.get("/v1/reports/showback", params={"colour": "red"})
    assert unknown.status_code == 400 and "colour" in unknown.json()["error"]["message"]
    bad_period = api.get("/v1/reports/showback", params={"period": "November"})
    assert bad_period.status_code == 400 and "expected a period" in bad_period.json()["error"]["message"]
    for bound in ("since", "until"):
        bad_bound = api.get("/v1/reports/showback", params={bound: "2026-13-01"})
        message = bad_bound.json()["error"]["message"]
        assert bad_bound.status_code == 400 and message.startswith(f"{bound}: expected a duration"), message
    bad_by = api.get("/v1/reports/showback", params={"by": "team,colour"})
    assert bad_by.status_code == 400 and "unknown dimension" in bad_by.json()["error"]["message"]
    files = api.get("/v1/reports/unit-economics", params={"revenue_file": "/etc/passwd"})
    assert files.status_code == 400  # paths on the server are command-line only
    assert api.get("/healthz").status_code == 200  # and the server serves on
