"""Correction rows: what changed in the lake since a period was last exported.

A row's *key* is every column but its measures (costs, quantities, unit prices, x_Calls) and
its bookkeeping (ChargeClass, x_ExportVersion). For each key, the rows exported so far
(originals and earlier corrections) are summed and compared with the live row; a difference
becomes one row with ``ChargeClass = "Correction"`` carrying the difference of every measure,
so the sum of all rows of a key always equals what the lake says now:

* a reprice changed a cost: a correction of the cost difference, quantities 0;
* a reprice changed the price version (a new price_ref, so a new key): a correction that
  takes the old key's amounts out (negative) and one that puts the new key's in;
* calls arrived late: a correction of their tokens and cost.

Unit prices are NULL on correction rows (a difference has no unit price of its own); the
live row's prices are in its own original row when the key is new in a later version.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Final

import pyarrow as pa

__all__ = ["MEASURES", "correction_rows", "row_key"]

MEASURES: Final = (
    "BilledCost",
    "ConsumedQuantity",
    "ContractedCost",
    "EffectiveCost",
    "ListCost",
    "PricingQuantity",
    "x_Calls",
)
"""The columns a correction carries the difference of."""

_NOT_KEY: Final = frozenset(
    {*MEASURES, "ListUnitPrice", "ContractedUnitPrice", "ChargeClass", "x_ExportVersion"}
)


def row_key(row: dict[str, Any], names: Iterable[str]) -> tuple[Any, ...]:
    return tuple(row[name] for name in names if name not in _NOT_KEY)


def _zero(name: str) -> Decimal | int:
    return 0 if name == "x_Calls" else Decimal(0)


def _sums(rows: Iterable[dict[str, Any]], names: list[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    totals: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = row_key(row, names)
        if key not in totals:
            totals[key] = dict(row, **{name: _zero(name) for name in MEASURES})
        for name in MEASURES:
            totals[key][name] += row[name] or _zero(name)
    return totals


def correction_rows(exported: pa.Table, live: pa.Table, version: int) -> pa.Table:
    """The correction rows (``x_ExportVersion = version``) that bring ``exported`` to ``live``."""
    names = live.schema.names
    before = _sums(exported.to_pylist(), names)
    after = _sums(live.to_pylist(), names)
    rows = []
    for key in sorted(set(before) | set(after), key=repr):
        old = before.get(key)
        new = after.get(key)
        template = new if new is not None else old
        assert template is not None
        deltas = {
            name: (new[name] if new else _zero(name)) - (old[name] if old else _zero(name))
            for name in MEASURES
        }
        if all(value == 0 for value in deltas.values()):
            continue
        rows.append(
            dict(
                template,
                **deltas,
                ChargeClass="Correction",
                ListUnitPrice=None,
                ContractedUnitPrice=None,
                x_ExportVersion=version,
            )
        )
    return pa.Table.from_pylist(rows, live.schema)
