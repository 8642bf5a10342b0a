"""One pass over the lake for the day-level detectors: spend per scope and day.

The spike, week-over-week, model-switch and non-production detectors all judge daily (or
weekly) spend of some scope. Each used to read the lake itself, and every read of 10 million
calls is a hash aggregation of 10 million rows per grouping set (docs/benchmarks.md, "Reports").
Here one statement computes every grouping they need, and they then run over its few thousand
rows (``otelcost.reports.sql.ArrowSQL``).

The grouping sets, each by ``day`` and ``early`` (a call before ``$split`` on ``$partial_day``,
what the week-over-week detector needs when the week to date is cut at now; always false
otherwise):

* ``(feature, model)``: the model-switch detector's mix, and the daily spend of the ``feature``
  and ``model`` scopes, which are its sums (one grouping set instead of three);
* ``(<first other dimension>, environment, runaway workflow)``: the first watched dimension that
  is not feature or model (team, by default), with two columns of a handful of values riding
  along, because each grouping set costs about as much as the first and a few more groups in
  one costs nearly nothing: ``environment`` (the non-production detector; its sum over all
  environments, NULL included, is the day's total) and the workflow the runaway detector
  judges by (``workflow``, else ``service``: it counts the workflows it checked);
* one set per other watched dimension (tenant, service, ...).

:func:`read_rollup` returns the rows as :class:`Rollup`'s tables; their columns are documented
on the class. Spend is list price (``cost_usd``), exact DECIMAL; ``spend_sq`` is the sum of
squared call costs (DOUBLE: it only measures noise, it is never money shown).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

import pyarrow as pa

from otelcost.reports.base import ReportContext
from otelcost.reports.dimensions import DIMENSIONS
from otelcost.reports.sql import ArrowSQL

__all__ = ["TABLES", "Rollup", "read_rollup", "rollup_sql"]

_MIX: Final = ("feature", "model")
_ENVIRONMENT: Final = "environment"
_RUNAWAY_WORKFLOW: Final = "runaway_workflow"
_COMPANIONS: Final = (_ENVIRONMENT, _RUNAWAY_WORKFLOW)
TABLES: Final = ("scope_days", "environment_days", "feature_models", "workflow_days")
"""The tables of :class:`Rollup`, in the order :func:`_split_sql` builds them."""

_EXPRESSIONS: Final = {**DIMENSIONS, _RUNAWAY_WORKFLOW: "coalesce(workflow, service, '')"}


@dataclass(frozen=True, slots=True)
class Rollup:
    """The day-level spend the detectors read, as tables of a private DuckDB (:meth:`query`;
    close it, or use it as a context manager).

    ``scope_days``: ``dim`` (the position of the dimension in the watched ``dimensions``),
    ``value``, ``day``, ``early``, ``calls``, ``spend``, ``spend_sq``.
    ``environment_days``: ``environment``, ``day``, ``early``, ``calls``, ``spend``.
    ``feature_models``: ``feature``, ``model``, ``day``, ``calls``, ``spend``.
    ``workflow_days``: ``workflow`` (``workflow``, else ``service``), ``day``, ``calls``.
    """

    database: ArrowSQL

    def query(self, sql: str, params: Mapping[str, object] | None = None) -> pa.Table:
        return self.database.query(sql, params)

    def __enter__(self) -> Rollup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.database.close()


def _grouping_sets(dimensions: Sequence[str]) -> list[tuple[str, ...]]:
    """The key columns of each grouping set (besides day and early), each set once; the second
    is the one with the companions."""
    for name in dimensions:
        if name not in DIMENSIONS:
            raise ValueError(f"unknown dimension {name!r}")
    others = list(dict.fromkeys(n for n in dimensions if n not in _MIX and n != _ENVIRONMENT))
    lead = tuple(others[:1])
    return [_MIX, (*lead, *_COMPANIONS), *((name,) for name in others[1:])]


def _set_of(dimensions: Sequence[str], name: str) -> tuple[str, ...]:
    return next(keys for keys in _grouping_sets(dimensions) if name in keys)


def _key_columns(dimensions: Sequence[str]) -> list[str]:
    columns: list[str] = []
    for keys in _grouping_sets(dimensions):
        columns.extend(name for name in keys if name not in columns)
    return columns


def rollup_sql(dimensions: Sequence[str], where: str, *, split: bool) -> str:
    """The rollup statement over the calls ``where`` selects (see the module docstring).

    Key columns are named ``k_<dimension>`` (dimension names come from the whitelist only);
    ``mask`` is DuckDB's ``grouping()`` bitmask of them, which tells the grouping sets apart.
    """
    columns = _key_columns(dimensions)
    selected = ", ".join(f"{_EXPRESSIONS[name]} AS k_{name}" for name in columns)
    keys = ", ".join(f"k_{name}" for name in columns)
    sets = ", ".join(
        "(day, early, " + ", ".join(f"k_{name}" for name in group) + ")"
        for group in _grouping_sets(dimensions)
    )
    early = "coalesce(date = $partial_day AND ts < $split, false)" if split else "false"
    return f"""
