"""The monthly report's invoice reconciliation section (``ReportRequest.invoice_files``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from click.testing import CliRunner

from otelcost.cli.report import report
from otelcost.config import report_context
from otelcost.reports import ReportRequest, run_report
from otelcost.reports.monthly import render_monthly
from tests.reconcile.conftest import FIXTURES, Lake

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
GAPS = (FIXTURES / "openai-gaps-costs.csv", FIXTURES / "openai-gaps-usage.tsv")


def test_the_monthly_report_carries_the_reconciliation(lake: Lake) -> None:
    context = replace(report_context(lake.config), now=lambda: NOW)
    request = ReportRequest(period="2026-11", invoice_files=GAPS, invoice_provider="openai")
    result = run_report("monthly", context, request)
    summary = result.sections["reconciliation"].to_pylist()[0]
    assert (summary["billed_usd"], summary["explained_usd"]) == (Decimal("2.14"), Decimal("1.665"))
    causes = result.sections["reconciliation_findings"].column("cause").to_pylist()
    assert causes[:2] == ["model_not_in_lake", "day_missing"]
    page = render_monthly(result)
    assert "Invoice reconciliation" in page
    assert "$1.665 of $2.14 billed by openai is explained by the lake&#x27;s calls (77.8%)" in page
    without = run_report("monthly", context, ReportRequest(period="2026-11"))
    assert "reconciliation" not in without.sections


def test_report_monthly_takes_the_invoice_on_the_command_line(lake: Lake) -> None:
    args = ["monthly", "--data-dir", str(lake.config.data_dir), "--period", "2026-11", "-f", "json"]
    args += ["--invoice-provider", "openai", "--invoice", str(GAPS[0]), "--invoice", str(GAPS[1])]
    result = CliRunner().invoke(report, args)
    assert result.exit_code == 0, result.output
    assert '"reconciliation_findings"' in result.stdout
