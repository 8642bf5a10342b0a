"""Evidence queries: the SQL an analyst pastes into ``otelcost sql`` to see a finding's rows.

Unlike the detectors' own SQL, these strings carry their values as literals, because they are
meant to be read, copied and run by a person. They are display text only: the report never
executes them. Literals are written the SQL way: strings in single quotes with each quote
doubled (``'o''brien'``), dates as ``DATE '2026-11-04'``, instants as ``TIMESTAMPTZ '...'``; a
missing value is ``IS NULL``. Every query names its ``date`` range so DuckDB reads only those
partitions, and repeats the report's ``--filter`` conditions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from otelcost.reports.dimensions import DIMENSIONS

__all__ = [
    "context_growth_evidence",
    "daily_evidence",
    "model_switch_evidence",
    "non_production_evidence",
    "runaway_evidence",
    "sql_literal",
]

Filters = Sequence[tuple[str, str]]


def sql_literal(value: object) -> str:
    """``value`` as a DuckDB literal (for display; see the module docstring)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        return f"TIMESTAMPTZ '{value.isoformat()}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, int | Decimal):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _equals(expression: str, value: str | None) -> str:
    return f"{expression} IS NULL" if value is None else f"{expression} = {sql_literal(value)}"


def _where(first: date, last: date, conditions: Sequence[str], filters: Filters) -> str:
    days = (
        f"date = {sql_literal(first)}"
        if first == last
        else f"date BETWEEN {sql_literal(first)} AND {sql_literal(last)}"
    )
    parts = [days, *conditions, *(_equals(DIMENSIONS[name], value) for name, value in filters)]
    return "\n  AND ".join(parts)


def daily_evidence(dimension: str, value: str | None, first: date, last: date, filters: Filters) -> str:
    """The daily calls and spend of one scope from ``first`` to ``last`` (spikes, jumps)."""
    return (
        "SELECT date, dayname(date) AS weekday, count(*) AS calls, sum(cost_usd) AS cost_usd\n"
        "FROM llm_calls\n"
        f"WHERE {_where(first, last, [_equals(DIMENSIONS[dimension], value)], filters)}\n"
        "GROUP BY date\nORDER BY date"
    )


def runaway_evidence(column: str, value: str, first: date, last: date, filters: Filters) -> str:
    """Calls, tokens and spend per minute of one trace or session (``column``)."""
    return (
        "SELECT time_bucket(INTERVAL 1 MINUTE, ts) AS minute, count(*) AS calls,\n"
        "       sum(input_tokens + output_tokens) AS tokens, sum(cost_usd) AS cost_usd\n"
        "FROM llm_calls\n"
        f"WHERE {_where(first, last, [_equals(column, value)], filters)}\n"
        "GROUP BY minute\nORDER BY minute"
    )


def model_switch_evidence(feature: str, first: date, last: date, filters: Filters) -> str:
    """Calls, spend and cost per call of one feature per day and model."""
    return (
        f"SELECT date, {DIMENSIONS['model']} AS model, count(*) AS calls, sum(cost_usd) AS cost_usd,\n"
        "       sum(cost_usd) / count(*) AS cost_per_call\n"
        "FROM llm_calls\n"
        f"WHERE {_where(first, last, [_equals('feature', feature)], filters)}\n"
        "GROUP BY ALL\nORDER BY date, model"
    )


def context_growth_evidence(
    feature: str | None, sessions: Sequence[str], first: date, last: date, filters: Filters
) -> str:
    """The calls of the named sessions of one feature, in order, with their input tokens."""
    listed = ", ".join(sql_literal(s) for s in sessions)
    conditions = [_equals("feature", feature), f"session_id IN ({listed})"]
    return (
        "SELECT session_id, ts, input_tokens, output_tokens, cost_usd\n"
        "FROM llm_calls\n"
        f"WHERE {_where(first, last, conditions, filters)}\n"
        "ORDER BY session_id, ts"
    )


def non_production_evidence(first: date, last: date, filters: Filters) -> str:
    """Spend per day and environment with each environment's share of the day."""
    return (
        "SELECT date, environment, count(*) AS calls, sum(cost_usd) AS cost_usd,\n"
        "       round(sum(cost_usd) / sum(sum(cost_usd)) OVER (PARTITION BY date), 4) AS share\n"
        "FROM llm_calls\n"
        f"WHERE {_where(first, last, [], filters)}\n"
        "GROUP BY date, environment\nORDER BY date, cost_usd DESC"
    )
