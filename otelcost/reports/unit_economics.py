"""unit-economics: what one user, session, agent run and tenant costs, and what an outcome costs.

Sections:

``distribution``
    One row per unit (``user``, ``session``, ``run`` = one trace, all its calls: an agent run;
    ``tenant``): how many units were active in the period, their total cost, the mean
    (rounded down to the picodollar), p50/p95/p99 (``quantile_disc``: actual values, exact) and
    the most expensive. Averages hide the tail; the percentiles and ``top`` show it.
``top``
    The ``--top`` most expensive units of each kind, with their share of that kind's total.
``workflows``
    Cost per run by workflow (agent name): runs, mean, p50, p95, max.
``tenants``
    Cost per tenant; with ``--revenue FILE.csv`` (``tenant_id,period,revenue_usd``) the revenue,
    gross margin after AI cost, AI cost as a share of revenue, and ``over_share`` for tenants
    above ``--max-cost-share``.
``outcomes``
    Cost per business outcome, per feature: from the span attribute
    ``reports.unit_economics.outcome_attribute`` (``app.outcome``; each distinct trace carrying a
    value counts as one outcome of that value), or from ``--outcomes FILE.csv``
    (``feature,day,outcomes`` and optionally ``outcome``). ``cost_per_outcome`` is the
    feature's whole spend in the period divided by its outcomes.

The cost is ``reports.unit_economics.cost`` (default ``effective_cost_usd``: what is paid).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Final

import pyarrow as pa

from otelcost.errors import ReportError
from otelcost.reports.base import ReportContext, ReportRequest, ReportResult, register
from otelcost.reports.dimensions import calls_where
from otelcost.reports.period import Period, parse_period
from otelcost.reports.sql import ArrowSQL, money_mean, money_quantile
from otelcost.schema import MONEY_TYPE

__all__ = ["read_outcomes", "read_revenue", "unit_economics"]

UNITS: Final = (("user", "user_id"), ("session", "session_id"), ("run", "trace_id"), ("tenant", "tenant_id"))
"""Unit name -> the column that identifies one unit."""

_QUANTUM: Final = Decimal("0.000000000001")


def units_sql(cost: str, where: str) -> str:
    """One row per active unit (user, session, run, tenant): its calls, cost and workflow; and
    one per (tenant, user) pair, ``unit = 'tenant_user'``, so the tenants section can count each
    tenant's users from the same rows. One scan, one ``GROUPING SETS`` aggregation."""
    kinds = " ".join(
        f"WHEN grouping({column}) = 0 AND grouping(user_id, tenant_id) <> 0 THEN '{unit}'"
        for unit, column in UNITS
    )
    ids = " ".join(f"WHEN grouping({column}) = 0 THEN {column}" for _, column in UNITS)
    sets = ", ".join(f"({column})" for _, column in UNITS)
    return f"""
SELECT unit, id, tenant_id, calls, cost, workflow FROM (
    SELECT CASE WHEN grouping(user_id, tenant_id) = 0 THEN 'tenant_user' {kinds} END AS unit,
           CASE WHEN grouping(user_id, tenant_id) = 0 THEN user_id {ids} END AS id,
           tenant_id, count(*) AS calls, sum({cost}) AS cost, any_value(workflow) AS workflow
    FROM (SELECT user_id, session_id, trace_id, tenant_id, workflow, {cost} FROM llm_calls WHERE {where})
    GROUP BY GROUPING SETS ({sets}, (tenant_id, user_id))
)
WHERE id IS NOT NULL AND (unit <> 'tenant_user' OR tenant_id IS NOT NULL)
"""


TENANTS_FROM_UNITS_SQL: Final = """
SELECT t.id AS tenant_id, t.calls, count(u.id) AS users, t.cost AS cost_usd
FROM unit_rows t LEFT JOIN unit_rows u ON u.unit = 'tenant_user' AND u.tenant_id = t.id
WHERE t.unit = 'tenant'
GROUP BY t.id, t.calls, t.cost
ORDER BY cost_usd DESC, tenant_id
"""
"""The tenants section from :func:`units_sql`'s rows, ``unit_rows`` (what :func:`tenants_sql`
reads alone when no other section needs the units)."""


