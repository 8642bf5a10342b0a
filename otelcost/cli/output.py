"""How commands print rows: one ``--format`` option and one ``emit`` for every command.

Formats (``-f/--format``):

``table`` (default)
    Aligned plain-text columns for people: a header, a rule, one line per row. Numbers are
    right-aligned. NULL is shown as ``NULL`` (as the DuckDB shell does), so it cannot be mistaken
    for an empty string. DECIMAL values (money) are exact: each column shows as many decimals as
    its most precise value needs, at least two (``0.00725``, ``12.50``); trailing zeros that no
    value in the column needs are trimmed, nothing is ever rounded and no float is involved.
``csv``
    RFC 4180 with a header row; NULL is an empty field.
``json``
    One JSON array of objects. ``jsonl``: one object per line.

Shared by the machine formats (csv, json, jsonl):

* DECIMAL values are written as *strings* with the column's full scale (``"0.007250000000"``,
  as DuckDB prints them). A JSON number would be just as exact in the text, but most JSON
  readers (JavaScript, ``json.loads`` without ``parse_float=Decimal``) turn it into a binary
  float and silently round money; a string makes the consumer choose (``Decimal(value)``).
  DECIMAL with scale 0 (DuckDB's HUGEINT, e.g. ``sum(input_tokens)``) is a JSON integer.
* Timestamps and dates are ISO-8601 (``2026-03-14T10:15:02.123456+00:00``; the lake's session
  time zone is UTC). Intervals are ISO-8601 durations (``PT1.25S``).
* Maps are JSON objects and lists JSON arrays (in csv and table cells: their JSON text).
* Floats use the shortest text that reads back to the same float; NaN and infinities, which
  JSON cannot express, are the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.
* Binary values are hexadecimal text.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import IO, Any, Final, TypeVar

import click
import pyarrow as pa

from otelcost.arrowjson import Converter, decimals_needed, json_converter, json_float

__all__ = ["FORMATS", "emit", "emit_sections", "output_options"]

FORMATS: Final = ("table", "csv", "json", "jsonl")
NULL_TEXT: Final = "NULL"
MIN_TABLE_DECIMALS: Final = 2

F = TypeVar("F", bound=Callable[..., Any])


def output_options(fn: F) -> F:
    """Add ``-f/--format [table|csv|json|jsonl]`` (default table), passed as ``fmt``."""
    return click.option(
        "-f",
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Output format: aligned text, CSV, a JSON array of objects, or one JSON object per line.",
    )(fn)


def _text_converter(arrow_type: pa.DataType, null: str) -> Converter:
    """value -> cell text for csv and table: scalars as text, nested values as JSON text."""
    to_json = json_converter(arrow_type)
    if pa.types.is_boolean(arrow_type):
        return lambda v: null if v is None else ("true" if v else "false")
    if pa.types.is_floating(arrow_type):
        return lambda v: null if v is None else str(json_float(v))
    if pa.types.is_nested(arrow_type):
        return lambda v: null if v is None else json.dumps(to_json(v), ensure_ascii=False)
    return lambda v: null if v is None else str(to_json(v))


class _Echo:
    """A text sink over ``click.echo`` (which handles encodings and closed pipes the click way)."""

    def __init__(self, file: IO[str] | None) -> None:
        self._file = file

    def write(self, text: str) -> int:
        click.echo(text, file=self._file, nl=False)
        return len(text)


def _batches(table: pa.Table) -> Iterator[pa.RecordBatch]:
    yield from table.to_batches(max_chunksize=10_000)


# -- formats -----------------------------------------------------------------------------------------


def _write_jsonl(table: pa.Table, out: _Echo, *, as_array: bool) -> None:
    names = table.column_names
    converters = [json_converter(field.type) for field in table.schema]
    first = True
    if as_array:
        out.write("[")
    for batch in _batches(table):
        columns = [
            [convert(v) for v in column.to_pylist()]
            for convert, column in zip(converters, batch.columns, strict=True)
        ]
        lines = []
        for values in zip(*columns, strict=True):
            lines.append(json.dumps(dict(zip(names, values, strict=True)), ensure_ascii=False))
        if not lines:
            continue
        if as_array:
            out.write(("\n" if first else ",\n") + ",\n".join(lines))
        else:
            out.write("\n".join(lines) + "\n")
        first = False
    if as_array:
        out.write("\n]\n" if not first else "]\n")


def _write_csv(table: pa.Table, out: _Echo) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.column_names)
    converters = [_text_converter(field.type, "") for field in table.schema]
    for batch in _batches(table):
        columns = [
            [convert(v) for v in column.to_pylist()]
            for convert, column in zip(converters, batch.columns, strict=True)
        ]
        writer.writerows(zip(*columns, strict=True))


def _decimal_cells(values: list[Decimal | None], type_scale: int) -> list[str]:
    """Exact fixed-point text with one number of decimals for the whole column."""
    needed = max((decimals_needed(v) for v in values if v is not None), default=0)
    decimals = min(type_scale, max(needed, MIN_TABLE_DECIMALS))
    return [NULL_TEXT if v is None else format(v, f".{decimals}f") for v in values]


def _is_numeric(arrow_type: pa.DataType) -> bool:
    numeric = (
        pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type)
    )
    return bool(numeric)


def _write_table(table: pa.Table, out: _Echo) -> None:
    if table.num_columns == 0:
        return
    cells: list[list[str]] = []
    for field, column in zip(table.schema, table.columns, strict=True):
        values = column.to_pylist()
        if pa.types.is_decimal(field.type):
            cells.append(_decimal_cells(values, field.type.scale))
        else:
            convert = _text_converter(field.type, NULL_TEXT)
            cells.append([convert(v).replace("\n", "\\n") for v in values])
    right = [_is_numeric(field.type) for field in table.schema]
    widths = [
        max([len(name), *map(len, column)]) for name, column in zip(table.column_names, cells, strict=True)
    ]

    def line(values: list[str]) -> str:
        padded = [
            value.rjust(width) if align_right else value.ljust(width)
            for value, width, align_right in zip(values, widths, right, strict=True)
        ]
        return "  ".join(padded).rstrip()

    lines = [line(table.column_names), "  ".join("-" * width for width in widths)]
    lines.extend(line(list(row)) for row in zip(*cells, strict=True))
    out.write("\n".join(lines) + "\n")


def emit(table: pa.Table, fmt: str, *, file: IO[str] | None = None) -> None:
    """Print ``table`` in format ``fmt`` (one of :data:`FORMATS`) to ``file`` (default stdout)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; expected one of {', '.join(FORMATS)}")
    out = _Echo(file)
    if fmt == "table":
        _write_table(table, out)
    elif fmt == "csv":
        _write_csv(table, out)
    else:
        _write_jsonl(table, out, as_array=fmt == "json")


def emit_sections(sections: Mapping[str, pa.Table], *, file: IO[str], titled: bool = True) -> None:
    """Several named tables as text tables, each under ``== name ==`` (unless ``titled`` is
    false and there is one), an empty one as ``(no rows)``: a report's or a check's sections."""
    for index, (name, table) in enumerate(sections.items()):
        if titled or len(sections) > 1:
            file.write(("\n" if index else "") + f"== {name} ==\n")
        if table.num_rows == 0:
            file.write("(no rows)\n")
        else:
            emit(table, "table", file=file)
