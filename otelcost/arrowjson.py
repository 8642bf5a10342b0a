"""Arrow values as JSON values: one conversion for every JSON the product writes.

``otelcost sql -f json``, ``otelcost report ... -f json`` and ``GET /v1/reports/NAME`` all write
rows through :func:`json_rows`, so a value reads the same everywhere:

* DECIMAL (money) is a *string* with the column's full scale (``"0.007250000000"``): most JSON
  readers turn a JSON number into a binary float and silently round money. DECIMAL with scale 0
  (DuckDB's HUGEINT, e.g. ``sum(input_tokens)``) is an exact JSON integer.
* Timestamps and dates are ISO-8601; intervals ISO-8601 durations (``PT1.25S``).
* Maps are objects, lists arrays; binary is hexadecimal text.
* Floats are the shortest text that reads back to the same float; NaN and the infinities, which
  JSON cannot express, are the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

__all__ = ["Converter", "decimals_needed", "json_converter", "json_float", "json_rows"]

Converter = Callable[[Any], Any]


def json_float(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def decimals_needed(value: Decimal) -> int:
    """Decimal places that ``value`` needs to be shown exactly (``Decimal.normalize`` would round
    to the context's 28 digits, and DECIMAL(38, 12) has up to 38)."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or exponent >= 0 or not any(digits):
        return 0
    places = -exponent
    for digit in reversed(digits):
        if digit != 0 or places == 0:
            break
        places -= 1
    return places


def _seconds_text(seconds: Decimal) -> str:
    return format(seconds, f".{decimals_needed(seconds)}f")


def _iso_duration(months: int, days: int, nanoseconds: int) -> str:
    years, months = divmod(months, 12)
    date_part = "".join(f"{n}{unit}" for n, unit in ((years, "Y"), (months, "M"), (days, "D")) if n)
    time_part = ""
    if nanoseconds:
        hours, rest = divmod(abs(nanoseconds), 3_600_000_000_000)
        minutes, rest = divmod(rest, 60_000_000_000)
        sign = "-" if nanoseconds < 0 else ""
        pieces = [f"{sign}{hours}H" if hours else "", f"{sign}{minutes}M" if minutes else ""]
        if rest:
            pieces.append(f"{sign}{_seconds_text(Decimal(rest).scaleb(-9))}S")
        time_part = "T" + "".join(pieces)
    return "P" + (date_part + time_part or "T0S")


def _interval(value: Any) -> str:
    if isinstance(value, timedelta):
        micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
        return _iso_duration(0, 0, micros * 1_000)
    return _iso_duration(value.months, value.days, value.nanoseconds)


def json_converter(arrow_type: pa.DataType) -> Converter:
    """value (from ``to_pylist``) -> a JSON-ready value, decided once per column type."""
    if pa.types.is_decimal(arrow_type):
        scale = arrow_type.scale
        if scale == 0:  # DuckDB's HUGEINT (sum of BIGINT) arrives as DECIMAL(38,0): an exact JSON integer
            return lambda v: None if v is None else int(v)
        return lambda v: None if v is None else format(v, f".{scale}f")
    if pa.types.is_floating(arrow_type):
        return lambda v: None if v is None else json_float(v)
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type) or pa.types.is_time(arrow_type):
        return lambda v: None if v is None else v.isoformat()
    if pa.types.is_duration(arrow_type) or pa.types.is_interval(arrow_type):
        return lambda v: None if v is None else _interval(v)
    if (
        pa.types.is_binary(arrow_type)
        or pa.types.is_large_binary(arrow_type)
        or pa.types.is_fixed_size_binary(arrow_type)
    ):
        return lambda v: None if v is None else bytes(v).hex()
    if pa.types.is_map(arrow_type):
        key = json_converter(arrow_type.key_type)
        item = json_converter(arrow_type.item_type)
        return lambda v: None if v is None else {str(key(k)): item(x) for k, x in v}
    if (
        pa.types.is_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
        or pa.types.is_fixed_size_list(arrow_type)
    ):
        element = json_converter(arrow_type.value_type)
        return lambda v: None if v is None else [element(x) for x in v]
    if pa.types.is_struct(arrow_type):
        fields = [(f.name, json_converter(f.type)) for f in arrow_type]
        return lambda v: None if v is None else {name: convert(v.get(name)) for name, convert in fields}
    if pa.types.is_dictionary(arrow_type):
        return json_converter(arrow_type.value_type)
    return lambda v: v


def json_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Every row of ``table`` as a JSON-ready dict (see the module docstring for the values)."""
    names = table.column_names
    columns = [
        [convert(v) for v in column.to_pylist()]
        for convert, column in zip((json_converter(f.type) for f in table.schema), table.columns, strict=True)
    ]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