# The three queries below run over the ``units`` rows above (fetched once, queried in memory):
# the per-unit grouping is the expensive part, so it is done once for all three sections.

DISTRIBUTION_SQL: Final = f"""
SELECT unit,
       count(*) AS units,
       sum(calls) AS calls,
       sum(cost) AS total_cost_usd,
       {money_mean("sum(cost)", "count(*)")} AS mean_cost_usd,
       {money_quantile("cost", "0.5")} AS p50_cost_usd,
       {money_quantile("cost", "0.95")} AS p95_cost_usd,
       {money_quantile("cost", "0.99")} AS p99_cost_usd,
       max(cost) AS max_cost_usd
FROM units
GROUP BY unit
ORDER BY array_position(['user', 'session', 'run', 'tenant'], unit)
"""

TOP_SQL: Final = """
WITH totals AS (SELECT unit, sum(cost) AS unit_total FROM units GROUP BY unit),
cutoff AS (SELECT unit, list_min(max(cost, $top)) AS least FROM units GROUP BY unit)
SELECT unit, id, calls, cost AS cost_usd, workflow, round(cost / unit_total, 6) AS share_of_unit_total
FROM units JOIN cutoff USING (unit) JOIN totals USING (unit)
WHERE cost >= least
QUALIFY row_number() OVER (PARTITION BY unit ORDER BY cost DESC, id) <= $top
ORDER BY array_position(['user', 'session', 'run', 'tenant'], unit), cost DESC, id
"""
"""The ``$top`` most expensive units per kind; the cutoff (the ``$top``-th largest cost) keeps
the sort to the few rows that can make the list, ties included."""

WORKFLOWS_SQL: Final = f"""
SELECT coalesce(workflow, '(no workflow)') AS workflow,
       count(*) AS runs,
       sum(calls) AS calls,
       sum(cost) AS total_cost_usd,
       {money_mean("sum(cost)", "count(*)")} AS mean_cost_per_run_usd,
       {money_quantile("cost", "0.5")} AS p50_cost_per_run_usd,
       {money_quantile("cost", "0.95")} AS p95_cost_per_run_usd,
       max(cost) AS max_cost_per_run_usd
FROM units
WHERE unit = 'run'
GROUP BY 1
ORDER BY total_cost_usd DESC, workflow
"""


def tenants_sql(cost: str, where: str) -> str:
    return f"""
SELECT tenant_id, count(*) AS calls, count(DISTINCT user_id) AS users, sum({cost}) AS cost_usd
FROM llm_calls WHERE {where} AND tenant_id IS NOT NULL
GROUP BY tenant_id
ORDER BY cost_usd DESC, tenant_id
"""


def attribute_outcomes_sql(cost: str, where: str) -> str:
    return f"""
WITH calls AS (
    SELECT feature, trace_id, {cost} AS cost, attributes[$outcome_attribute] AS outcome
    FROM llm_calls WHERE {where}
),
spend AS (SELECT feature, sum(cost) AS cost_usd FROM calls GROUP BY feature),
counted AS (
    SELECT feature, outcome, count(DISTINCT trace_id) AS outcomes
    FROM calls WHERE outcome IS NOT NULL GROUP BY feature, outcome
)
SELECT feature, outcome, outcomes, cost_usd,
       {money_mean("cost_usd", "outcomes")} AS cost_per_outcome_usd
FROM counted JOIN spend USING (feature)
ORDER BY feature, outcome
"""


def feature_spend_sql(cost: str, where: str) -> str:
    return f"SELECT feature, sum({cost}) AS cost_usd FROM llm_calls WHERE {where} GROUP BY feature"


# -- input files ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    feature: str
    outcome: str
    count: int


