"""``otelcost budgets status``: every budget instance's spend, limit and outlook, from the lake.

No running server is needed: the budgets of the configuration, with the admin API's stored
changes and overrides (``<data_dir>/budgets/state.json``, read only), are evaluated over the
lake exactly as the evaluator rebuilds them after a restart. Calls not yet flushed to the lake
(at most ``lake.flush_interval`` old) are not included.

``projected_exhaustion`` is a linear projection: the window's average spend rate so far
(spent / time since the window started) is assumed to continue, and the column shows when the
total would reach the limit -- empty when the limit is already reached (see ``action``), when
nothing was spent, or when the projection falls after the window ends. Rolling windows have no
projection: at a steady rate their total stays where it is.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
from pydantic import ValidationError

from otelcost.budgets.config import BudgetConfig, BudgetingConfig
from otelcost.budgets.engine import Engine, InstanceStatus, Rule
from otelcost.budgets.evaluator import effective_budgets
from otelcost.budgets.overrides import Override
from otelcost.budgets.rebuild import LakeQuery, rebuild_rule
from otelcost.budgets.store import BudgetStore, StoredState
from otelcost.errors import ConfigError
from otelcost.policy.decisions import format_scope
from otelcost.schema import MONEY_TYPE

__all__ = ["STATUS_SCHEMA", "budget_status", "status_table"]

_TIMESTAMP = pa.timestamp("us", tz="UTC")

STATUS_SCHEMA = pa.schema(
    [
        pa.field("budget", pa.string()),
        pa.field("scope", pa.string()),
        pa.field("window", pa.string()),
        pa.field("window_start", _TIMESTAMP),
        pa.field("window_end", _TIMESTAMP),
        pa.field("metric", pa.string()),
        pa.field("spent", MONEY_TYPE),
        pa.field("limit", MONEY_TYPE),
        pa.field("percent", pa.float64()),
        pa.field("action", pa.string()),
        pa.field("calls", pa.int64()),
        pa.field("unpriced_calls", pa.int64()),
        pa.field("projected_exhaustion", _TIMESTAMP),
    ]
)
"""Columns of the status table (spent and limit are USD for cost metrics, counts otherwise)."""


def budget_status(
    *,
    budgets: Sequence[BudgetConfig],
    settings: BudgetingConfig,
    lake: LakeQuery,
    state_dir: Path | None = None,
    now_ns: int | None = None,
) -> list[InstanceStatus]:
    """Evaluate every budget's open window over the lake, as of ``now_ns`` (default: now)."""
    now = time.time_ns() if now_ns is None else now_ns
    stored = BudgetStore(state_dir).load() if state_dir is not None else StoredState()
    try:
        entries = effective_budgets(budgets, stored)
        overrides = {k: Override.model_validate(v) for k, v in stored.overrides.items()}
    except ValidationError as exc:
        raise ConfigError(f"invalid stored budget state: {exc}") from exc
    engine = Engine([Rule.of(e.config, settings.timezone) for e in entries.values()], now_ns=now)
    engine.set_overrides(overrides, now_ns=now)
    for rule in engine.rules:
        rebuild_rule(engine, rule, lake, now)
    return engine.status(now)


def _us(ns: int | None) -> int | None:
    return None if ns is None else ns // 1000


def status_table(rows: Sequence[InstanceStatus]) -> pa.Table:
    """The rows as an Arrow table with :data:`STATUS_SCHEMA` (money exact, as DECIMAL)."""
    columns = {
        "budget": [r.budget for r in rows],
        "scope": [format_scope(r.scope) for r in rows],
        "window": [r.window for r in rows],
        "window_start": [_us(r.window_start_ns) for r in rows],
        "window_end": [_us(r.window_end_ns) for r in rows],
        "metric": [r.metric for r in rows],
        "spent": [r.spent for r in rows],
        "limit": [r.limit for r in rows],
        "percent": [float(round(r.spent * 100 / r.limit, 2)) if r.limit else None for r in rows],
        "action": [r.action.value for r in rows],
        "calls": [r.calls for r in rows],
        "unpriced_calls": [r.unpriced_calls for r in rows],
        "projected_exhaustion": [_us(r.projected_exhaustion_ns) for r in rows],
    }
    return pa.table(
        {name: pa.array(values, type=STATUS_SCHEMA.field(name).type) for name, values in columns.items()},
        schema=STATUS_SCHEMA,
    )
