"""Budget status: every budget instance's spend, limit and outlook (:class:`InstanceStatus`).

:func:`instance_status` reads the rows off an engine (``Evaluator.status()``).
:func:`budget_status` is ``otelcost budgets status``, and needs no running server: the budgets
of the configuration, with the admin API's stored changes and overrides
(``<data_dir>/budgets/state.json``, read only), are evaluated over the lake exactly as the
evaluator rebuilds them after a restart. Calls not yet flushed to the lake (at most
``lake.flush_interval`` old) are not included.

``projected_exhaustion`` is a linear projection: the window's average spend rate so far
(spent / time since the window started) is assumed to continue, and the column shows when the
total would reach the limit -- empty when the limit is already reached (see ``action``), when
nothing was spent, or when the projection falls after the window ends. Rolling windows (any
window that slides) have no projection: at a steady rate their total stays where it is.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
from pydantic import ValidationError

from otelcost.budgets.admin import effective_budgets
from otelcost.budgets.config import BudgetConfig, BudgetingConfig
from otelcost.budgets.overrides import Override
from otelcost.budgets.rebuild import LakeQuery, rebuild_rule
from otelcost.budgets.rules import Rule
from otelcost.budgets.snapshot import Engine
from otelcost.budgets.store import BudgetStore, StoredState
from otelcost.errors import ConfigError
from otelcost.policy.decisions import Action, format_scope
from otelcost.schema import MONEY_TYPE

__all__ = ["STATUS_SCHEMA", "InstanceStatus", "budget_status", "instance_status", "status_table"]

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


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    """One row of ``otelcost budgets status``."""

    budget: str
    scope: Mapping[str, str | tuple[str, ...]]
    window: str
    window_start_ns: int | None
    window_end_ns: int | None
    metric: str
    spent: Decimal
    limit: Decimal
    action: Action
    calls: int
    unpriced_calls: int
    projected_exhaustion_ns: int | None
    exceeded: bool


def instance_status(engine: Engine, now_ns: int) -> list[InstanceStatus]:
    """Every instance of ``engine`` with spend in its open window at ``now_ns``."""
    engine.advance(now_ns)
    rows: list[InstanceStatus] = []
    for totals in engine.ledger.budgets.values():
        rule, window = totals.rule, totals.window
        for key, instance in sorted(totals.instances.items()):
            instance.age(window.first_bucket)
            if not instance.calls:
                continue
            limit_units, _ = engine.limit_for(rule, key, now_ns)
            action, _ = rule.ladder[bisect.bisect_right(rule.threshold_units(limit_units), instance.units)]
            rows.append(
                InstanceStatus(
                    budget=rule.name,
                    scope=rule.scope.instance_scope(key),
                    window=rule.window.label,
                    window_start_ns=window.start_ns,
                    window_end_ns=window.end_ns,
                    metric=rule.metric,
                    spent=rule.to_amount(instance.units),
                    limit=rule.to_amount(limit_units),
                    action=action,
                    calls=instance.calls,
                    unpriced_calls=instance.unpriced,
                    projected_exhaustion_ns=_projection(
                        instance.units, limit_units, window.start_ns, window.end_ns, now_ns
                    ),
                    exceeded=instance.units >= limit_units,
                )
            )
    return rows


def _projection(units: int, limit_units: int, start_ns: int, end_ns: int | None, now_ns: int) -> int | None:
    """Linear projection of when a window's spend reaches the limit.

    The window's average rate so far (spent / elapsed) is assumed to continue; None when the
    limit is already reached, nothing was spent, or the projection lands after the window ends.
    A window that slides (no end) has no projection: at a steady rate its total stays flat.
    """
    if end_ns is None or units <= 0 or units >= limit_units:
        return None
    elapsed = max(1, now_ns - start_ns)
    projected = now_ns + (limit_units - units) * elapsed // units
    return projected if projected < end_ns else None


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
    rules = [Rule.of(e.config, e.config.window_in(settings.timezone)) for e in entries.values()]
    engine = Engine(rules, now_ns=now)
    engine.set_overrides(overrides, now_ns=now)
    for rule in engine.rules:
        rebuild_rule(engine, rule, lake, now)
    return instance_status(engine, now)


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