def _rows(path: Path, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as stream:
            reader = csv.DictReader(stream)
            header = [name.strip() for name in reader.fieldnames or ()]
            missing = [name for name in required if name not in header]
            if missing:
                raise ReportError(
                    f"{path}: missing column(s) {', '.join(missing)}; expected a header {','.join(required)}"
                )
            return [
                (index, {(k or "").strip(): (v or "").strip() for k, v in row.items()})
                for index, row in enumerate(reader, start=2)
            ]
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror}") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: not a CSV file: {exc}") from exc


def _amount(text: str, where: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ReportError(f"{where}: expected an amount such as 1250.00, got {text!r}") from None
    if not value.is_finite():
        raise ReportError(f"{where}: expected a finite amount, got {text!r}")
    return value


def read_revenue(path: Path, period: Period) -> dict[str, Decimal]:
    """Revenue per tenant for ``period`` from ``tenant_id,period,revenue_usd`` rows.

    A row counts when its period (``2026-11``, ``2026-Q4`` ... as ``--period`` takes) lies
    inside the report's period; rows of one tenant add up. ReportError names the line of a
    bad row.
    """
    revenue: dict[str, Decimal] = {}
    for line, row in _rows(path, ("tenant_id", "period", "revenue_usd")):
        where = f"{path}:{line}"
        if not row["tenant_id"]:
            raise ReportError(f"{where}: tenant_id is empty")
        try:
            row_period = parse_period(row["period"])
        except ValueError as exc:
            raise ReportError(f"{where}: {exc}") from None
        if row_period.start >= period.start and row_period.end <= period.end:
            revenue[row["tenant_id"]] = revenue.get(row["tenant_id"], Decimal(0)) + _amount(
                row["revenue_usd"], where
            )
    return revenue


def read_outcomes(path: Path, period: Period) -> list[Outcome]:
    """Outcomes per feature (and outcome name) on the days of ``period``, from
    ``feature,day,outcomes[,outcome]`` rows; ReportError names the line of a bad row."""
    days = set(period.days)
    totals: dict[tuple[str, str], int] = {}
    for line, row in _rows(path, ("feature", "day", "outcomes")):
        where = f"{path}:{line}"
        try:
            day = date.fromisoformat(row["day"])
            count = int(row["outcomes"])
        except ValueError:
            raise ReportError(f"{where}: expected a day YYYY-MM-DD and a whole number of outcomes") from None
        if count < 0:
            raise ReportError(f"{where}: outcomes must not be negative")
        if day in days:
            key = (row["feature"], row.get("outcome") or "outcomes")
            totals[key] = totals.get(key, 0) + count
    return [Outcome(feature, outcome, count) for (feature, outcome), count in sorted(totals.items())]


# -- the report -----------------------------------------------------------------------------------------


def _money(values: Sequence[Decimal | None]) -> pa.Array:
    return pa.array(
        [None if v is None else v.quantize(_QUANTUM, rounding="ROUND_FLOOR") for v in values], MONEY_TYPE
    )


def _over_share(cost: Decimal, revenue: Decimal | None, max_share: Decimal) -> bool | None:
    """AI cost above ``max_share`` of revenue (any cost against no revenue is above); None without revenue."""
    if revenue is None:
        return None
    if revenue <= 0:
        return cost > 0
    return cost > max_share * revenue


def _tenants(base: pa.Table, revenue: dict[str, Decimal] | None, max_share: Decimal) -> pa.Table:
    if revenue is None:
        return base
    rows = base.to_pylist()
    known = {row["tenant_id"] for row in rows}
    for tenant in sorted(set(revenue) - known):  # revenue and no AI cost: margin is the revenue
        rows.append({"tenant_id": tenant, "calls": 0, "users": 0, "cost_usd": Decimal(0)})
    revenues = [revenue.get(row["tenant_id"]) for row in rows]
    shares: list[float | None] = [
        None if r is None or r == 0 else float(row["cost_usd"] / r)
        for row, r in zip(rows, revenues, strict=True)
    ]
    return pa.table(
        {
            "tenant_id": [row["tenant_id"] for row in rows],
            "calls": pa.array([row["calls"] for row in rows], pa.int64()),
            "users": pa.array([row["users"] for row in rows], pa.int64()),
            "cost_usd": _money([row["cost_usd"] for row in rows]),
            "revenue_usd": _money(revenues),
            "gross_margin_usd": _money(
                [None if r is None else r - row["cost_usd"] for row, r in zip(rows, revenues, strict=True)]
            ),
            "cost_share_of_revenue": pa.array(
                [None if s is None else round(s, 6) for s in shares], pa.float64()
            ),
            "over_share": pa.array(
                [_over_share(row["cost_usd"], r, max_share) for row, r in zip(rows, revenues, strict=True)],
                pa.bool_(),
            ),
        }
    )


def _file_outcomes(
    context: ReportContext, where: str, params: dict[str, object], outcomes: list[Outcome]
) -> pa.Table:
    spend = {
        row["feature"]: row["cost_usd"]
        for row in context.query(feature_spend_sql(_cost(context), where), params).to_pylist()
    }
    costs = [spend.get(o.feature, Decimal(0)) for o in outcomes]
    return pa.table(
        {
            "feature": [o.feature for o in outcomes],
            "outcome": [o.outcome for o in outcomes],
            "outcomes": pa.array([o.count for o in outcomes], pa.int64()),
            "cost_usd": _money(costs),
            "cost_per_outcome_usd": _money(
                [None if o.count == 0 else c / o.count for o, c in zip(outcomes, costs, strict=True)]
            ),
        }
    )


def _cost(context: ReportContext) -> str:
    return context.config.unit_economics.cost


@register(
    "unit-economics",
    "Cost per user, session, agent run and tenant (p50/p95/p99, top-N); margin; cost per outcome.",
)
def unit_economics(context: ReportContext, request: ReportRequest) -> ReportResult:
    """The unit-economics sections of ``request`` (see the module docstring)."""
    period = request.resolved_period(context.now()).cut(context.now())
    where, params = calls_where(period, request.filters)
    cost = _cost(context)
    revenue = read_revenue(request.revenue_file, period) if request.revenue_file else None
    sections: dict[str, pa.Table] = {}
    tenants: pa.Table | None = None
    if any(request.wants(name) for name in ("distribution", "top", "workflows")):
        with ArrowSQL({"unit_rows": context.query(units_sql(cost, where), params)}) as units:
            units.create(
                "units", "SELECT * EXCLUDE (tenant_id) FROM unit_rows WHERE unit <> 'tenant_user'", view=True
            )
            if request.wants("distribution"):
                sections["distribution"] = units.query(DISTRIBUTION_SQL)
            if request.wants("top"):
                sections["top"] = units.query(TOP_SQL, {"top": request.top})
            if request.wants("workflows"):
                sections["workflows"] = units.query(WORKFLOWS_SQL)
            tenants = units.query(TENANTS_FROM_UNITS_SQL) if request.wants("tenants") else None
    elif request.wants("tenants"):
        tenants = context.query(tenants_sql(cost, where), params)
    if tenants is not None:
        sections["tenants"] = _tenants(tenants, revenue, request.max_cost_share)
    notes = [f"cost is {cost}; a run is one trace (every call of one agent run)"]
    if request.wants("outcomes"):
        if request.outcomes_file:
            outcomes = read_outcomes(request.outcomes_file, period)
            sections["outcomes"] = _file_outcomes(context, where, params, outcomes)
            notes.append(f"outcomes from {request.outcomes_file}")
        else:
            attribute = context.config.unit_economics.outcome_attribute
            sections["outcomes"] = context.query(
                attribute_outcomes_sql(cost, where), params | {"outcome_attribute": attribute}
            )
            notes.append(f"outcomes: distinct traces carrying the span attribute {attribute}")
    return ReportResult("unit-economics", period, sections, tuple(notes))
