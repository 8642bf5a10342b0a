"""The unattributed-spend report: which services make calls that lack required attribution.

A call missing a required dimension is stored with ``attribution_status = 'incomplete'`` and the
missing dimensions in ``missing_dimensions`` (docs/attribution.md). This report groups those calls
by service: how many, how much they cost, out of how many calls and how much spend in all, and
which dimensions are missing how often. It is plain DuckDB SQL over the lake's ``llm_calls`` view,
so it runs the same through ``otelcost report unattributed`` and ``otelcost sql``. Calls from
``$since`` to ``$until`` (exclusive).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import pyarrow as pa

from otelcost.lake.query import run_query
from otelcost.reports.base import ReportContext, ReportRequest, ReportResult, register

__all__ = ["SQL", "unattributed", "unattributed_report"]

SQL: Final = """
WITH by_service AS (
    SELECT coalesce(service, '(no service.name)') AS service,
           count(*) AS calls,
           sum(cost_usd) AS cost_usd,
           count(*) FILTER (WHERE attribution_status = 'incomplete') AS incomplete_calls,
           coalesce(sum(cost_usd) FILTER (WHERE attribution_status = 'incomplete'), 0) AS incomplete_cost_usd
    FROM llm_calls
    WHERE date BETWEEN $since::DATE AND $until::DATE AND ts >= $since AND ts < $until
    GROUP BY 1
),
by_dimension AS (
    SELECT service, dimension, count(*) AS n
    FROM (
        SELECT coalesce(service, '(no service.name)') AS service, unnest(missing_dimensions) AS dimension
        FROM llm_calls
        WHERE date BETWEEN $since::DATE AND $until::DATE AND ts >= $since AND ts < $until
          AND attribution_status = 'incomplete'
    )
    GROUP BY service, dimension
),
missing AS (
    SELECT service,
           string_agg(dimension || ' (' || n || ')', ', ' ORDER BY n DESC, dimension) AS missing
    FROM by_dimension
    GROUP BY service
)
SELECT s.service,
       s.incomplete_calls,
       s.calls,
       s.incomplete_cost_usd,
       s.cost_usd,
       coalesce(m.missing, '') AS missing
FROM by_service AS s
LEFT JOIN missing AS m USING (service)
WHERE s.incomplete_calls > 0
ORDER BY s.incomplete_cost_usd DESC, s.incomplete_calls DESC, s.service
"""
"""One row per service with incomplete calls since ``$since``: ``incomplete_calls`` of ``calls``,
``incomplete_cost_usd`` of ``cost_usd`` (exact decimals), and ``missing`` such as
``tenant_id (12), team (3)`` (calls missing each required dimension, most frequent first)."""


def unattributed(
    lake_dir: Path, *, since: datetime, until: datetime | None = None, timeout: float | None = None
) -> pa.Table:
    """Run :data:`SQL` over the lake in ``lake_dir``; raises ``LakeError`` (from the lake module)."""
    params = {"since": since, "until": until or datetime.max.replace(tzinfo=UTC)}
    return run_query(lake_dir, SQL, params, timeout=timeout)


@register("unattributed", "Spend and calls by service that lack required attribution, and what is missing.")
def unattributed_report(context: ReportContext, request: ReportRequest) -> ReportResult:
    """The unattributed report of ``request``'s period (section ``services``).

    A call is incomplete when a dimension listed in attribution.required has no value
    (docs/attribution.md). One row per service with incomplete calls, most incomplete spend first.
    """
    period = request.resolved_period(context.now()).cut(context.now())
    table = context.query(SQL, {"since": period.start, "until": period.end})
    return ReportResult("unattributed", period, {"services": table})
