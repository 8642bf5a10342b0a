"""Rebuilding window totals from the lake after a restart (or for a budget added at run time).

Window spend is a function of the ledger of priced calls, so it can always be recomputed: for
each budget, one DuckDB query over the lake's ``llm_calls`` view sums the calls of the open
window per instance (and per bucket for a window that slides), de-duplicated by
``(trace_id, span_id)`` exactly like the live path, and the engine is seeded with the result.
The decisions that follow are the ones the evaluator had before the restart: same calls, same
windows, same thresholds.

The dedup index is then seeded with the ids of the lake's calls in the open windows that were
received within ``budgeting.dedup_horizon`` of the newest one. That is the contract with the
spool (which replays requests not yet confirmed as written to the lake): **rebuild first, then
replay**. A replayed call that had reached the lake before the crash is recognised and not
counted twice; one that had not is counted once, by the live path. The spool must replay
requests with their original ``received_at`` (or at least within the horizon of the newest
lake row), which a replay of the stored request does.

Calls still buffered in the lake writer when a budget is *added at run time* are not in the
lake yet, so that budget's first totals miss at most ``lake.flush_interval`` of spend; the next
restart's rebuild includes them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Final

import pyarrow as pa

from otelcost.budgets.dedup import DedupIndex, span_keys
from otelcost.budgets.rules import Rule
from otelcost.budgets.snapshot import Engine

__all__ = ["LakeQuery", "lake_query", "rebuild_rule", "seed_dedup"]

log = logging.getLogger(__name__)

LakeQuery = Callable[[str, Mapping[str, object]], pa.Table]
"""Runs SQL with named parameters over the lake's ``llm_calls`` view."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_UNITS_SQL: Final = {
    "cost_usd": "sum(cost_usd)",
    "effective_cost_usd": "sum(effective_cost_usd)",
    "input_tokens": "sum(input_tokens)",
    "output_tokens": "sum(output_tokens)",
    "total_tokens": "sum(input_tokens + output_tokens)",
    "requests": "count(*)",
}


def lake_query(lake_dir: Path) -> LakeQuery:
    """The default LakeQuery: ``otelcost.lake.query.run_query`` on ``lake_dir``."""
    from otelcost.lake.query import run_query  # noqa: PLC0415 - the lake is optional here

    def run(sql: str, params: Mapping[str, object]) -> pa.Table:
        return run_query(lake_dir, sql, params)

    return run


def _datetime(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def _ns(moment: datetime | None) -> int:
    if moment is None:
        return 0
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _window_rows_sql(start_param: str) -> str:
    """Calls with ts in the open window, each (trace_id, span_id) once (first received)."""
    return (
        "SELECT * FROM llm_calls "
        f"WHERE date >= CAST(${start_param} AS DATE) AND ts >= ${start_param} "
        "QUALIFY row_number() OVER (PARTITION BY trace_id, span_id ORDER BY received_at) = 1"
    )


def rebuild_rule(
    engine: Engine, rule: Rule, query: LakeQuery, now_ns: int, *, received_until_ns: int | None = None
) -> int:
    """Seed ``rule``'s open window from the lake; return the number of instances seeded.

    ``received_until_ns`` limits the rebuild to calls received up to then: for a budget added
    while calls are being counted live, so that the two never overlap.
    """
    window = engine.open_window(rule.name, now_ns)
    params: dict[str, object] = {"start": _datetime(window.start_ns)}
    keys = [f"{_ident(dim)} AS k{i}" for i, dim in enumerate(rule.scope.wildcards)]
    conditions = [f"{_ident(dim)} IS NOT NULL" for dim in rule.scope.wildcards]
    if received_until_ns is not None:
        params["received_until"] = _datetime(received_until_ns)
        conditions.append("received_at <= $received_until")
    for f, (dim, values) in enumerate(rule.scope.fixed):
        names = [f"f{f}_{v}" for v in range(len(values))]
        params |= dict(zip(names, values, strict=True))
        conditions.append(f"{_ident(dim)} IN ({', '.join('$' + n for n in names)})")
    group = [f"k{i}" for i in range(len(keys))]
    bucket_sql = rule.window.bucket_sql("least(epoch_us(ts), $now_us)")  # as live: now at most
    if bucket_sql is not None:
        params["now_us"] = now_ns // 1000
        keys.append(f"{bucket_sql} AS bucket")
        group.append("bucket")
    select = ", ".join(
        [
            *keys,
            f"{_UNITS_SQL[rule.metric]} AS units",
            "count(*) AS calls",
            "sum(CASE WHEN pricing_status = 'priced' THEN 0 ELSE 1 END) AS unpriced",
            "max(received_at) AS as_of",
        ]
    )
    sql = f"SELECT {select} FROM ({_window_rows_sql('start')})"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    if group:
        sql += " GROUP BY " + ", ".join(group)
    table = query(sql, params)
    columns = {name: table[name].to_pylist() for name in table.column_names}
    seeded = set()
    for row in range(table.num_rows):
        key = tuple(str(columns[f"k{i}"][row]) for i in range(len(rule.scope.wildcards)))
        amount = columns["units"][row]
        if amount is None:
            continue
        units = rule.to_units(Decimal(amount))  # DuckDB sums to DECIMAL / HUGEINT: exact
        bucket = None
        if "bucket" in columns:
            bucket = int(columns["bucket"][row])
            if bucket < window.first_bucket:
                continue
        calls, unpriced = int(columns["calls"][row]), int(columns["unpriced"][row] or 0)
        engine.seed(rule.name, (key, bucket, units, calls, unpriced, _ns(columns["as_of"][row])))
        seeded.add(key)
    engine.settle(rule.name, now_ns)
    return len(seeded)


def seed_dedup(dedup: DedupIndex, engine: Engine, query: LakeQuery, now_ns: int) -> int:
    """Remember the lake's recent calls in open windows; return how many ids were seeded."""
    starts = [engine.open_window(rule.name, now_ns).start_ns for rule in engine.rules]
    if not starts:
        return 0
    params: dict[str, object] = {"start": _datetime(min(starts))}
    newest = query(f"SELECT max(received_at) AS newest FROM ({_window_rows_sql('start')})", params)
    newest_at = newest["newest"][0].as_py() if newest.num_rows else None
    if newest_at is None:
        return 0
    newest_ns = _ns(newest_at)
    params["cutoff"] = _datetime(newest_ns - dedup.horizon_ns)
    ids = query(
        f"SELECT trace_id, span_id FROM ({_window_rows_sql('start')}) WHERE received_at >= $cutoff",
        params,
    )
    dedup.seed(span_keys(ids["trace_id"], ids["span_id"]), newest_ns)
    return int(ids.num_rows)
