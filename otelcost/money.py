"""Exact money: integer picodollars in computation, DECIMAL(38, 12) in the lake.

Prices are quoted per million tokens with at most six decimal places (``0.0375`` USD / 1M), so a
per-token price is an exact whole number of picodollars (1e-12 USD) and ``tokens * price`` is
exact integer arithmetic. Binary floating point never touches an amount: per-row costs are int64
picodollars (up to 9.2 million USD per call), stored as DECIMAL(38, 12), and DuckDB sums
DECIMAL(38, 12) exactly in 128-bit integers.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from otelcost.schema import MONEY_SCALE, MONEY_TYPE

__all__ = [
    "PICO_PER_USD",
    "decimal_array_to_pico",
    "format_amount",
    "per_million_to_pico_per_token",
    "pico_to_decimal",
    "pico_to_decimal_array",
    "usd_to_pico",
]

PICO_PER_USD: Final = 10**MONEY_SCALE

if sys.byteorder != "little":  # pragma: no cover - Arrow decimals are little-endian 128-bit ints
    raise ImportError("otelcost.money builds Arrow decimals from little-endian buffers")


def usd_to_pico(amount: Decimal | str | int) -> int:
    """Convert an exact USD amount to picodollars; raise ValueError if it is finer than 1e-12."""
    value = Decimal(amount) * PICO_PER_USD
    if value != value.to_integral_value():
        raise ValueError(f"{amount} USD is not a whole number of picodollars")
    return int(value)


def per_million_to_pico_per_token(price_per_million: Decimal | str | int) -> int:
    """Convert a price in USD per million tokens to picodollars per token, exactly."""
    value = Decimal(price_per_million) * (PICO_PER_USD // 10**6)
    if value != value.to_integral_value():
        raise ValueError(f"{price_per_million} USD/1M tokens has more than 6 decimal places")
    return int(value)


def pico_to_decimal(pico: int) -> Decimal:
    """Picodollars as an exact Decimal amount of USD."""
    return Decimal(pico).scaleb(-MONEY_SCALE)


def pico_to_decimal_array(pico: npt.NDArray[np.int64] | pa.Array) -> pa.Array:
    """Wrap int64 picodollars as a DECIMAL(38, 12) Arrow array without any arithmetic.

    A decimal128 value is the unscaled 128-bit integer, so the picodollar count *is* the value at
    scale 12: we lay out (low, sign-extended high) 64-bit words and hand the buffer to Arrow.
    """
    values = pico.to_numpy(zero_copy_only=False) if isinstance(pico, pa.Array) else pico
    low = np.ascontiguousarray(values, dtype=np.int64)
    words = np.empty(2 * len(low), dtype=np.int64)
    words[0::2] = low
    words[1::2] = low >> 63  # sign extension: 0 or -1
    return pa.Array.from_buffers(MONEY_TYPE, len(low), [None, pa.py_buffer(words)])


def decimal_array_to_pico(amounts: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """Inverse of :func:`pico_to_decimal_array` for non-null DECIMAL(38, 12) values within int64."""
    if isinstance(amounts, pa.ChunkedArray):
        amounts = amounts.combine_chunks()
    if amounts.type != MONEY_TYPE:
        raise TypeError(f"expected {MONEY_TYPE}, got {amounts.type}")
    if amounts.null_count:
        raise ValueError("money arrays must not contain nulls")
    words = np.frombuffer(amounts.buffers()[1], dtype=np.int64)
    start = amounts.offset * 2
    pairs = words[start : start + 2 * len(amounts)]
    low, high = pairs[0::2], pairs[1::2]
    if not np.array_equal(high, low >> 63):
        raise OverflowError("amount does not fit in int64 picodollars")
    return low.copy()


def format_amount(amount: Decimal) -> str:
    """``Decimal('4012.500000000000')`` -> ``'4012.5'``; exact, never in exponent notation."""
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
