"""Step 4 of pricing: token counts times rates, exactly, and the money columns they fill.

Each class of tokens is multiplied by its int64 rate (picodollars per token) and ``cost_usd``
is the exact sum of the five cost columns. Token semantics are the lake's: uncached input is
``input - cache_read - cache_write`` (never below zero), non-reasoning output is
``output - reasoning``; cache writes are priced at the default (5-minute) rate except the part
a span reports in :data:`CACHE_WRITE_1H_ATTRIBUTE`. A batch whose costs could pass 2**63
picodollars (9.2 million USD in one call: corrupt token counts) is computed with Python
integers instead of wrapping around.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from otelcost.errors import PricingError
from otelcost.money import pico_to_decimal_array
from otelcost.schema import MONEY_SCALE, MONEY_TYPE

__all__ = ["CACHE_WRITE_1H_ATTRIBUTE", "CostColumns", "costs", "int64_column", "money_array"]

CACHE_WRITE_1H_ATTRIBUTE: Final = "otelcost.cache_write_1h_tokens"
"""Span attribute: how many of ``cache_write_tokens`` were written with a 1-hour TTL."""

_SAFE_PICO: Final = float(2**62)  # float estimate bound that leaves room for float error

CostColumns: TypeAlias = dict[str, npt.NDArray[np.int64] | npt.NDArray[np.object_]]
"""Picodollars per row by cost column: int64, or Python integers (object) past int64's range."""


def int64_column(column: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.int64]:
    """An integer or timestamp column as int64 numpy values, nulls as 0."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_timestamp(array.type):
        array = array.cast(pa.int64())
    if array.null_count:
        array = pc.fill_null(array, 0)
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.int64)


def _cache_write_1h(calls: pa.Table, cache_write: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    if not np.any(cache_write) or "attributes" not in calls.column_names:
        return np.zeros_like(cache_write)
    attributes = calls["attributes"].combine_chunks()
    if attributes.null_count == len(attributes):
        return np.zeros_like(cache_write)
    values = pc.map_lookup(attributes, CACHE_WRITE_1H_ATTRIBUTE, "first")
    digits = pc.if_else(pc.utf8_is_digit(pc.utf8_trim_whitespace(values)), values, None)
    parsed = int64_column(pc.cast(pc.utf8_trim_whitespace(digits), pa.int64()))
    return np.minimum(np.maximum(parsed, 0), cache_write)


def costs(calls: pa.Table, input_tokens: npt.NDArray[np.int64], rates: npt.NDArray[np.int64]) -> CostColumns:
    """The cost columns of ``calls``; ``rates`` holds each row's six rates (``RATE_CLASSES`` order)
    and ``input_tokens`` the row's input tokens, negatives already clipped to 0."""
    cache_read = np.maximum(int64_column(calls["cache_read_tokens"]), 0)
    cache_write = np.maximum(int64_column(calls["cache_write_tokens"]), 0)
    output = np.maximum(int64_column(calls["output_tokens"]), 0)
    reasoning = np.maximum(int64_column(calls["reasoning_tokens"]), 0)
    write_1h = _cache_write_1h(calls, cache_write)
    counts = (
        np.maximum(input_tokens - cache_read - cache_write, 0),  # uncached input
        cache_read,
        cache_write - write_1h,
        write_1h,
        np.maximum(output - reasoning, 0),  # output other than reasoning
        reasoning,
    )
    estimate = sum(c.astype(np.float64) * rates[:, i].astype(np.float64) for i, c in enumerate(counts))
    exact: tuple[npt.NDArray[np.int64] | npt.NDArray[np.object_], ...] = counts
    table = rates
    if len(estimate) and float(np.max(estimate)) >= _SAFE_PICO:
        # Corrupt token counts could wrap int64 around: Python integers are exact at any size.
        exact = tuple(c.astype(object) for c in counts)
        table = rates.astype(object)
    parts = [exact[i] * table[:, i] for i in range(6)]
    result = {
        "input_cost_usd": parts[0],
        "cache_read_cost_usd": parts[1],
        "cache_write_cost_usd": parts[2] + parts[3],
        "output_cost_usd": parts[4],
        "reasoning_cost_usd": parts[5],
    }
    result["cost_usd"] = parts[0] + parts[1] + parts[2] + parts[3] + parts[4] + parts[5]
    return result


def money_array(pico: npt.NDArray[np.int64] | npt.NDArray[np.object_]) -> pa.Array:
    """Picodollars as a ``DECIMAL(38, 12)`` column; :class:`PricingError` when one does not fit."""
    if pico.dtype != object:
        return pico_to_decimal_array(pico)
    try:
        return pa.array([Decimal(int(v)).scaleb(-MONEY_SCALE) for v in pico.tolist()], type=MONEY_TYPE)
    except (pa.ArrowInvalid, ArithmeticError) as exc:
        raise PricingError(f"a cost does not fit DECIMAL(38, {MONEY_SCALE}): {exc}") from exc
