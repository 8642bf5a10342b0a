"""FOCUS rows as bytes: sorted, Parquet with fixed writer settings, CSV as plain text.

The same rows always give the same bytes, so an export of an unchanged lake is byte-identical
to the last one and a file's sha256 names its content:

* rows are sorted by ``x_ExportVersion`` and then every other column in schema order (NULL
  first), a total order that does not depend on how DuckDB grouped them;
* Parquet is written with every setting pinned (zstd level 3, no dictionary, one row group up
  to 1M rows, format 2.6, data page v1); no timestamps of the writing are stored;
* CSV has a header, NULL as an empty field, decimals as plain decimal strings at their full
  scale (``0.001250000000``, never an exponent), times as RFC 3339 UTC (``2026-11-01T00:00:00Z``),
  ``\\n`` line ends.
"""

from __future__ import annotations

import csv
import io
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["csv_bytes", "parquet_bytes", "sort_rows"]

_ROW_GROUP: Final = 1_000_000


def sort_rows(table: pa.Table) -> pa.Table:
    """``table`` in the export's total order (see the module docstring)."""
    names = ["x_ExportVersion", *(name for name in table.column_names if name != "x_ExportVersion")]
    try:
        options = pc.SortOptions([(name, "ascending", "at_start") for name in names])
    except (TypeError, ValueError):  # pyarrow < 25 takes the null placement once, for every key
        options = pc.SortOptions([(name, "ascending") for name in names], null_placement="at_start")
    return table.take(pc.sort_indices(table, options=options))


def parquet_bytes(table: pa.Table) -> bytes:
    """``table`` as Parquet bytes, every writer setting pinned."""
    sink = pa.BufferOutputStream()
    pq.write_table(
        table.combine_chunks(),  # pages must not depend on how the rows happened to be chunked
        sink,
        compression="zstd",
        compression_level=3,
        use_dictionary=False,
        write_statistics=True,
        row_group_size=_ROW_GROUP,
        version="2.6",
        data_page_version="1.0",
    )
    return bytes(sink.getvalue().to_pybytes())


def _text_column(column: pa.ChunkedArray) -> list[str | None]:
    if pa.types.is_timestamp(column.type):
        # Whole seconds, so strftime's %S has no fraction; charge periods are whole hours.
        column = pc.strftime(column.cast(pa.timestamp("s", tz="UTC")), format="%Y-%m-%dT%H:%M:%SZ")
    elif pa.types.is_decimal(column.type):
        # Arrow's cast writes zero as 0E-12; format "f" never uses an exponent and keeps the scale.
        return [None if value is None else format(value, "f") for value in column.to_pylist()]
    elif not pa.types.is_string(column.type):
        column = column.cast(pa.string())
    values: list[str | None] = column.to_pylist()
    return values


def csv_bytes(table: pa.Table) -> bytes:
    """``table`` as CSV bytes (see the module docstring for the value formats)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.column_names)
    writer.writerows(zip(*(_text_column(table.column(name)) for name in table.column_names), strict=True))
    return buffer.getvalue().encode("utf-8")
