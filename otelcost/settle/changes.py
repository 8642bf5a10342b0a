"""Rows that record an attribution change of a stored call: a *before* and an *after* row.

Both are copies of the call's row (same ids, times, tokens and cost) with the attribution either
side of the change, ``attribution_change`` set to ``before`` / ``after`` and the reason in
``attribution_change_reason``. The lake stores them in ``attribution_changes``; the budgets
subtract the *before* row and add the *after* row, so spend moves from one scope to the other
and is never counted twice; the ``llm_calls`` view shows each call's latest *after*.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import pyarrow as pa

from otelcost.schema import (
    ATTRIBUTION_DIMENSIONS,
    CHANGE_AFTER,
    CHANGE_BEFORE,
    CHANGE_PROPOSED,
    REASON_FOLDED_SPAN,
    REASON_LATE_ANCESTOR,
    RECORD_SCHEMA,
)

__all__ = [
    "AFTER",
    "BEFORE",
    "PROPOSED",
    "REASON_FOLDED_SPAN",
    "REASON_LATE_ANCESTOR",
    "STORED_COLUMNS",
    "Attribution",
    "attribution_of",
    "change_rows",
]

BEFORE: Final = CHANGE_BEFORE
AFTER: Final = CHANGE_AFTER
PROPOSED: Final = CHANGE_PROPOSED

STORED_COLUMNS: Final = tuple(
    name for name in RECORD_SCHEMA.names if name not in ("attributes", "resource_attributes")
)
"""What the stage keeps of a call's row to write a change later: all but the attribute maps."""

Attribution = tuple[tuple[str | None, ...], tuple[str, ...]]
"""(the values of ATTRIBUTION_DIMENSIONS, the required dimensions missing)."""

_DIMENSIONS: Final = ATTRIBUTION_DIMENSIONS


def attribution_of(table: pa.Table, row: int) -> Attribution:
    """The attribution of ``table``'s row ``row``."""
    values = tuple(table.column(name)[row].as_py() for name in _DIMENSIONS)
    missing = table.column("missing_dimensions")[row].as_py() or ()
    return values, tuple(missing)


def change_rows(
    rows: pa.Table,
    before: Sequence[Attribution],
    after: Sequence[Attribution],
    reasons: Sequence[str],
    now_us: int,
) -> pa.Table:
    """The before and after rows (RECORD_SCHEMA) of the calls in ``rows`` (any columns of
    RECORD_SCHEMA, at least ``STORED_COLUMNS``): first every *before*, then every *after*."""
    n = rows.num_rows
    pair = pa.concat_tables([rows.select(list(STORED_COLUMNS))] * 2)
    states = [*before, *after]
    columns: dict[str, pa.Array] = {
        name: pa.array([state[0][index] for state in states], type=pa.string())
        for index, name in enumerate(_DIMENSIONS)
    }
    missing = [list(state[1]) for state in states]
    columns["missing_dimensions"] = pa.array(missing, type=RECORD_SCHEMA.field("missing_dimensions").type)
    columns["attribution_status"] = pa.array(["incomplete" if m else "complete" for m in missing])
    columns["attribution_change"] = pa.array([BEFORE] * n + [AFTER] * n)
    columns["attribution_change_reason"] = pa.array([*reasons, *reasons], type=pa.string())
    columns["received_at"] = pa.array([now_us] * (2 * n), type=RECORD_SCHEMA.field("received_at").type)
    arrays = []
    for field in RECORD_SCHEMA:
        if field.name in columns:
            arrays.append(columns[field.name])
        elif field.name in pair.column_names:
            arrays.append(pair[field.name])
        else:
            arrays.append(pa.nulls(2 * n, field.type))
    return pa.Table.from_arrays(arrays, schema=RECORD_SCHEMA)