SELECT grouping({keys}) AS mask, {keys}, day, early,
       count(*) AS calls, sum(cost_usd) AS spend, sum(cost_sq) AS spend_sq
FROM (
    SELECT date AS day, {early} AS early, cost_usd, power(cost_usd::DOUBLE, 2) AS cost_sq, {selected}
    FROM llm_calls WHERE {where}
)
GROUP BY GROUPING SETS ({sets})
"""


def _mask(columns: Sequence[str], keys: Sequence[str]) -> int:
    """DuckDB's ``grouping()`` of a set keyed by ``keys``: bit ``n - 1 - i`` set for each column
    ``i`` the set does not group by."""
    width = len(columns)
    return sum(1 << (width - 1 - i) for i, name in enumerate(columns) if name not in keys)


def _split_sql(dimensions: Sequence[str]) -> list[str]:
    """The statements that turn the rollup's rows into the tables of :class:`Rollup`."""
    columns = _key_columns(dimensions)

    def rows_of(name: str) -> str:
        return f"FROM rollup WHERE mask = {_mask(columns, _set_of(dimensions, name))}"

    scopes = [
        f"SELECT {position} AS dim, k_{name} AS value, day, early, sum(calls)::BIGINT AS calls, "
        f"sum(spend) AS spend, sum(spend_sq) AS spend_sq {rows_of(name)} GROUP BY ALL"
        for position, name in enumerate(dimensions)
    ]
    return [
        "\nUNION ALL\n".join(scopes),
        "SELECT k_environment AS environment, day, early, sum(calls)::BIGINT AS calls, sum(spend) AS spend "
        f"{rows_of(_ENVIRONMENT)} GROUP BY ALL",
        "SELECT k_feature AS feature, k_model AS model, day, sum(calls)::BIGINT AS calls, "
        f"sum(spend) AS spend {rows_of('feature')} GROUP BY ALL",
        f"SELECT k_{_RUNAWAY_WORKFLOW} AS workflow, day, sum(calls)::BIGINT AS calls "
        f"{rows_of(_RUNAWAY_WORKFLOW)} GROUP BY ALL",
    ]


def read_rollup(
    context: ReportContext,
    dimensions: Sequence[str],
    where: str,
    params: dict[str, object],
    *,
    partial_day: date | None = None,
    split: datetime | None = None,
) -> Rollup:
    """Read the rollup of the calls ``where``/``params`` select; ``partial_day`` and ``split``
    mark the calls of that day before that instant ``early`` (both or neither)."""
    cut = partial_day is not None and split is not None
    if cut:
        params = params | {"partial_day": partial_day, "split": split}
    rows = context.query(rollup_sql(dimensions, where, split=cut), params)
    database = ArrowSQL({"rollup": rows})
    for name, sql in zip(TABLES, _split_sql(dimensions), strict=True):
        database.create(name, sql)
    return Rollup(database)
