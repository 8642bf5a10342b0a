"""``otelcost demo`` runs the whole loop through the real SDK: spend in the lake, a budget that
blocks at the API, the planted anomalies found by the anomalies report, the monthly page written.

The demo runs once for the module (a few seconds); each test reads what it printed and left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from otelcost.cli import main
from otelcost.cli.demo import ANOMALIES_SINCE, SPIKE_DAYS_AGO, history_days
from otelcost.config import load_config, report_context
from otelcost.demo import RUNAWAY_CALLS, SERVICES, TENANTS
from otelcost.lake.query import run_query
from otelcost.reports import ReportRequest, run_report

pytestmark = pytest.mark.slow

CALLS = 600
SPIKE_CALLS = 4 * len(TENANTS)


@dataclass(frozen=True)
class Demo:
    data_dir: Path
    result: Result
    started: datetime

    @property
    def lake(self) -> Path:
        return self.data_dir / "lake"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    data_dir = tmp_path_factory.mktemp("demo")
    started = datetime.now(UTC)
    result = CliRunner().invoke(
        main, ["demo", "--data-dir", str(data_dir), "--calls", str(CALLS), "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    return Demo(data_dir, result, started)


def test_demo_lands_every_call_and_prints_spend(demo: Demo) -> None:
    for team in {service.team for service in SERVICES}:
        assert team in demo.result.stdout
    assert "unknown_model" in demo.result.stdout  # the in-house model is stored, visible, and unpriced

    totals = run_query(
        demo.lake,
        "SELECT count(*) AS calls, count(DISTINCT span_id) AS spans, sum(cost_usd) > 0 AS spent, "
        "count(*) FILTER (WHERE team IS NULL) AS unattributed, count(DISTINCT date) AS days FROM llm_calls",
    ).to_pylist()
    expected_days = history_days(demo.started.date()) + 1
    assert totals == [
        {
            "calls": CALLS + SPIKE_CALLS + RUNAWAY_CALLS,
            "spans": CALLS + SPIKE_CALLS + RUNAWAY_CALLS,
            "spent": True,
            "unattributed": 0,
            "days": expected_days,
        }
    ]


def test_the_runaway_blocks_the_platform_budget_at_the_api(demo: Demo) -> None:
    out = demo.result.stdout
    assert "budget platform-daily (team=platform)" in out and "block from 100%" in out
    refused = next(line for line in out.splitlines() if "/v1/check?team=platform" in line)
    assert "-> 429 refused (X-Otelcost-Action: block" in refused
    allowed = next(line for line in out.splitlines() if "/v1/check?team=payments" in line)
    assert "-> 200 allowed" in allowed

    # What blocked it: one trace of RUNAWAY_CALLS calls today, the platform team's.
    (loop,) = run_query(
        demo.lake,
        "SELECT trace_id, team, count(*) AS calls, min(date) AS day FROM llm_calls "
        "GROUP BY ALL ORDER BY calls DESC LIMIT 1",
    ).to_pylist()
    assert (loop["team"], loop["calls"]) == ("platform", RUNAWAY_CALLS)
    assert loop["day"] in {demo.started.date(), datetime.now(UTC).date()}


def test_the_monthly_page_is_written_into_the_data_dir(demo: Demo) -> None:
    month = datetime.now(UTC).strftime("%Y-%m")
    page = demo.data_dir / f"monthly-{month}.html"
    if not page.exists():  # the demo ran across the turn of a month
        page = demo.data_dir / f"monthly-{demo.started:%Y-%m}.html"
    assert page.resolve().as_uri() in demo.result.stdout
    text = page.read_text(encoding="utf-8")
    assert 'id="spend-by-team-chart"' in text and 'data-label="platform"' in text
    assert "<script" not in text


def test_the_anomalies_report_finds_the_spike_and_the_runaway_loop(demo: Demo) -> None:
    config = load_config(None, overrides={"data_dir": str(demo.data_dir)}, environ={})
    result = run_report("anomalies", report_context(config), ReportRequest(since=ANOMALIES_SINCE))
    findings = {(f["kind"], f["scope_kind"], f["scope_value"]): f for f in result.table.to_pylist()}
    (loop,) = (
        run_query(
            demo.lake, "SELECT trace_id FROM llm_calls GROUP BY trace_id ORDER BY count(*) DESC LIMIT 1"
        )
        .column("trace_id")
        .to_pylist()
    )

    spike = findings["spike", "team", "data"]  # named by the team; its feature and model are "also"
    assert spike["start"].date() == demo.started.date() - timedelta(days=SPIKE_DAYS_AGO)
    assert "feature=weekly-digest" in spike["also"]
    assert spike["spend_usd"] > spike["baseline_usd"] * 10
    runaway = findings["runaway_loop", "trace_id", loop]
    assert runaway["start"].date() in {demo.started.date(), datetime.now(UTC).date()}

    out = demo.result.stdout
    assert "spike team=data: team data spent" in out
    assert f"runaway_loop trace_id={loop}: trace made" in out
