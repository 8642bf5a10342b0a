"""The unattributed-spend report: which services make calls that lack required attribution.

A call missing a required dimension is stored with ``attribution_status = 'incomplete'`` and the
missing dimensions in ``missing_dimensions`` (docs/attribution.md). This report groups those calls
by service: how many, how much they cost, out of how many calls and how much spend in all, and
which dimensions are missing how often. It is plain DuckDB SQL over the lake's ``llm_calls`` view,
so it runs the same through ``otelcost report unattributed`` and ``otelcost sql``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pyarrow as pa

from otelcost.lake.query import run_query

__all__ = ["SQL", "parse_since", "unattributed"]

_AGO_RE: Final = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_AGO_UNITS: Final = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, *, now: datetime | None = None) -> datetime:
    """``7d`` / ``24h`` / ``30m`` / ``2w`` ago, or an ISO date or timestamp (UTC if no zone).

    Raises ValueError naming the accepted forms.
    """
    match = _AGO_RE.match(value)
    if match:
        now = now or datetime.now(UTC)
        return now - timedelta(**{_AGO_UNITS[match[2]]: int(match[1])})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"expected a duration such as 7d or 24h, or a date such as 2026-01-31, got {value!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


SQL: Final = """
WITH calls AS (
    SELECT coalesce(service, '(no service.name)') AS service,
           cost_usd, attribution_status, missing_dimensions
    FROM llm_calls
    WHERE ts >= $since
),
by_service AS (
    SELECT service,
           count(*) AS calls,
           sum(cost_usd) AS cost_usd,
           count(*) FILTER (WHERE attribution_status = 'incomplete') AS incomplete_calls,
           coalesce(sum(cost_usd) FILTER (WHERE attribution_status = 'incomplete'), 0) AS incomplete_cost_usd
    FROM calls
    GROUP BY service
),
by_dimension AS (
    SELECT service, dimension, count(*) AS n
    FROM (
        SELECT service, unnest(missing_dimensions) AS dimension
        FROM calls
        WHERE attribution_status = 'incomplete'
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


def unattributed(lake_dir: Path, *, since: datetime, timeout: float | None = None) -> pa.Table:
    """Run :data:`SQL` over the lake in ``lake_dir``; raises ``LakeError`` (from the lake module)."""
    return run_query(lake_dir, SQL, {"since": since}, timeout=timeout)
