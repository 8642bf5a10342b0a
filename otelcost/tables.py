"""Arrow helpers shared by stages (no otelcost imports)."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

__all__ = ["gather_rows"]


def gather_rows(sources: Sequence[tuple[pa.Table, int]]) -> pa.Table:
    """The rows ``(table, index)`` of same-schema tables, in the order given, as one table.

    One ``take`` per distinct table (rows of one batch are usually asked for together), instead
    of a one-row slice per row, which costs tens of microseconds each to concatenate.
    """
    groups: dict[int, tuple[pa.Table, list[int], list[int]]] = {}
    for order, (table, index) in enumerate(sources):
        group = groups.setdefault(id(table), (table, [], []))
        group[1].append(index)
        group[2].append(order)
    if len(groups) == 1:
        table, indices, _ = next(iter(groups.values()))
        return table.take(indices)
    parts = [table.take(indices) for table, indices, _ in groups.values()]
    orders = [order for _, _, ordered in groups.values() for order in ordered]
    combined = pa.concat_tables(parts)
    position = sorted(range(len(orders)), key=orders.__getitem__)
    return combined.take(position)
