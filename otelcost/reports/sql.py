"""SQL fragments the reports share, for exact money in DuckDB.

DuckDB's ``avg`` and DECIMAL division return DOUBLE, which would put float drift into money.
These fragments keep amounts DECIMAL(38, 12): a mean is the exact sum divided in integer
picodollars (rounded down to the picodollar), a quantile is ``quantile_disc`` (an actual value
of the column, so exact too).
"""

from __future__ import annotations

from typing import Final

__all__ = ["MONEY", "money_mean", "money_quantile"]

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
