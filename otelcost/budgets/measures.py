"""What a batch of priced calls adds to budgets: per-row units of each metric, as numpy arrays.

Each array is computed at most once per batch and shared by every budget that needs it.
Money is exact: ``cost_usd`` and ``effective_cost_usd`` become int64 picodollars through
``otelcost.money`` (a DECIMAL(38, 12) value *is* a picodollar count), so sums are integer sums.
Token metrics are the token columns; ``requests`` is one per call.

A call whose model had no price (``pricing_status`` other than ``priced``) adds zero to the
cost metrics but its full tokens and one request to the others, and is counted as *unpriced*
in every budget instance it falls in, so its spend is flagged rather than silently free.
"""

from __future__ import annotations

from functools import cached_property
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from otelcost.money import decimal_array_to_pico

__all__ = ["BatchMeasures"]

I64 = npt.NDArray[np.int64]
_MICROS: Final = pa.timestamp("us", tz="UTC")


_PRICED: Final = pa.scalar("priced")  # a Python str argument costs ~200 µs per compute call


def _int64(column: pa.ChunkedArray) -> I64:
    """Integers (or timestamps, as their integer count) of a non-null column, as int64."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_timestamp(array.type):
        array = array.view(pa.int64())
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.int64)


def _microseconds(column: pa.ChunkedArray) -> I64:
    if column.type != _MICROS:
        column = column.cast(_MICROS)
    return _int64(column)


class BatchMeasures:
    """Lazily computed per-row arrays of one RECORD_SCHEMA batch.

    ``sign`` -1 takes the rows away instead (the *before* rows of attribution changes,
    ``otelcost/settle``): every unit, call and unpriced call counts negative.
    """

    def __init__(self, batch: pa.Table, *, sign: int = 1, change: bool = False) -> None:
        self.batch = batch
        self.sign = sign
        self.change = change
        """Rows of attribution changes: they move spend, they are not calls arriving late."""

    @cached_property
    def ts_ns(self) -> I64:
        """Event time (span start), nanoseconds."""
        return _microseconds(self.batch["ts"]) * 1000

    @cached_property
    def received_ns(self) -> I64:
        return _microseconds(self.batch["received_at"]) * 1000

    @cached_property
    def unpriced(self) -> npt.NDArray[np.int64]:
        """1 for a call that was not priced, else 0 (an int column, so it can be summed)."""
        priced = pc.equal(self.batch["pricing_status"], _PRICED)
        flags = np.asarray(pc.fill_null(priced, False).to_numpy(zero_copy_only=False), dtype=np.bool_)
        return (~flags).astype(np.int64) * self.sign

    @cached_property
    def _input_tokens(self) -> I64:
        return _int64(self.batch["input_tokens"])

    @cached_property
    def _output_tokens(self) -> I64:
        return _int64(self.batch["output_tokens"])

    def units(self, metric: str) -> I64:
        """Per-row units of ``metric`` (picodollars for the cost metrics), times ``sign``."""
        units = self._units(metric)
        return units if self.sign == 1 else units * self.sign

    @cached_property
    def calls(self) -> I64:
        """1 per row, times ``sign``."""
        return np.full(self.batch.num_rows, self.sign, dtype=np.int64)

    def _units(self, metric: str) -> I64:
        if metric in ("cost_usd", "effective_cost_usd"):
            return self._money(metric)
        if metric == "input_tokens":
            return self._input_tokens
        if metric == "output_tokens":
            return self._output_tokens
        if metric == "total_tokens":
            return self._total_tokens
        if metric == "requests":
            return np.ones(self.batch.num_rows, dtype=np.int64)
        raise ValueError(f"unknown metric {metric!r}")

    @cached_property
    def _total_tokens(self) -> I64:
        return self._input_tokens + self._output_tokens

    def _money(self, column: str) -> I64:
        cache = self.__dict__.setdefault("_money_cache", {})
        if column not in cache:
            cache[column] = decimal_array_to_pico(self.batch[column])
        values: I64 = cache[column]
        return values
