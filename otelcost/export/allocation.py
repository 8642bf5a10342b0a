"""Chargeback's shared spend as FOCUS 1.3 allocated charges (``--allocation``).

The chargeback report (``reports.chargeback``) takes calls out of their receiver's direct spend
into a rule's pool (``shared.unattributed`` or ``shared.where``) and splits each pool over
receivers. The export shows the same split the way FOCUS 1.3 describes data-generator split
cost allocation: each origin row whose calls are in a pool is replaced by one *allocated
charge* per receiver, in which

* every summable metric (the four costs, both quantities, x_Calls) is the receiver's part of
  the origin row's, split in integer picodollars / micro-tokens / calls by largest remainder,
  so the allocated rows add up to the origin row exactly;
* every dimension, unit price and the Tags are the origin row's;
* AllocatedMethodId is ``otelcost.chargeback/<rule>``, AllocatedMethodDetails the rule's spread
  and the receiver's share, AllocatedResourceId / AllocatedResourceName the receiver, and
  AllocatedTags ``{<charge_to>: <receiver>}``.

The receivers' shares are those of the chargeback of the same period: each receiver's
allocated amount of the rule over the pool (``compute_chargeback``, exact decimals). Rules
with ``amount_per_month`` share a fixed amount no call carries, so there is no origin row to
split: they are left out (docs/focus.md). A pool without receivers stays unallocated rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

from otelcost.errors import ReportError
from otelcost.reports.base import ReportContext
from otelcost.reports.chargeback.allocate import split
from otelcost.reports.chargeback.report import compute_chargeback
from otelcost.reports.config import AllocationRule
from otelcost.reports.period import Period

__all__ = ["ROW_DIMENSIONS", "AllocationPlan", "allocate_row", "plan_allocation"]

ROW_DIMENSIONS: Final = {
    "team": "team",
    "cost_center": "cost_center",
    "feature": "feature",
    "tenant_id": "tenant_id",
    "project": "project",
    "workflow": "workflow",
    "environment": "environment",
    "service": "service",
    "provider": "provider",
    "model": "model_name",
    "service_tier": "service_tier",
}
"""Chargeback dimension -> the column of a FOCUS group that holds it (user_id, session_id and
operation are not kept by the rows, so rules on them cannot be exported)."""

_COSTS: Final = ("BilledCost", "ContractedCost", "EffectiveCost", "ListCost")
_QUANTITIES: Final = ("ConsumedQuantity", "PricingQuantity")


@dataclass(frozen=True, slots=True)
class _Pool:
    rule: AllocationRule
    shares: dict[str, Fraction]


@dataclass(frozen=True, slots=True)
class AllocationPlan:
    """The chargeback's dimension and, per rule that pools calls, the receivers' shares."""

    charge_to: str
    pools: tuple[_Pool, ...]

    def pool_of(self, group: dict[str, Any]) -> _Pool | None:
        """The first rule whose pool the group's calls are in (as chargeback_sql decides)."""
        receiver = group[ROW_DIMENSIONS[self.charge_to]]
        for pool in self.pools:
            shared = pool.rule.shared
            if shared.unattributed:
                if receiver is None or receiver == "":
                    return pool
            elif all(group[ROW_DIMENSIONS[name]] in values for name, values in shared.where.items()):
                return pool
        return None


def _check_dimension(name: str, what: str) -> None:
    if name not in ROW_DIMENSIONS:
        raise ReportError(
            f"--allocation cannot export {what} on {name!r}: the FOCUS rows keep {', '.join(ROW_DIMENSIONS)}"
        )


def plan_allocation(context: ReportContext, period: Period) -> AllocationPlan:
    """The receivers' shares of each call pool, from the chargeback of ``period``."""
    config = context.config.chargeback
    _check_dimension(config.charge_to, "a chargeback to")
    chargeback = compute_chargeback(context, period)
    amounts: dict[str, dict[str, Decimal]] = {}
    for row in chargeback.statement.to_pylist():
        if row["kind"] == "allocated" and row["receiver"] is not None:
            amounts.setdefault(row["rule"], {})[row["receiver"]] = row["cost_usd"]
    pools = []
    for rule in config.rules:
        if rule.shared.amount_per_month is not None:
            continue  # no call carries a fixed amount: nothing to split
        for name in rule.shared.where:
            _check_dimension(name, f"rule {rule.name}")
        received = {
            name: Fraction(amount) for name, amount in amounts.get(rule.name, {}).items() if amount > 0
        }
        total = sum(received.values(), Fraction(0))
        pools.append(_Pool(rule, {name: value / total for name, value in received.items()} if total else {}))
    return AllocationPlan(config.charge_to, tuple(pools))


def _split_scaled(total: Decimal | int, shares: dict[str, Fraction], scale: int) -> dict[str, Decimal | int]:
    units = int(Decimal(total).scaleb(scale))
    parts = {share.receiver: share.pico for share in split(units, shares)}
    if isinstance(total, int):
        return dict(parts.items())
    return {name: Decimal(value).scaleb(-scale) for name, value in parts.items()}


def allocate_row(row: dict[str, Any], pool: _Pool | None, charge_to: str) -> list[dict[str, Any]]:
    """``row`` as allocated charges of ``pool``'s receivers (unchanged when not pooled)."""
    if pool is None or not pool.shares:
        return [row]
    splits: dict[str, dict[str, Decimal | int]] = {}
    for name in _COSTS:
        splits[name] = _split_scaled(row[name], pool.shares, 12)
    for name in _QUANTITIES:
        splits[name] = _split_scaled(row[name], pool.shares, 6)
    splits["x_Calls"] = _split_scaled(int(row["x_Calls"]), pool.shares, 0)
    allocated = []
    for receiver, share in sorted(pool.shares.items()):
        measures = {name: parts.get(receiver, 0) for name, parts in splits.items()}
        if all(value == 0 for value in measures.values()):
            continue
        details = {"x_Rule": pool.rule.name, "x_Share": str(share), "x_Spread": pool.rule.spread}
        allocated.append(
            dict(
                row,
                **measures,
                AllocatedMethodId=f"otelcost.chargeback/{pool.rule.name}",
                AllocatedMethodDetails=json.dumps(details, sort_keys=True, separators=(",", ":")),
                AllocatedResourceId=receiver,
                AllocatedResourceName=receiver,
                AllocatedTags=json.dumps({charge_to: receiver}, sort_keys=True, separators=(",", ":")),
            )
        )
    return allocated
