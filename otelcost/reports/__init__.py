"""FinOps reports over the lake: one implementation behind the CLI, the API and Python.

::

    from otelcost.reports import ReportContext, ReportRequest, run_report

    request = ReportRequest(period="2026-11", by="team,feature")
    result = run_report("showback", ReportContext(lake_dir), request)
    result.table            # the main section, a pyarrow.Table (money as DECIMAL(38, 12))
    result.sections         # every section by name
    result.to_json()        # the document GET /v1/reports/showback answers

docs/reports.md describes every report and the SQL it runs.
"""

# Each module registers its report when imported.
from otelcost.reports import (  # noqa: F401
    anomalies,
    chargeback,
    forecast,
    monthly,
    optimize,
    showback,
    unattributed,
    unit_economics,
)
from otelcost.reports.base import REPORTS, ReportContext, ReportRequest, ReportResult, run_report
from otelcost.reports.period import Period, parse_period, resolve_period

__all__ = [
    "REPORTS",
    "Period",
    "ReportContext",
    "ReportRequest",
    "ReportResult",
    "parse_period",
    "resolve_period",
    "run_report",
]
