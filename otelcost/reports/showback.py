"""showback: who spent what in a period, and how that changed against the period before.

One row per combination of the ``by`` dimensions (default: team) with calls, tokens, list and
effective cost (exact DECIMAL), the share of the period's total, and the cost of the previous
period of the same length with the change. A scope that spent before but not now is a row too
(cost 0, change negative): a team that stopped spending is news as well. The SQL is
:func:`showback_sql`; docs/reports.md shows it for ``--by team``.
"""

from __future__ import annotations

from collections.abc import Sequence

from otelcost.reports.base import ReportContext, ReportRequest, ReportResult, register
from otelcost.reports.dimensions import calls_where, dimension_sql

__all__ = ["DEFAULT_BY", "showback", "showback_sql"]

DEFAULT_BY = ("team",)


def showback_sql(by: Sequence[str], current_where: str, previous_where: str) -> str:
    """The showback query grouped by ``by`` (canonical dimension names, see dimensions.py)."""
    dims = ", ".join(dimension_sql(d) for d in by)
    keys = ", ".join(by)
    joined = " AND ".join(f"cur.{d} IS NOT DISTINCT FROM prev.{d}" for d in by)
    picked = ", ".join(f"coalesce(cur.{d}, prev.{d}) AS {d}" for d in by)
    return f"""
WITH cur AS (
    SELECT {dims},
           count(*) AS calls,
           sum(input_tokens) AS input_tokens,
           sum(output_tokens) AS output_tokens,
           sum(cache_read_tokens) AS cache_read_tokens,
           sum(reasoning_tokens) AS reasoning_tokens,
           sum(cost_usd) AS cost_usd,
           sum(effective_cost_usd) AS effective_cost_usd
    FROM llm_calls
    WHERE {current_where}
    GROUP BY {keys}
),
prev AS (
    SELECT {dims}, sum(cost_usd) AS previous_cost_usd
    FROM llm_calls
    WHERE {previous_where}
    GROUP BY {keys}
),
rows AS (
    SELECT {picked},
           coalesce(cur.calls, 0) AS calls,
           coalesce(cur.input_tokens, 0) AS input_tokens,
           coalesce(cur.output_tokens, 0) AS output_tokens,
           coalesce(cur.cache_read_tokens, 0) AS cache_read_tokens,
           coalesce(cur.reasoning_tokens, 0) AS reasoning_tokens,
           coalesce(cur.cost_usd, 0)::DECIMAL(38, 12) AS cost_usd,
           coalesce(cur.effective_cost_usd, 0)::DECIMAL(38, 12) AS effective_cost_usd,
           coalesce(prev.previous_cost_usd, 0)::DECIMAL(38, 12) AS previous_cost_usd
    FROM cur FULL OUTER JOIN prev ON {joined}
)
SELECT *,
       round(CASE WHEN sum(cost_usd) OVER () = 0 THEN NULL
                  ELSE cost_usd / sum(cost_usd) OVER () END, 6) AS share,
       (cost_usd - previous_cost_usd)::DECIMAL(38, 12) AS change_usd,
       round(CASE WHEN previous_cost_usd = 0 THEN NULL
                  ELSE (cost_usd - previous_cost_usd) / previous_cost_usd END, 6) AS change_ratio
FROM rows
ORDER BY cost_usd DESC, previous_cost_usd DESC, {keys}
"""


@register("showback", "Spend by any dimensions for a period: calls, tokens, cost, share, change.")
def showback(context: ReportContext, request: ReportRequest) -> ReportResult:
    """The showback rows of ``request`` (section ``spend``)."""
    by = request.by or DEFAULT_BY
    current, previous = request.resolved_period(context.now()).compared(context.now())
    current_where, params = calls_where(current, request.filters)
    previous_where, previous_params = calls_where(previous, request.filters, prefix="prev_")
    table = context.query(showback_sql(by, current_where, previous_where), params | previous_params)
    notes = (
        f"compared with {previous.start.date().isoformat()} to {previous.end.isoformat()} "
        "(the previous period, cut to the same elapsed length)",
    )
    return ReportResult("showback", current, {"spend": table}, notes)
