"""gather_rows: rows of several tables, in the order asked, with one take per table."""

from __future__ import annotations

import pyarrow as pa

from otelcost.tables import gather_rows


def test_rows_come_back_in_the_order_asked_across_tables() -> None:
    first = pa.table({"x": [0, 1, 2]})
    second = pa.table({"x": [10, 11]})
    rows = gather_rows([(second, 1), (first, 2), (second, 0), (first, 0)])
    assert rows["x"].to_pylist() == [11, 2, 10, 0]
    assert gather_rows([(first, 1), (first, 1)])["x"].to_pylist() == [1, 1]
