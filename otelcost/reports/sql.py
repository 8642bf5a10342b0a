"""SQL fragments the reports share, for exact money in DuckDB.

DuckDB's ``avg`` and DECIMAL division return DOUBLE, which would put float drift into money.
These fragments keep amounts DECIMAL(38, 12): a mean is the exact sum divided in integer
picodollars (rounded down to the picodollar), a quantile is ``quantile_disc`` (an actual value
of the column, so exact too).

:class:`ArrowSQL` is the second stage of a report that reads the lake once and asks several
questions of the (much smaller) result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import duckdb
import pyarrow as pa

__all__ = ["MONEY", "ArrowSQL", "money_mean", "money_quantile"]

MONEY: Final = "DECIMAL(38, 12)"
_PICO_PER_USD: Final = "1000000000000"


def money_mean(sum_expr: str, count_expr: str) -> str:
    """``sum_expr / count_expr`` as DECIMAL(38, 12), rounded down to the picodollar; NULL when
    the count is 0."""
    return (
        f"CASE WHEN ({count_expr}) = 0 THEN NULL ELSE "
        f"(CAST(({sum_expr}) * {_PICO_PER_USD} AS HUGEINT) // ({count_expr}))::DECIMAL(38, 0)"
        f" * 0.000000000001 END"
    )


def money_quantile(expr: str, fraction: str) -> str:
    """The ``fraction`` quantile of ``expr``: one of its values (``quantile_disc``), exact."""
    return f"quantile_disc({expr}, {fraction})"


class ArrowSQL:
    """A private in-memory DuckDB over Arrow tables a report already fetched from the lake, with
    no file access: the second stage of a report that reads the lake once and then asks several
    questions of the (much smaller) result. Opening a DuckDB connection costs tens of
    milliseconds, so a report asking several questions keeps one open (a context manager)."""

    def __init__(self, tables: Mapping[str, pa.Table]) -> None:
        self._connection = duckdb.connect(":memory:")
        self._connection.execute("SET enable_external_access = false")
        self._connection.execute("SET TimeZone = 'UTC'")
        for name, table in tables.items():
            self._connection.register(name, table)

    def create(self, name: str, sql: str, *, view: bool = False) -> None:
        """Keep the rows of ``sql`` as table ``name`` (a fixed identifier of the calling code);
        with ``view``, name the query instead (no copy: cheaper for a filter of a large table)."""
        self._connection.execute(f"CREATE {'VIEW' if view else 'TABLE'} {name} AS {sql}")

    def query(self, sql: str, params: Mapping[str, object] | None = None) -> pa.Table:
        return self._connection.sql(sql, params=dict(params) if params else None).to_arrow_table()

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> ArrowSQL:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
